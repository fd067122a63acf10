"""Celery acceptance scenario: run unmodified Celery (Redis broker + Redis result backend) against REDIS_URL.

Starts a worker (`celery worker --pool=threads --concurrency=4`) as a child process, sends 100 tasks and collects
every result through the result backend, then a chord (10 tasks and a callback that sums their results, which the
Redis backend counts down with its chord counter), a task with a countdown (held in the broker's unacked index
until due) and a failing task (its stored exception is re-raised by the client). Stops the worker with SIGTERM
(a warm shutdown). Prints one line `celery: results=N sum=N ...` and exits non-zero if anything is off.
"""

import os
import signal
import subprocess
import sys

from celery import chord

from celery_app import add, app, fail, total

TASKS = 100
TIMEOUT = 60


def failure_is_raised():
    """True when the failing task's ValueError comes back to the client with its message and FAILURE state."""
    result = fail.delay("boom from the acceptance test")
    try:
        result.get(timeout=TIMEOUT)
    except ValueError as err:
        return "boom from the acceptance test" in str(err) and result.state == "FAILURE"
    return False


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--pool=threads", "--concurrency=4",
         "--loglevel=INFO", "--hostname=acceptance@%h"],
        cwd=here,
    )
    try:
        pending = [add.delay(i, i) for i in range(TASKS)]
        results = [p.get(timeout=TIMEOUT) for p in pending]
        chord_sum = chord(add.s(i, 1) for i in range(10))(total.s()).get(timeout=TIMEOUT)
        countdown = add.apply_async((20, 22), countdown=1).get(timeout=TIMEOUT)
        failure_raised = failure_is_raised()
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker_exit = worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker_exit = worker.wait()
    expected = [2 * i for i in range(TASKS)]
    print(
        f"celery: results={len(results)} correct={sum(r == e for r, e in zip(results, expected))} "
        f"sum={sum(results)} chord={chord_sum} countdown={countdown} failure_raised={failure_raised} "
        f"worker_exit={worker_exit}",
        flush=True,
    )
    app.close()
    good = results == expected and chord_sum == 55 and countdown == 42 and failure_raised and worker_exit == 0
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
