"""schemathesis over the whole OpenAPI schema at length: the suite's run (tests/portal/test_schema_fuzz.py) with
``--examples`` cases per operation (default 200; the suite runs 10).

Against gunicorn on PostgreSQL with the demo data, every generated request is checked for: no 5xx, a documented
status code, a conforming content type, headers and body, and no write on an error answer. Prints the operations,
the cases, the status codes seen, the failures by kind (with a few redacted examples) and the known limits that
are not the portal's answer (a request line over gunicorn's limit); exit 1 on any failure.

    .venv/bin/python bench/schema_fuzz.py [--examples 200] [--only REGEX] [-- extra pytest arguments]

The database and Redis are the suite's (``DATABASE_URL``, ``PORTAL_TEST_REDIS_URL``): pytest-django makes and
drops its own ``test_…`` database.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEST = (
    "tests/portal/test_schema_fuzz.py::test_schemathesis_finds_no_5xx_no_undocumented_answer_and_no_write_on_an_error"
)


def run(examples: int, only: str, pytest_args: list[str]) -> tuple[int, dict | None, str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        env = dict(
            os.environ,
            SCHEMA_FUZZ_EXAMPLES=str(examples),
            SCHEMA_FUZZ_REPORT=str(report),
            SCHEMA_FUZZ_RANDOM="1",
            SCHEMA_FUZZ_ONLY=only,
        )
        # The suite's 300 s timeout is for the bounded run; this one takes as long as it takes.
        command = [
            sys.executable,
            "-m",
            "pytest",
            TEST,
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "timeout=0",
            *pytest_args,
        ]
        started = time.monotonic()
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        summary = json.loads(report.read_text()) if report.exists() else None
    return done.returncode, summary, done.stdout + done.stderr, elapsed


def show(summary: dict, elapsed: float) -> None:
    cases = summary["cases"]
    rate = f"{cases / elapsed:.0f}/s, {elapsed:.0f} s with the setup"
    print(f"operations: {summary['operations']}  cases: {cases}  ({rate})")
    print("status codes: " + ", ".join(f"{status}: {count}" for status, count in summary["statuses"].items()))
    server_errors = sum(count for status, count in summary["statuses"].items() if int(status) >= 500)
    print(f"5xx: {server_errors}")
    failures = summary["failures"]
    print(f"failures: {sum(failures.values())}" + "".join(f"\n  {kind}: {n}" for kind, n in failures.items()))
    for kind, examples in summary["examples"].items():
        print(f"examples of {kind}:")
        for example in examples:
            print("  " + example.replace("\n", "\n    "))
    for kind, count in summary["known"].items():
        print(f"known, not the portal's answer: {kind}: {count}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--only", default="", help="a regular expression: the operations (`GET /api/v1/…`) to run")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    code, summary, output, elapsed = run(args.examples, args.only, args.pytest_args)
    if summary is None:
        print(output[-6000:])
        print(f"no report: pytest exit {code}")
        return code or 1
    show(summary, elapsed)
    print(f"pytest exit {code} (a failure is a 5xx, an undocumented or non-conforming answer, or a write on an error)")
    return code


if __name__ == "__main__":
    sys.exit(main())
