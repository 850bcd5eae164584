"""The shared kernel: tokens, audit, live events, permissions, rate limits, the HTTP edge and the wire dialects'
common parts, the REST base. Every app may import it; it imports no app (import-linter contracts in pyproject.toml).

A Django app of its own, labelled ``portal`` so that its tables, migrations and permissions keep their names."""
