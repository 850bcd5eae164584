"""The audit trail (django-auditlog): which models are tracked, how secrets are masked, who the actor is."""

from __future__ import annotations

from auditlog.context import auditlog_value
from auditlog.registry import auditlog
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from portal.kernel.models import ApiToken

MASK = "********"

auditlog.register(get_user_model(), exclude_fields=["last_login"], mask_fields=["password"], m2m_fields={"groups"})
auditlog.register(Group, m2m_fields={"permissions"})
auditlog.register(ApiToken, exclude_fields=["last_used_at"], mask_fields=["digest"])
# Support staff may change schedules in the admin; beat's own bookkeeping fields are left out.
auditlog.register(PeriodicTask, exclude_fields=["last_run_at", "total_run_count", "date_changed"])
auditlog.register(IntervalSchedule)
auditlog.register(CrontabSchedule)


def mask_secret(value: str) -> str:
    """Secrets (password hashes, token digests) appear in the trail only as changed, never in any part."""
    return MASK


def set_audit_actor(user: AbstractBaseUser) -> None:
    """Name the actor of this request's audit entries.

    AuditlogMiddleware reads ``request.user`` before any API dialect has authenticated its token, so a
    token-authenticated request would otherwise be recorded without an actor. The middleware's context holds a
    dict that auditlog reads when it saves each entry; filling in the actor there covers the rest of the request.
    """
    context = auditlog_value.get(None)
    if context is not None and context.get("actor") is None:
        context["actor"] = user


def set_audit_actor_label(label: str) -> None:
    """Name a non-person actor (an Exosite vendor token) on this request's audit entries, in the trail's
    ``actor_email`` column, when no user is the actor."""
    context = auditlog_value.get(None)
    if context is not None and context.get("actor") is None:
        context["actor_email"] = label[:254]
