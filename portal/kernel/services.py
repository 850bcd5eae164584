"""The token store shared by every API login, group permissions, and worker heartbeats.

A token lives no longer than the credentials it was issued against (as Django's sessions do): changing a user's
password or (de)activating the user revokes every token of every dialect, audited. Two mechanisms, because the
change can happen in many ways:

- eagerly, when the user is saved (the admin, password forms, ``set_password()`` + ``save()``, ``manage.py
  changepassword``): ``user_credentials_changed``, called by the model signals at the end of this module;
- lazily, for changes that bypass ``save()`` (``QuerySet.update(password=…)``, SQL): each token carries a stamp of
  the password hash it was issued under, and ``token_authenticate`` revokes a token whose stamp no longer matches,
  or whose user is inactive.

Left open: a user deactivated *and* reactivated by ``QuerySet.update`` without any request in between keeps their
tokens (no code of the portal, nor Django's admin, changes ``is_active`` that way).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission, User
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_save, pre_save
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from portal.kernel.choices import TokenPurpose
from portal.kernel.db import statements
from portal.kernel.exceptions import TokenExpired, TokenInvalid, TokenRevoked
from portal.kernel.logging import note_secret
from portal.kernel.models import ApiToken, WorkerHeartbeat
from portal.kernel.permissions import remember_support_membership

TOKEN_BYTES = 32  # 256 bits of randomness, shown as 64 hex characters
MAX_TOKEN_LENGTH = 128
# last_used_at is written at most this often per token, so a busy client does not write on every request.
TOUCH_INTERVAL = timedelta(seconds=60)
# The key in ApiToken.metadata under which a token keeps the stamp of its user's password hash.
STAMP_KEY = "credentials"

SUPPORT_GROUP = "support"
CUSTOMERS_GROUP = "customers"
# Apps whose every permission the support group holds; customers get none in the admin.
SUPPORT_APPS = ("devices", "provisioning", "conax", "components", "webhooks", "campaigns")
# Support staff read the audit trail, follow background jobs, and list and revoke their own API tokens (the token
# admin shows them only theirs). Celery beat's schedules and Axes' lockout records are internals, for superusers.
SUPPORT_EXTRA_PERMISSIONS = (
    ("auditlog", "view_logentry"),
    ("portal", "view_bulkjob"),
    ("portal", "view_apitoken"),
    ("portal", "change_apitoken"),
)
SUPERUSER_ONLY_APPS = ("django_celery_beat", "axes")


@dataclass(frozen=True)
class IssuedToken:
    raw: str  # handed to the client once, never stored
    token: ApiToken


def token_digest(raw: str) -> str:
    """Tokens carry 256 random bits, so a fast unsalted hash is enough to make the stored value useless."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def credentials_stamp(user: User) -> str:
    """A keyed digest of the user's password hash: it changes whenever the password does, and tells nothing."""
    return salted_hmac("portal.kernel.services.credentials_stamp", user.password or "", algorithm="sha256").hexdigest()[
        :32
    ]


def token_issue(
    *,
    user: User,
    purpose: TokenPurpose,
    absolute_ttl: int | None = None,
    idle_ttl: int | None = None,
    metadata: dict | None = None,
) -> IssuedToken:
    raw = secrets.token_hex(TOKEN_BYTES)
    note_secret(raw)
    now = timezone.now()
    token = ApiToken.objects.create(
        user=user,
        purpose=purpose,
        digest=token_digest(raw),
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(seconds=absolute_ttl or settings.TOKEN_ABSOLUTE_TTL),
        idle_timeout=timedelta(seconds=idle_ttl or settings.TOKEN_IDLE_TTL),
        metadata={**(metadata or {}), STAMP_KEY: credentials_stamp(user)},
    )
    return IssuedToken(raw=raw, token=token)


def token_authenticate(*, raw: str, purpose: TokenPurpose) -> ApiToken:
    """Return the live token for ``raw`` or raise; refreshes its idle clock (at most once a minute)."""
    if not raw or len(raw) > MAX_TOKEN_LENGTH:
        raise TokenInvalid
    token = _token_named(token_digest(raw), purpose)
    if token is None:
        raise TokenInvalid
    if not token.user.is_active:
        token_revoke(token=token, reason="user_inactive")
        raise TokenInvalid
    if token.revoked_at is not None:
        raise TokenRevoked
    if not _stamp_matches(token):
        token_revoke(token=token, reason="password_changed")
        raise TokenRevoked
    now = timezone.now()
    if token.expires_at <= now or token.last_used_at + token.idle_timeout <= now:
        raise TokenExpired
    if now - token.last_used_at >= TOUCH_INTERVAL:
        # Conditional: of two concurrent requests only one writes.
        ApiToken.objects.filter(pk=token.pk, last_used_at=token.last_used_at).update(last_used_at=now)
        token.last_used_at = now
    return token


