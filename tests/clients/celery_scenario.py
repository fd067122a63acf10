"""Celery acceptance scenario: run unmodified Celery (Redis broker + Redis result backend) against REDIS_URL.

Starts a worker (`celery worker --pool=threads --concurrency=4`) as a child process, sends 100 tasks, collects
every result through the result backend, then stops the worker with SIGTERM (a warm shutdown). Prints one line
`celery: results=N sum=N worker_exit=N` and exits non-zero if anything is off.
"""

import os
import signal
import subprocess
import sys
import time

from celery_app import add, app

TASKS = 100


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--pool=threads", "--concurrency=4",
         "--loglevel=INFO", "--hostname=acceptance@%h"],
        cwd=here,
    )
    try:
        pending = [add.delay(i, i) for i in range(TASKS)]
        results = [p.get(timeout=60) for p in pending]
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
        f"sum={sum(results)} worker_exit={worker_exit}",
        flush=True,
    )
    app.close()
    return 0 if results == expected and worker_exit == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
