"""The Celery app: configuration from Django settings (``CELERY_`` namespace), tasks found in every app.

Database connections in workers: Celery's Django fix-up closes every connection around every task unless
``CELERY_DB_REUSE_MAX`` is set (measured with bench/conax.py: 1.3 new PostgreSQL sessions per request, a third of
the worker's CPU). The settings set it, so connections live as ``CONN_MAX_AGE`` says, and each task starts and ends
with Django's own check (``close_old_connections``: too old, or unusable after an error → closed).
"""

import os

from celery import Celery, signals
from django.db import close_old_connections

from portal.kernel import broker  # noqa: F401 - registers the embedded broker's transport, portalfs://

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _check_connections(task=None, **kwargs) -> None:
    # Not around a task run in place (``apply()``): its caller owns the connection, and maybe a transaction.
    if task is not None and not getattr(task.request, "is_eager", False):
        close_old_connections()
