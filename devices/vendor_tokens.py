"""Vendor tokens of the Exosite fleet management API (``X-Exosite-Token``): created and revoked by staff, shown
once, stored as SHA-256 digests, each scoped to one vendor.

They are not logins of a person, so they are not in the kernel's token store (``ApiToken`` belongs to a user and
expires when idle): a vendor's factory tooling holds one for years, until staff revoke it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from auditlog.models import LogEntry
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from devices.exceptions import VendorTokenInvalid
from devices.models import Vendor, VendorToken

TOKEN_BYTES = 20  # 40 lowercase hex characters, the shape of Exosite's own vendor tokens
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token


@dataclass(frozen=True)
class IssuedVendorToken:
    token: VendorToken
    raw: str  # shown once, to the staff member who created it; never stored


def vendor_token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def vendor_token_create(*, vendor: Vendor, name: str, created_by: User | None = None) -> IssuedVendorToken:
    raw = secrets.token_hex(TOKEN_BYTES)
    token = VendorToken(vendor=vendor, name=name, digest=vendor_token_digest(raw), created_by=created_by)
    token.full_clean(exclude=["digest"])
    with transaction.atomic():
        token.save()  # audited by the trail's save hook (the digest masked)
    return IssuedVendorToken(token=token, raw=raw)


def vendor_token_revoke(*, token: VendorToken) -> bool:
    """Revoke at once; False when it already was. One conditional UPDATE, audited."""
    now = timezone.now()
    with transaction.atomic():
        changed = VendorToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
        if changed:
            LogEntry.objects.log_create(
                token,
                action=LogEntry.Action.UPDATE,
                force_log=True,
                changes={"revoked_at": ["None", str(now)]},
                additional_data={"action": "revoke"},
            )
    token.refresh_from_db()
    return bool(changed)


def vendor_token_authenticate(*, raw: str) -> VendorToken:
    """The live token with this value, its vendor loaded; VendorTokenInvalid otherwise."""
    if not raw or len(raw) > 128 or not raw.isascii() or not raw.isprintable():
        raise VendorTokenInvalid
    token = VendorToken.objects.select_related("vendor").filter(digest=vendor_token_digest(raw)).first()
    if token is None or token.revoked_at is not None:
        raise VendorTokenInvalid
    now = timezone.now()
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_EVERY:
        VendorToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
