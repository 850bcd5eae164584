"""``python -m provisioning.simulator --count N --port P …``: the device simulator without Django (``--help`` lists
the options, the same as ``manage.py simulate_devices``)."""

from provisioning.simulator.cli import main

main()
