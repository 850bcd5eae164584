"""The Celery queues, named once: the settings declare them, the apps route to them, the run command consumes them.

``express`` carries EXPRESS Conax requests ahead of ``regular`` (everything else by default); ``devices`` carries
set-top-box commands, which wait on sockets and run on a thread pool in production."""

from __future__ import annotations

EXPRESS = "express"
REGULAR = "regular"
DEVICES = "devices"
ALL = (EXPRESS, REGULAR, DEVICES)
# The order a worker of several queues takes them in (kombu's Redis transport option ``queue_order_strategy``):
# "sorted" asks the queues in name order at every fetch, so ``express`` always comes before ``regular``. kombu's
# default, "round_robin", alternates them: under a REGULAR backlog of long batch tasks an EXPRESS message then waits
# for every other free slot (measured with bench/conax.py: EXPRESS p99 over a second).
ORDER = "sorted"
