"""The token store shared by every API login, group permissions, and worker heartbeats."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal.choices import TokenPurpose
from portal.exceptions import TokenExpired, TokenInvalid, TokenRevoked
from portal.models import ApiToken, WorkerHeartbeat

TOKEN_BYTES = 32  # 256 bits of randomness, shown as 64 hex characters
MAX_TOKEN_LENGTH = 128
# last_used_at is written at most this often per token, so a busy client does not write on every request.
TOUCH_INTERVAL = timedelta(seconds=60)

SUPPORT_GROUP = "support"
CUSTOMERS_GROUP = "customers"
# Apps whose every permission the support group holds; customers get none in the admin.
SUPPORT_APPS = ("devices", "provisioning", "conax", "components", "django_celery_beat")
SUPPORT_EXTRA_PERMISSIONS = (("auditlog", "view_logentry"), ("axes", "view_accessattempt"))


@dataclass(frozen=True)
class IssuedToken:
    raw: str  # handed to the client once, never stored
    token: ApiToken


def token_digest(raw: str) -> str:
    """Tokens carry 256 random bits, so a fast unsalted hash is enough to make the stored value useless."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def token_issue(
    *,
    user: AbstractBaseUser,
    purpose: TokenPurpose,
    absolute_ttl: int | None = None,
    idle_ttl: int | None = None,
    metadata: dict | None = None,
) -> IssuedToken:
    raw = secrets.token_hex(TOKEN_BYTES)
    now = timezone.now()
    token = ApiToken.objects.create(
        user=user,
        purpose=purpose,
        digest=token_digest(raw),
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(seconds=absolute_ttl or settings.TOKEN_ABSOLUTE_TTL),
        idle_timeout=timedelta(seconds=idle_ttl or settings.TOKEN_IDLE_TTL),
        metadata=metadata or {},
    )
    return IssuedToken(raw=raw, token=token)


def token_authenticate(*, raw: str, purpose: TokenPurpose) -> ApiToken:
    """Return the live token for ``raw`` or raise; refreshes its idle clock (at most once a minute)."""
    if not raw or len(raw) > MAX_TOKEN_LENGTH:
        raise TokenInvalid
    token = ApiToken.objects.select_related("user").filter(digest=token_digest(raw), purpose=purpose).first()
    if token is None or not token.user.is_active:
        raise TokenInvalid
    if token.revoked_at is not None:
        raise TokenRevoked
    now = timezone.now()
    if token.expires_at <= now or token.last_used_at + token.idle_timeout <= now:
        raise TokenExpired
    if now - token.last_used_at >= TOUCH_INTERVAL:
        # Conditional: of two concurrent requests only one writes.
        ApiToken.objects.filter(pk=token.pk, last_used_at=token.last_used_at).update(last_used_at=now)
        token.last_used_at = now
    return token


def token_revoke(*, token: ApiToken) -> bool:
    """Revoke one token; False if it was already revoked."""
    now = timezone.now()
    updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    if updated:
        token.revoked_at = now
        # A conditional UPDATE sends no save signal, so the audit entry is written here.
        LogEntry.objects.log_create(token, action=LogEntry.Action.UPDATE, changes={"revoked_at": ["None", str(now)]})
    return bool(updated)


def token_revoke_all(*, user: AbstractBaseUser, purpose: TokenPurpose | None = None) -> int:
    tokens = ApiToken.objects.filter(user=user, revoked_at__isnull=True)
    if purpose is not None:
        tokens = tokens.filter(purpose=purpose)
    return tokens.update(revoked_at=timezone.now())


def tokens_purge(*, older_than: timedelta = timedelta(days=7)) -> int:
    """Delete tokens that expired or were revoked more than ``older_than`` ago."""
    cutoff = timezone.now() - older_than
    deleted, _ = ApiToken.objects.filter(expires_at__lt=cutoff).delete()
    revoked, _ = ApiToken.objects.filter(revoked_at__lt=cutoff).delete()
    return deleted + revoked


@transaction.atomic
def groups_sync() -> None:
    """Create the support and customers groups and give support every permission of the operational apps."""
    support, _ = Group.objects.get_or_create(name=SUPPORT_GROUP)
    Group.objects.get_or_create(name=CUSTOMERS_GROUP)
    wanted = Q(content_type__app_label__in=SUPPORT_APPS)
    for app_label, codename in SUPPORT_EXTRA_PERMISSIONS:
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    support.permissions.add(*Permission.objects.filter(wanted))


def heartbeat_record(*, hostname: str) -> None:
    WorkerHeartbeat.objects.update_or_create(hostname=hostname[:255], defaults={"seen_at": timezone.now()})
