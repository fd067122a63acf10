// BullMQ acceptance scenario: run unmodified BullMQ against the server at REDIS_URL.
//
// Adds 100 plain jobs plus a few that exercise the other code paths (a delayed job, prioritized jobs, a job that
// fails once and succeeds on its retry, a parent/child flow), processes them with two Workers (concurrency 4 each,
// so their Lua scripts run concurrently), counts the `completed` events QueueEvents sees (it reads the events stream
// with XREAD BLOCK) and checks the queue's job counts afterwards. Prints one line `bullmq: completed=N events=N ...`
// and exits non-zero if anything is off.
'use strict';

const { FlowProducer, Queue, QueueEvents, Worker } = require('bullmq');

const PLAIN = 100;
const url = new URL(process.env.REDIS_URL);
const connection = { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null };

/// What each job returns; the retried job throws on its first attempt.
async function processor(job) {
  if (job.name === 'flaky' && job.attemptsMade === 0) throw new Error('first attempt fails');
  if (job.name === 'parent') {
    const children = Object.values(await job.getChildrenValues());
    return children.reduce((s, v) => s + v, 0);
  }
  return job.data.a + job.data.b;
}

async function main() {
  const name = 'acceptance';
  // Read the events stream from its start (the server is fresh), so no event is missed however late the first
  // blocking XREAD reaches the server.
  const queueEvents = new QueueEvents(name, { connection, lastEventId: '0-0' });
  await queueEvents.waitUntilReady();
  const queue = new Queue(name, { connection });
  const flows = new FlowProducer({ connection });

  const extra = 1 /* delayed */ + 2 /* prioritized */ + 1 /* flaky */ + 3 /* flow: parent + 2 children */;
  const total = PLAIN + extra;
  let events = 0;
  const allEvents = new Promise((resolve) => {
    queueEvents.on('completed', () => {
      events += 1;
      if (events === total) resolve();
    });
  });
  queueEvents.on('error', (err) => console.error('queueEvents error:', err));

  await queue.addBulk(Array.from({ length: PLAIN }, (_, i) => ({ name: 'add', data: { a: i, b: i } })));
  await queue.add('delayed', { a: 1000, b: 1 }, { delay: 300 });
  await queue.add('prio', { a: 2000, b: 1 }, { priority: 5 });
  await queue.add('prio', { a: 3000, b: 1 }, { priority: 1 });
  await queue.add('flaky', { a: 4000, b: 1 }, { attempts: 2, backoff: { type: 'fixed', delay: 50 } });
  const flow = await flows.add({
    name: 'parent',
    queueName: name,
    children: [
      { name: 'child', queueName: name, data: { a: 1, b: 2 } },
      { name: 'child', queueName: name, data: { a: 3, b: 4 } },
    ],
  });

  let completed = 0;
  let resultsOk = 0;
  let failedAttempts = 0;
  // Two workers, so that their scripts run concurrently on the server.
  const workers = [1, 2].map(() => {
    const worker = new Worker(name, processor, { connection, concurrency: 4 });
    worker.on('completed', (job, result) => {
      completed += 1;
      if (job.name === 'parent' ? result === 10 : result === job.data.a + job.data.b) resultsOk += 1;
    });
    worker.on('failed', (job, err) => {
      failedAttempts += 1;
      if (job.name !== 'flaky') console.error('job failed:', job.id, err.message);
    });
    worker.on('error', (err) => console.error('worker error:', err.message));
    return worker;
  });

  const timer = setTimeout(() => {
    console.error(`timed out: completed=${completed} events=${events} failed_attempts=${failedAttempts}`);
    process.exit(1);
  }, 60000);
  await allEvents;
  clearTimeout(timer);
  const counts = await queue.getJobCounts('completed', 'failed', 'waiting', 'active', 'delayed', 'prioritized');
  const parentState = await flow.job.getState();
  await Promise.all(workers.map((w) => w.close()));
  await flows.close();
  await queueEvents.close();
  await queue.close();
  console.log(
    `bullmq: completed=${completed} events=${events} results_ok=${resultsOk} failed_attempts=${failedAttempts} ` +
      `counted_completed=${counts.completed} failed=${counts.failed} waiting=${counts.waiting} ` +
      `active=${counts.active} delayed=${counts.delayed} prioritized=${counts.prioritized} parent=${parentState}`,
  );
  const good = completed === total && events === total && resultsOk === total && failedAttempts === 1 &&
    counts.completed === total && counts.failed === 0 && counts.waiting === 0 && counts.active === 0 &&
    counts.delayed === 0 && counts.prioritized === 0 && parentState === 'completed';
  process.exit(good ? 0 : 1);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
