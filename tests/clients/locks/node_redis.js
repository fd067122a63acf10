// node-redis acceptance scenario: unmodified node-redis (v5) against the server at REDIS_URL, once over RESP2 and
// once over RESP3 (`RESP: 3`, HELLO 3 in the handshake).
//
// - The single-instance lock: 10 workers, each on its own connection (`client.duplicate()`), take one lock 10
//   times each with `SET key token NX PX` and release it with a compare-and-delete script defined with
//   `defineScript` (EVALSHA; the NOSCRIPT -> EVAL fallback on first use and again after SCRIPT FLUSH). A shared
//   counter bumped with an unprotected GET ... SET inside the lock proves no two holders overlapped. A release
//   with a foreign token (`client.eval`) is refused; an expired lock is taken over and its stale owner's release
//   is refused.
// - WATCH/MULTI/EXEC on an isolated connection of a `createClientPool`: a conflicting write from another connection
//   makes EXEC fail (node-redis throws WatchError), the retry without a conflict commits.
// - Blocking: BLPOP on a duplicated connection and BLMOVE through the pool are woken by a push from another
//   connection; a BLPOP with a fractional timeout times out with null.
//
// Prints one line per protocol, `noderedis_resp2: ...` and `noderedis_resp3: ...`, and exits non-zero if anything
// is off.
'use strict';

const { randomBytes } = require('crypto');
const { createClient, createClientPool, defineScript, WatchError } = require('redis');

const url = process.env.REDIS_URL;
const WORKERS = 10;
const ROUNDS = 10;
const LOCK = 'locks:noderedis:lock';
const COUNTER = 'locks:noderedis:counter';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const token = () => randomBytes(12).toString('hex');

const RELEASE = 'if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end';
/// The compare-and-delete release, as a client script: `client.releaseLock(key, token)` sends EVALSHA and falls back
/// to EVAL on NOSCRIPT.
const releaseLock = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: RELEASE,
  parseCommand(parser, key, value) {
    parser.pushKey(key);
    parser.push(value);
  },
  transformReply(reply) {
    return reply;
  },
});

/// The protocol the server says this connection speaks (HELLO without a version answers with the current one).
async function protocolOf(client) {
  const hello = await client.sendCommand(['HELLO']);
  if (hello instanceof Map) return Number(hello.get('proto'));
  if (Array.isArray(hello)) return Number(hello[hello.indexOf('proto') + 1]);
  return Number(hello.proto);
}

/// The lock under contention: WORKERS connections, ROUNDS sections each.
async function contention(client, r) {
  let holders = 0;
  r.acquired = 0;
  r.refused = 0;
  r.released = 0;
  r.violations = 0;
  await client.del([LOCK, COUNTER]);
  const workers = await Promise.all(Array.from({ length: WORKERS }, () => client.duplicate().connect()));
  await Promise.all(
    workers.map(async (c, id) => {
      for (let round = 0; round < ROUNDS; ) {
        const mine = token();
        if ((await c.set(LOCK, mine, { NX: true, PX: 5000 })) !== 'OK') {
          r.refused += 1;
          await sleep(1 + Math.random() * 4);
          continue;
        }
        r.acquired += 1;
        if (holders !== 0) r.violations += 1;
        holders += 1;
        const n = Number((await c.get(COUNTER)) ?? 0);
        await sleep(1 + (id % 3));
        await c.set(COUNTER, String(n + 1));
        if (holders !== 1) r.violations += 1;
        holders -= 1;
        if ((await c.releaseLock(LOCK, mine)) === 1) r.released += 1;
        round += 1;
        // Half-way through, the script cache is flushed: the next release finds NOSCRIPT and falls back to EVAL.
        if (id === 0 && round === ROUNDS / 2) {
          await client.scriptFlush();
          r.flushed = Number((await client.scriptExists(releaseLock.SHA1))[0]);
        }
      }
    }),
  );
  await Promise.all(workers.map((c) => c.close()));
  r.counter = Number(await client.get(COUNTER));
  // Loaded again by the EVAL fallback after the flush.
  r.script_cached = Number((await client.scriptExists(releaseLock.SHA1))[0]);
}

/// A foreign token's release is refused; an expired lock is taken over and its stale owner's release is refused.
async function ownership(client, r) {
  const key = `${LOCK}:owned`;
  const first = token();
  await client.del(key);
  r.first_set = await client.set(key, first, { NX: true, PX: 150 });
  r.second_refused = Number((await client.set(key, token(), { NX: true, PX: 150 })) === null);
  r.foreign_release = await client.eval(RELEASE, { keys: [key], arguments: ['not-the-owner'] });
  await sleep(250);
  const second = token();
  r.taken_over = Number((await client.set(key, second, { NX: true, PX: 5000 })) === 'OK');
  r.stale_release = await client.releaseLock(key, first);
  r.kept = Number((await client.get(key)) === second);
  r.own_release = await client.releaseLock(key, second);
}

