"""Celery application for the acceptance scenario: Redis broker and Redis result backend, both at REDIS_URL."""

import os

from celery import Celery

app = Celery("acceptance", broker=os.environ["REDIS_URL"], backend=os.environ["REDIS_URL"])
app.conf.update(
    broker_connection_retry_on_startup=True,
    # Fail fast instead of retrying forever when the server misbehaves: the scenario has a time limit anyway.
    broker_connection_max_retries=3,
    result_expires=600,
    task_acks_late=True,
    worker_prefetch_multiplier=4,
)


@app.task
def add(a, b):
    """Succeeds with a result the scenario collects."""
    return a + b


@app.task
def total(values):
    """A chord callback: runs once every header task has stored its result."""
    return sum(values)


@app.task
def fail(message):
    """Raises, so that its result is a stored failure the client re-raises."""
    raise ValueError(message)
