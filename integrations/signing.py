"""Webhook signatures: HMAC-SHA256 over ``"{timestamp}.{body}"`` with the client's secret.

Headers on every delivery (docs/webhooks.md shows a receiver):

- ``Vigil-Timestamp``: Unix seconds when this attempt was signed;
- ``Vigil-Signature``: ``v1=`` and the lowercase hex digest.

Signing the timestamp with the body lets a receiver refuse replays: reject a timestamp older
than a few minutes. Compare digests in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def secret_new() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def signed_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {"Vigil-Timestamp": str(timestamp), "Vigil-Signature": signature(secret, timestamp, body)}


def verify(
    secret: str,
    body: bytes,
    *,
    timestamp: str,
    signature_header: str,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True if the headers sign ``body`` with ``secret`` and the timestamp is within ``tolerance``."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - sent_at) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, sent_at, body), signature_header or "")
