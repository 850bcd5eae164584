"""The Celery queues, named once: the settings declare them, the apps route to them, the run command consumes them.

``express`` carries EXPRESS Conax requests ahead of ``regular`` (everything else by default); ``devices`` carries
set-top-box commands, which wait on sockets and run on a thread pool in production."""

from __future__ import annotations

EXPRESS = "express"
REGULAR = "regular"
DEVICES = "devices"
ALL = (EXPRESS, REGULAR, DEVICES)
