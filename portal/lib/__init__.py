"""Pure helpers: no Django, no app. Anything may import them; they import nothing of the portal outside this package.

The simulators run on these alone (``python -m provisioning.simulator`` needs no Django settings)."""
