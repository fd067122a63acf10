"""redis-py's client-side caching (`cache_config`, RESP3 only) against ringkv: a cached GET is served without a round
trip, another client's SET invalidates it, and the next GET returns the new value; FLUSHALL empties the cache.
Prints one summary line, `redispy_cache: key=value ...`."""

import os
import time

import redis
from redis.cache import CacheConfig
from redis.connection import CacheProxyConnection

# redis-py enables caching only for servers that say they are Redis 7.4 or later (a product gate, not a protocol
# need: it uses CLIENT TRACKING ON and RESP3 pushes, both in Redis 6+); ringkv reports 7.2.4.
CacheProxyConnection.MIN_ALLOWED_VERSION = "7.2.0"

url = os.environ["REDIS_URL"]
cached = redis.Redis.from_url(url, protocol=3, cache_config=CacheConfig())
writer = redis.Redis.from_url(url)

writer.set("user:1", "ada")
first = cached.get("user:1")
cache = cached.get_cache()
cached_after_read = cache.size
# Served from the cache: no command reaches the server (the writer sees the same command count).
before = writer.info("stats")["total_commands_processed"]
second = cached.get("user:1")
after = writer.info("stats")["total_commands_processed"]
served_locally = after - before == 1  # only the writer's own INFO

writer.set("user:1", "grace")
deadline = time.monotonic() + 5
fresh = cached.get("user:1")
while fresh != b"grace" and time.monotonic() < deadline:
    time.sleep(0.02)
    fresh = cached.get("user:1")

cached.get("user:2")
writer.flushall()
deadline = time.monotonic() + 5
while cache.size > 0 and time.monotonic() < deadline:
    time.sleep(0.02)
    cached.ping()

print(
    "redispy_cache:",
    f"first={first.decode()}",
    f"second={second.decode()}",
    f"cached_after_read={cached_after_read}",
    f"served_locally={served_locally}",
    f"fresh={fresh.decode()}",
    f"flushed_size={cache.size}",
)
