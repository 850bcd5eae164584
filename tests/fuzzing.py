"""How many cases each per-dialect hypothesis fuzzer runs: a bounded number in the suite, thousands on demand.

``FUZZ_EXAMPLES=2000 .venv/bin/pytest -m fuzz`` (or ``bench/fuzz.py``) runs the long version.
"""

import os

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
