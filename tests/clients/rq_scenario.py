"""RQ acceptance scenario: run unmodified RQ against the server at REDIS_URL.

Enqueues 200 jobs that succeed, one that depends on the last of them (held in the deferred registry until it
finishes) and one that raises on both its attempts (Retry(max=1)), runs a burst worker (the standard forking
Worker, one work horse per job) until the queue is empty, then checks every result and the failed job registry.
Prints one line `rq: finished=N failed=N results_ok=N ...` and exits non-zero if anything is off.
"""

import os
import sys

from redis import Redis
from rq import Queue, Retry, Worker
from rq.job import JobStatus
from rq.registry import DeferredJobRegistry, FailedJobRegistry, FinishedJobRegistry

import jobs

JOBS = 200


def main():
    redis = Redis.from_url(os.environ["REDIS_URL"])
    queue = Queue("acceptance", connection=redis)
    ok_jobs = [queue.enqueue(jobs.add, i, i, result_ttl=600) for i in range(JOBS)]
    dependent = queue.enqueue(jobs.add, 1000, 1, depends_on=ok_jobs[-1], result_ttl=600)
    deferred = DeferredJobRegistry(queue=queue).count
    bad_job = queue.enqueue(jobs.fail, "boom from the acceptance test", failure_ttl=600, retry=Retry(max=1))

    worker = Worker([queue], connection=redis, name="acceptance-worker")
    worker.work(burst=True, with_scheduler=False)

    results_ok = 0
    for i, job in enumerate(ok_jobs):
        job.refresh()
        if job.get_status() == JobStatus.FINISHED and job.return_value() == 2 * i:
            results_ok += 1
    dependent.refresh()
    dependent_ok = deferred == 1 and dependent.get_status() == JobStatus.FINISHED and dependent.return_value() == 1001
    finished = FinishedJobRegistry(queue=queue)
    failed = FailedJobRegistry(queue=queue)
    bad_job.refresh()
    failure_recorded = (
        bad_job.get_status() == JobStatus.FAILED
        and bad_job.retries_left == 0
        and bad_job.id in failed.get_job_ids()
        and "boom from the acceptance test" in (bad_job.latest_result().exc_string or "")
    )
    print(
        f"rq: finished={finished.count} failed={failed.count} results_ok={results_ok} "
        f"queued={queue.count} dependent_ok={dependent_ok} failure_recorded={failure_recorded}",
        flush=True,
    )
    good = finished.count == JOBS + 1 and failed.count == 1 and results_ok == JOBS
    good = good and queue.count == 0 and dependent_ok and failure_recorded
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
