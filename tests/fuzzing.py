"""How many cases each per-dialect hypothesis fuzzer runs: a bounded number in the suite, thousands on demand.

``FUZZ_EXAMPLES=2000 .venv/bin/pytest -m fuzz`` (or ``bench/fuzz.py``) runs the long version.
"""

import os

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))

# Dates no calendar or no database can hold, for every dialect's fuzzer (issue 12: the CRM's poison dates).
IMPOSSIBLE_DATES = [
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "2014-02-30T09:00:00",
    "2014-01-01T25:00:00",
    "2014-01-01T00:00:00+99:00",
    "10000-01-01T00:00:00",
    "-0001-01-01",
    "2014-13-01",
]
