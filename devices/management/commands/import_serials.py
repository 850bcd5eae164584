"""Import serial numbers for one device model from a CSV (`sn,extra`) or a range, with progress and a summary."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator

from django.core.management.base import BaseCommand, CommandError

from devices import importing, services
from devices.exceptions import InvalidImport
from devices.models import DeviceModel

CHUNK = 5000
BAR_WIDTH = 30


def _csv_rows(path: str) -> Iterator[tuple[int, str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as stream:
        yield from importing.rows_from_csv(stream)


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser) -> None:
        parser.add_argument("--vendor", required=True)
        parser.add_argument("--model", required=True)
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--csv", metavar="FILE", help="CSV file of `sn,extra` lines; - for standard input")
        source.add_argument("--range", nargs=2, metavar=("START", "END"), help="every serial from START to END")
        parser.add_argument("--hex", action="store_true", help="the range counts in hexadecimal")
        parser.add_argument("--enable", action="store_true", help="open the activation window of new serials")
        parser.add_argument("--dry-run", action="store_true", help="count only, write nothing")

    def handle(self, *args, vendor, model, csv, range, hex, enable, dry_run, **options) -> None:
        device_model = DeviceModel.objects.filter(vendor__name=vendor, name=model).first()
        if device_model is None:
            raise CommandError(f"no device model {vendor}/{model}")
        try:
            total, rows = self._source(csv, range, hex)
            summary = services.ImportResult()
            for done, chunk in self._chunks(rows):
                part = services.devices_import(model=device_model, rows=chunk, enable=enable, dry_run=dry_run)
                summary.created += part.created
                summary.existing += part.existing
                summary.enabled += part.enabled
                summary.invalid += part.invalid
                self._progress(done, total)
            self._progress(total or 0, total)
        except (InvalidImport, UnicodeDecodeError) as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write("")
        self._summary(summary, dry_run)

    def _source(self, csv: str | None, span: list[str] | None, hex_: bool) -> tuple[int | None, Iterator]:
        if span is not None:
            rows = list(importing.rows_from_range(span[0], span[1], base=16 if hex_ else 10))
            return len(rows), iter(rows)
        if csv == "-":
            return None, importing.rows_from_csv(sys.stdin)
        try:
            with open(csv, encoding="utf-8-sig", newline="") as counting:
                total = sum(1 for _ in counting)
        except OSError as exc:
            raise CommandError(f"cannot read {csv}: {exc.strerror}") from exc
        return total, _csv_rows(csv)

    def _chunks(self, rows: Iterator) -> Iterator[tuple[int, list]]:
        done = 0
        while chunk := list(itertools.islice(rows, CHUNK)):
            done = chunk[-1][0]
            yield done, chunk

    def _progress(self, done: int, total: int | None) -> None:
        if total:
            filled = int(BAR_WIDTH * done / total)
            self.stderr.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} lines", ending="")
        else:
            self.stderr.write(f"\r{done} lines", ending="")
        self.stderr.flush()

    def _summary(self, result: services.ImportResult, dry_run: bool) -> None:
        verb = "would be created" if dry_run else "created"
        self.stdout.write(
            f"{result.created} {verb}, {result.existing} existing, {len(result.invalid)} invalid"
            + (f", {result.enabled} enabled" if result.enabled else "")
        )
        for line, value, reason in result.invalid[:20]:
            self.stdout.write(f"  line {line}: {value!r}: {reason}")
        if len(result.invalid) > 20:
            self.stdout.write(f"  … and {len(result.invalid) - 20} more")