# Every API call checks its token: one statement written once (``portal.kernel.db.statements``) reads the token, its
# user and whether the user is in the support group, the question most dialects ask next (``is_support_staff``).
# The ORM query with its user and the group query cost more CPU than everything else a short call does.
LOOKUP_SQL = (
    "SELECT {token}, {user}, EXISTS (SELECT 1 FROM {membership} m INNER JOIN {group} g ON g.id = m.group_id "
    "WHERE m.user_id = u.id AND g.name = %s) "
    "FROM {token_table} t INNER JOIN {user_table} u ON u.id = t.user_id WHERE t.digest = %s AND t.purpose = %s"
)


def _token_named(digest: str, purpose: TokenPurpose) -> ApiToken | None:
    """The token with ``digest`` for ``purpose`` (any state), its user loaded and their support membership known."""
    user_model = get_user_model()
    tokens, users = statements.columns(ApiToken, alias="t"), statements.columns(user_model, alias="u")
    sql = LOOKUP_SQL.format(
        token=tokens.sql,
        user=users.sql,
        membership=statements.table(user_model.groups.through),
        group=statements.table(Group),
        token_table=statements.table(ApiToken),
        user_table=statements.table(user_model),
    )
    rows = statements.fetch(sql, [SUPPORT_GROUP, digest, str(purpose)])
    if not rows:
        return None
    token = tokens.instance(rows[0])
    user = users.instance(rows[0], start=len(tokens.names))
    remember_support_membership(user, member=bool(rows[0][-1]))
    token.user = user
    return token


def _stamp_matches(token: ApiToken) -> bool:
    stamp = token.metadata.get(STAMP_KEY) if isinstance(token.metadata, dict) else None
    # Tokens issued before stamps existed carry none; they expire within TOKEN_ABSOLUTE_TTL.
    return stamp is None or constant_time_compare(stamp, credentials_stamp(token.user))


def _audit_revocation(token: ApiToken, now: datetime, reason: str | None) -> None:
    # A conditional UPDATE sends no save signal, so the audit entry is written here.
    LogEntry.objects.log_create(
        token,
        action=LogEntry.Action.UPDATE,
        changes={"revoked_at": ["None", str(now)]},
        additional_data={"reason": reason} if reason else None,
    )


def token_revoke(*, token: ApiToken, reason: str | None = None) -> bool:
    """Revoke one token; False if it was already revoked."""
    now = timezone.now()
    updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    if updated:
        token.revoked_at = now
        _audit_revocation(token, now, reason)
    return bool(updated)


@transaction.atomic
def token_revoke_all(*, user: User, purpose: TokenPurpose | None = None, reason: str | None = None) -> int:
    """Revoke every live token of ``user`` (of one dialect, or all), one audit entry per token."""
    tokens = ApiToken.objects.select_for_update().filter(user=user, revoked_at__isnull=True)
    if purpose is not None:
        tokens = tokens.filter(purpose=purpose)
    locked = list(tokens)
    now = timezone.now()
    ApiToken.objects.filter(pk__in=[token.pk for token in locked]).update(revoked_at=now)
    for token in locked:
        token.revoked_at = now
        _audit_revocation(token, now, reason)
    return len(locked)


def user_credentials_changed(*, user: User, before: tuple[str, bool]) -> int:
    """After ``user`` was saved: revoke all their tokens if the password or ``is_active`` differs from ``before``
    (the stored ``(password, is_active)``). Returns how many were revoked."""
    password, is_active = before
    if password != user.password:
        reason = "password_changed"
    elif is_active != user.is_active:
        reason = "deactivated" if is_active else "reactivated"
    else:
        return 0
    return token_revoke_all(user=user, reason=reason)


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
    support.permissions.remove(*Permission.objects.filter(content_type__app_label__in=SUPERUSER_ONLY_APPS))


def heartbeat_record(*, hostname: str) -> None:
    WorkerHeartbeat.objects.update_or_create(hostname=hostname[:255], defaults={"seen_at": timezone.now()})


# --- credentials changes, however the user is saved ------------------------------------------------------------------
# Signals rather than a service call: the admin's forms, Django's password views and ``manage.py changepassword``
# save the user themselves. The receivers only fetch the stored values and call the service above.

_SAVED = "_portal_saved_credentials"


def _remember_credentials(
    sender: type[User],
    instance: User,
    raw: bool = False,
    using: str | None = None,
    update_fields: frozenset[str] | None = None,
    **kwargs: object,
) -> None:
    if raw or instance.pk is None or (update_fields is not None and not {"password", "is_active"} & set(update_fields)):
        return
    before = sender._default_manager.using(using).filter(pk=instance.pk).values_list("password", "is_active").first()
    setattr(instance, _SAVED, before)


def _revoke_on_credentials_change(
    sender: type[User], instance: User, created: bool = False, raw: bool = False, **kwargs: object
) -> None:
    before = instance.__dict__.pop(_SAVED, None)
    if before is not None and not raw:
        user_credentials_changed(user=instance, before=before)


pre_save.connect(_remember_credentials, sender=settings.AUTH_USER_MODEL, dispatch_uid="portal.tokens.remember")
post_save.connect(_revoke_on_credentials_change, sender=settings.AUTH_USER_MODEL, dispatch_uid="portal.tokens.revoke")