/// WATCH/MULTI/EXEC on a pool connection: a conflicting write aborts EXEC, the retry commits (the balance goes
/// 100, 1100 by the conflicting write, 1090 by the retry).
async function watch(client, pool, r) {
  const key = 'locks:noderedis:account';
  await client.set(key, '100');
  r.watch_error = 0;
  try {
    await pool.execute(async (c) => {
      await c.watch(key);
      const balance = Number(await c.get(key));
      await client.set(key, String(balance + 1000)); // another connection writes the watched key
      return c.multi().set(key, String(balance - 10)).exec();
    });
  } catch (err) {
    if (!(err instanceof WatchError)) throw err;
    r.watch_error = 1;
  }
  const committed = await pool.execute(async (c) => {
    await c.watch(key);
    const balance = Number(await c.get(key));
    return c.multi().set(key, String(balance - 10)).get(key).exec();
  });
  r.watch_committed = committed.length;
  r.balance = await client.get(key);
}

/// A consumer blocked in BLPOP on a duplicated connection, and one in BLMOVE on the pool, woken by pushes.
async function blocking(client, pool, r) {
  const queue = 'locks:noderedis:queue';
  const source = 'locks:noderedis:source';
  const target = 'locks:noderedis:target';
  await client.del([queue, source, target]);
  const consumer = await client.duplicate().connect();

  let settled = false;
  const popped = consumer.blPop(queue, 5).finally(() => {
    settled = true;
  });
  await sleep(150);
  r.blpop_waited = Number(!settled);
  await client.lPush(queue, 'job-1');
  const got = await popped;
  r.blpop = got === null ? 'null' : `${got.key === queue ? 'queue' : got.key}/${got.element}`;

  settled = false;
  const moved = pool.blMove(source, target, 'LEFT', 'RIGHT', 5).finally(() => {
    settled = true;
  });
  await sleep(150);
  r.blmove_waited = Number(!settled);
  await client.rPush(source, 'job-2');
  r.blmove = await moved;
  r.target = (await client.lRange(target, 0, -1)).join(',');

  const started = Date.now();
  r.blpop_timeout = String(await consumer.blPop(`${queue}:empty`, 0.2));
  r.timeout_ok = Number(Date.now() - started >= 190);
  await consumer.close();
}

async function run(resp) {
  const r = {};
  const client = createClient({ url, RESP: resp, scripts: { releaseLock } });
  client.on('error', (err) => console.error(`resp${resp} client error:`, err.message));
  await client.connect();
  const pool = createClientPool({ url, RESP: resp });
  pool.on('error', (err) => console.error(`resp${resp} pool error:`, err.message));
  await pool.connect();
  try {
    r.proto = await protocolOf(client);
    await contention(client, r);
    await ownership(client, r);
    await watch(client, pool, r);
    await blocking(client, pool, r);
  } catch (err) {
    console.error(`resp${resp}:`, err);
    r.error = (err && err.name) || 'error';
  }
  await pool.close();
  await client.close();
  const line = Object.entries(r)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  console.log(`noderedis_resp${resp}: ${line}`);
  const total = WORKERS * ROUNDS;
  return (
    r.error === undefined &&
    r.proto === resp &&
    r.acquired === total &&
    r.released === total &&
    r.counter === total &&
    r.violations === 0 &&
    r.flushed === 0 &&
    r.script_cached === 1 &&
    r.first_set === 'OK' &&
    r.second_refused === 1 &&
    r.foreign_release === 0 &&
    r.taken_over === 1 &&
    r.stale_release === 0 &&
    r.kept === 1 &&
    r.own_release === 1 &&
    r.watch_error === 1 &&
    r.watch_committed === 2 &&
    r.balance === '1090' &&
    r.blpop_waited === 1 &&
    r.blpop === 'queue/job-1' &&
    r.blmove_waited === 1 &&
    r.blmove === 'job-2' &&
    r.target === 'job-2' &&
    r.blpop_timeout === 'null' &&
    r.timeout_ok === 1
  );
}

async function main() {
  const timer = setTimeout(() => {
    console.error('timed out');
    process.exit(1);
  }, 60000);
  const resp2 = await run(2);
  const resp3 = await run(3);
  clearTimeout(timer);
  process.exit(resp2 && resp3 ? 0 : 1);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
