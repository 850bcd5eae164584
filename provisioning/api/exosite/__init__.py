"""Exosite's fleet management API (``/provision/manage/…``, ``/provision/register``, ``/provision/download``):
what device makers' existing tooling (Exosite's ``pyonep`` and scripts on it) calls. docs/exosite.md."""
