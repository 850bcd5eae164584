"""The signature scheme (docs/webhooks.md), pure: no Django, so that a receiver can copy it.

Header ``X-Portal-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``. The receiver recomputes
the HMAC over the timestamp it was given and the raw body, compares in constant time, and refuses a timestamp
older than its tolerance (replays)."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Portal-Signature"
TOLERANCE = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = TOLERANCE) -> bool:
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
