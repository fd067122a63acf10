"""redis-py with its defaults (RESP3 since 8.0) through `ringkv proxy`: plain commands on keys spread over the
backends, a split MGET, pipelines, a transaction on one hash tag, a blocking pop and the redis-py Lock (EVALSHA with
its NOSCRIPT fallback), and `pubsub()` with channels on every backend and a pattern. Prints one summary line, `redispy: key=value ...`."""

import os
import threading

import redis
from redis.lock import Lock

r = redis.Redis.from_url(os.environ["REDIS_URL"])
keys = [f"user:{i}" for i in range(100)]
for i, k in enumerate(keys):
    r.set(k, i)
values = r.mget(keys + ["missing"])
mget_ok = values[:-1] == [str(i).encode() for i in range(100)] and values[-1] is None

r.hset("profile", mapping={"name": "ada", "visits": 3})
hash_ok = r.hgetall("profile") == {b"name": b"ada", b"visits": b"3"}
r.zadd("scores", {"ada": 1.5})
score_ok = r.zscore("scores", "ada") == 1.5

pipe = r.pipeline(transaction=False)
for k in keys[:10]:
    pipe.incr(k)
pipeline_ok = pipe.execute() == list(range(1, 11))

r.delete("{acct}:a", "{acct}:b")
tx = r.pipeline(transaction=True)
tx.set("{acct}:a", 10).decrby("{acct}:a", 3).incrby("{acct}:b", 3)
tx_ok = tx.execute() == [True, 7, 3]


def push_later():
    redis.Redis.from_url(os.environ["REDIS_URL"]).rpush("jobs", "job-1")


threading.Timer(0.2, push_later).start()
popped = r.blpop(["jobs"], timeout=5)
blpop_ok = list(popped or []) == [b"jobs", b"job-1"]

r.script_flush()
acquired = extended = released = 0
for _ in range(20):
    lock = Lock(r, "resource", timeout=5)
    if lock.acquire(blocking=True, blocking_timeout=2):
        acquired += 1
        extended += bool(lock.extend(1))
        lock.release()
        released += 1
other = Lock(r, "resource", timeout=5)
other.acquire()
stolen = Lock(r, "resource", timeout=5).acquire(blocking=False)
other.release()

# Pub/Sub: channels on different backends and a pattern on every one; each message arrives once.
p = r.pubsub()
p.subscribe(*[f"news:{i}" for i in range(5)])
p.psubscribe("news:*")
confirmed = 0
while confirmed < 6:
    m = p.get_message(timeout=5)
    if m is None:
        break
    confirmed += m["type"] in ("subscribe", "psubscribe")
receivers = sum(r.publish(f"news:{i}", f"n{i}") for i in range(5))
got = []
while True:
    m = p.get_message(timeout=0.5)
    if m is None:
        break
    got.append((m["type"], m["channel"], m["data"]))
expected = sorted(
    [("message", f"news:{i}".encode(), f"n{i}".encode()) for i in range(5)]
    + [("pmessage", f"news:{i}".encode(), f"n{i}".encode()) for i in range(5)]
)
pubsub_ok = sorted(got) == expected
p.unsubscribe()
p.punsubscribe()
p.close()

# HELLO without a version names the connection's protocol (a map in RESP3).
proto = r.execute_command("HELLO")[b"proto"]
print(
    f"redispy: proto={proto} "
    f"mget_ok={mget_ok} hash_ok={hash_ok} score_ok={score_ok} pipeline_ok={pipeline_ok} tx_ok={tx_ok} "
    f"blpop_ok={blpop_ok} acquired={acquired} extended={extended} released={released} stolen={stolen} "
    f"confirmed={confirmed} receivers={receivers} pubsub_ok={pubsub_ok}"
)
