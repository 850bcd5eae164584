"""WSGI entry point (gunicorn): Django's handler with the portal's request class (``portal.kernel.http``)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup(set_prefix=False)

from portal.kernel.http import PortalWSGIHandler  # noqa: E402  (needs the app registry loaded above)

application = PortalWSGIHandler()
