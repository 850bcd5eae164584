"""The per-dialect fuzzers at length: every test marked ``fuzz`` with ``FUZZ_EXAMPLES`` cases (default 2 000).

Each fuzzer (activation, /jsonrpc, CRM.COM, /v1/, staff REST) asserts, for every generated request, that the answer
is not a 5xx and that an error answer wrote nothing, on PostgreSQL. This runs them with hypothesis's statistics and
prints, per test, the examples that ran and the outcome, then the totals.

    .venv/bin/python bench/fuzz.py [--examples 2000] [-- extra pytest arguments]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEST = re.compile(r"^(tests/\S+::\S+):\s*$")
PASSING = re.compile(r"- (\d+) passing, (\d+) failing, and (\d+) invalid test cases")


def parse(output: str) -> list[tuple[str, int, int, int]]:
    """(test, passing, failing, invalid) of each test's generate phase, from ``--hypothesis-show-statistics``."""
    rows, current, generating = [], None, False
    for line in output.splitlines():
        if match := TEST.match(line.strip()):
            current, generating = match[1], False
        elif "during generate phase" in line.lower():
            generating = True
        elif generating and current and (match := PASSING.search(line)):
            rows.append((current, *map(int, match.groups())))
            current, generating = None, False
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    env = dict(os.environ, FUZZ_EXAMPLES=str(args.examples))
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "fuzz",
        "-q",
        "-p",
        "no:cacheprovider",
        "--hypothesis-show-statistics",
        *args.pytest_args,
    ]
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    rows = parse(run.stdout)
    for test, passing, failing, invalid in rows:
        print(f"{test}: {passing} cases passed, {failing} failing, {invalid} invalid")
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    print(f"fuzzers: {len(rows)}  cases: {sum(r[1] + r[2] for r in rows)}  failing: {sum(r[2] for r in rows)}")
    print(f"pytest: {summary}  (exit {run.returncode}; a failure is a 5xx or a write on an error answer)")
    if run.returncode:
        print(run.stdout[-6000:])
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
