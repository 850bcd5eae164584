"""The project shell: settings, URLs, ASGI/WSGI entry points, the Celery app, customer pages, health, demo, serve.

It may import everything; nothing imports it (``portal.kernel`` and ``portal.lib`` are the layers apps use)."""
