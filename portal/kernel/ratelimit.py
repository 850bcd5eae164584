"""Fixed-window rate limits: atomic counters in Redis when configured, local memory otherwise.

All the counters of one request are checked in one Redis round trip. When Redis cannot be reached the limiter
lets requests through (and logs it): abuse protection must not take activation down with it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings

from portal.kernel import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Limit | None:
        """``"300/60"`` → 300 per 60 s; ``"0"`` or empty → no limit."""
        if not text or text.strip() == "0":
            return None
        count, _, seconds = text.partition("/")
        return cls(int(count), int(seconds or 60))


@dataclass(frozen=True)
class Check:
    scope: str
    key: str
    limit: Limit

    def bucket(self, now: float) -> tuple[str, float]:
        window = int(now // self.limit.seconds)
        digest = hashlib.sha256(self.key.encode("utf-8", "surrogatepass")).hexdigest()[:24]
        return f"rl:{self.scope}:{digest}:{window}", (window + 1) * self.limit.seconds


class LocalCounters:
    """Counters of one process (the embedded default). Expired windows are dropped once the table passes a size
    that doubles with what is still live: memory follows the traffic of one window, not the uptime (one new key per
    serial that activates: with a fixed 100 000-entry threshold a long-running demo kept ~100 000 dead entries)."""

    PRUNE_AT = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}
        self._prune_at = self.PRUNE_AT

    def incr(self, keys: list[tuple[str, float]], now: float) -> list[int]:
        with self._lock:
            if len(self._counts) > self._prune_at:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
                self._prune_at = max(self.PRUNE_AT, 2 * len(self._counts))
            out = []
            for key, expires in keys:
                count = self._counts.get(key, (0, expires))[0] + 1
                self._counts[key] = (count, expires)
                out.append(count)
            return out


class RedisCounters:
    # One command for all counters of a request: INCR each key, give new keys their expiry, return the counts.
    SCRIPT = """
    local counts = {}
    for i, key in ipairs(KEYS) do
        counts[i] = redis.call('INCR', key)
        if counts[i] == 1 then redis.call('EXPIREAT', key, ARGV[i]) end
    end
    return counts
    """

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script = self._client.register_script(self.SCRIPT)

    def incr(self, keys: list[tuple[str, float]], now: float) -> list[int]:
        return self._script(keys=[key for key, _ in keys], args=[math.ceil(expires) + 1 for _, expires in keys])


@lru_cache(maxsize=4)
def _counters(url: str) -> LocalCounters | RedisCounters:
    return RedisCounters(url) if url else LocalCounters()


def retry_after(checks: list[Check]) -> int | None:
    """Count one hit on every check; seconds to wait if any is over its limit, else None."""
    if not checks:
        return None
    now = time.time()
    buckets = [check.bucket(now) for check in checks]
    try:
        counts = _counters(settings.REDIS_URL).incr(buckets, now)
    except redis.RedisError as exc:
        log.warning("rate limiter unavailable, letting the request through", extra={"error": type(exc).__name__})
        return None
    over = [
        (check, expires)
        for check, (_, expires), count in zip(checks, buckets, counts, strict=True)
        if count > check.limit.count
    ]
    if not over:
        return None
    metrics.rate_limited(limit=over[0][0].scope)  # one refusal, named by the first limit it broke
    return max(1, max(math.ceil(expires - now) for _, expires in over))
