"""``python -m conax.simulator --port P …``: the CAS simulator over HTTP without Django (``--help`` lists the
options, the same as ``manage.py simulate_cas``)."""

from conax.simulator.cli import main

main()
