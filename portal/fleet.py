"""The fleet at a glance, for the admin's index and the staff API (``GET /api/v1/fleet/summary/``): the apps'
selectors composed into counts (each with the link to the admin list of exactly those rows), the latest failures,
what /readyz knows (``portal.health``), the queues' depth, and per-hour / per-day series for the charts.

One source of truth: the dashboard's template and the API render the same ``summary()``. Each table is read by one
aggregate query (conditional ``Count(filter=...)``), each series by one ``date_trunc`` GROUP BY, so the page costs
the same number of queries at 100 000 devices as at ten."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from amqp.exceptions import ChannelError
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from kombu.exceptions import KombuError

from conax import selectors as conax_selectors
from conax.choices import LifeCycleState
from devices import selectors as device_selectors
from devices.choices import ActivationOutcome, ActivationState
from portal import health
from portal.celery import app as celery_app
from portal.kernel import queues
from provisioning import selectors as provisioning_selectors
from provisioning.choices import CommandState, ProvisionState, ProvisionType

WINDOW = timedelta(hours=24)  # the counts of commands and requests, and the failure list
FAILURES = 5
HEARTBEAT_STALE_S = 90  # three beats missed (the beat sends one every 30 s)
# The chart ranges: per hour over a day, per day over a week.
RANGES: dict[str, tuple[str, Literal["hour", "day"], int]] = {
    "24h": ("last 24 hours, per hour", "hour", 24),
    "7d": ("last 7 days, per day", "day", 7),
}


@dataclass(frozen=True)
class Tally:
    """A count and the admin list of exactly those rows. ``tone``: ok | warn | bad | "" (also the CSS class)."""

    key: str
    label: str
    count: int
    url: str
    tone: str = ""


@dataclass(frozen=True)
class Failure:
    kind: str  # command | request
    at: datetime | None
    what: str
    detail: str
    url: str


@dataclass(frozen=True)
class Check:
    name: str
    result: str  # ok | not configured | error: <ExceptionName>

    @property
    def tone(self) -> str:
        return "bad" if self.result.startswith("error") else "ok" if self.result == "ok" else ""


@dataclass(frozen=True)
class Queue:
    name: str
    depth: int | None  # None: the broker could not be asked


@dataclass
class Summary:
    at: datetime
    devices: list[Tally]
    devices_total: Tally
    boxes_heard: list[Tally]
    boxes_total: Tally
    provisioning: list[tuple[str, list[Tally]]]  # (provision type label, one tally per state)
    commands: list[Tally]
    requests: list[Tally]
    failures: list[Failure]
    checks: list[Check]
    workers: dict[str, Any]
    queues: list[Queue]
    window_hours: int = int(WINDOW.total_seconds() // 3600)

    @property
    def workers_tone(self) -> str:
        age = self.workers.get("last_heartbeat_age_s")
        return "bad" if age is None or age > HEARTBEAT_STALE_S else "ok"

    def as_dict(self) -> dict[str, Any]:
        """The staff API's body: the same numbers, links and tones the page shows."""
        data = asdict(self)
        data["devices"] = [*data["devices"], data.pop("devices_total")]
        data["boxes_heard"] = [*data["boxes_heard"], data.pop("boxes_total")]
        data["provisioning"] = [{"provision_type": kind, "states": tallies} for kind, tallies in data["provisioning"]]
        data["workers"] = {**self.workers, "tone": self.workers_tone}
        data["checks"] = [{**check, "tone": Check(**check).tone} for check in data["checks"]]
        return data


def _link(admin_list: str, **params: str) -> str:
    url = reverse(f"admin:{admin_list}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def _tone(count: int, tone: str) -> str:
    return tone if count else ""


def summary(*, now: datetime | None = None) -> Summary:
    now = now or timezone.now()
    since = now - WINDOW
    devices = device_selectors.device_state_counts()
    boxes = provisioning_selectors.box_heard_counts(now=now)
    ready = checks()
    broker_up = any(check.name == "broker" and check.result == "ok" for check in ready)
    return Summary(
        at=now,
        devices=_device_tallies(devices),
        devices_total=Tally("total", "All devices", devices["total"], _link("devices_device")),
        boxes_heard=[
            _toned(Tally(key, label, boxes[key], _link("provisioning_settopbox", heard=key)), HEARD_TONES[key])
            for key, label in provisioning_selectors.HEARD_BUCKETS.items()
        ],
        boxes_total=Tally("total", "All set-top boxes", boxes["total"], _link("provisioning_settopbox")),
        provisioning=_provisioning_tallies(boxes["total"]),
        commands=_command_tallies(provisioning_selectors.command_state_counts(since=since)),
        requests=_request_tallies(conax_selectors.request_state_counts(since=since)),
        failures=failures(since=since),
        checks=ready,
        workers=health.worker_status(),
        queues=queue_depths() if broker_up else [Queue(name, None) for name in queues.ALL],  # no second timeout
    )


HEARD_TONES = {"1h": "ok", "1d": "", "silent": "warn", "never": "warn"}
DEVICE_TONES = {"activated": "ok", "expired": "warn", "stranded": "warn"}


def _device_tallies(counts: dict[str, int]) -> list[Tally]:
    tallies = [
        Tally(state, label, counts[state], _link("devices_device", state=state), _tone(counts[state], ""))
        for state, label in ActivationState.choices
    ]
    tallies.append(
        Tally("stranded", "Awaiting first CIK use", counts["stranded"], _link("devices_device", stranded="1"))
    )
    return [Tally(t.key, t.label, t.count, t.url, _tone(t.count, DEVICE_TONES.get(t.key, ""))) for t in tallies]


PROVISION_TONES = {ProvisionState.PROVISIONED: "ok", ProvisionState.CORRUPTED: "bad", ProvisionState.IN_PROGRESS: ""}


def _provisioning_tallies(boxes_total: int) -> list[tuple[str, list[Tally]]]:
    """Per provision type, the boxes in each state as last read, and those never read (the rest of the boxes)."""
    counts = provisioning_selectors.type_state_counts()
    rows = []
    for kind, kind_label in ProvisionType.choices:
        tallies = []
        for state, label in ProvisionState.choices:
            n = counts.get((kind, state), 0)
            url = _link("provisioning_settopbox", provisioning=f"{kind}.{state}")
            tallies.append(Tally(state, label, n, url, _tone(n, PROVISION_TONES.get(state, "warn"))))
        unread = boxes_total - sum(t.count for t in tallies)
        url = _link("provisioning_settopbox", provisioning=f"{kind}.{provisioning_selectors.NOT_CHECKED}")
        tallies.append(Tally(provisioning_selectors.NOT_CHECKED, "Not checked yet", unread, url))
        rows.append((kind_label, tallies))
    return rows


COMMAND_TONES = {CommandState.SUCCEEDED: "ok", CommandState.FAILED: "bad"}


def _command_tallies(counts: dict[str, int]) -> list[Tally]:
    tallies = [
        Tally(state, label, counts[state], _link("provisioning_command", created="24h", state=state))
        for state, label in CommandState.choices
    ]
    retrying = Tally(
        "retrying",
        "Queued again after a failure",
        counts["retrying"],
        _link("provisioning_command", created="24h", failing="retrying"),
    )
    total = Tally("total", "All commands", counts["total"], _link("provisioning_command", created="24h"))
    return [_toned(t, COMMAND_TONES.get(t.key, "")) for t in tallies] + [_toned(retrying, "warn"), total]


REQUEST_TONES = {LifeCycleState.COMPLETED: "ok", LifeCycleState.REJECTED: "bad"}
REQUEST_LABELS = {"PENDING": "Pending", "COMPLETED": "Completed", "REJECTED": "Rejected"}


def _request_tallies(counts: dict[str, int]) -> list[Tally]:
    admin_list = "conax_provisioningrequest"
    tallies = [
        Tally(state, REQUEST_LABELS[state], counts[state], _link(admin_list, created="24h", life_cycle_state=state))
        for state in LifeCycleState.values
    ]
    retried = Tally(
        "retried", "Pending after an attempt", counts["retried"], _link(admin_list, created="24h", failing="retried")
    )
    total = Tally("total", "All Conax requests", counts["total"], _link(admin_list, created="24h"))
    return [_toned(t, REQUEST_TONES.get(t.key, "")) for t in tallies] + [_toned(retried, "warn"), total]


def _toned(tally: Tally, tone: str) -> Tally:
    return Tally(tally.key, tally.label, tally.count, tally.url, _tone(tally.count, tone))


def failures(*, since: datetime, length: int = FAILURES) -> list[Failure]:
    """The latest failed commands and rejected Conax requests since ``since``, newest first."""
    rows = [
        Failure(
            "command",
            c.finished_at,
            f"{c.get_kind_display()} on {c.box.device}",
            c.last_error or "failed",
            reverse("admin:provisioning_command_change", args=[c.pk]),
        )
        for c in provisioning_selectors.command_failures(since=since, length=length)
    ]
    rows += [
        Failure(
            "request",
            r.executed_date,
            f"{r.type} #{r.number}" + (f" (card {r.smartcard.ca_id})" if r.smartcard else ""),
            " ".join(filter(None, [r.error_code, r.error_description])) or "rejected",
            reverse("admin:conax_provisioningrequest_change", args=[r.pk]),
        )
        for r in conax_selectors.request_failures(since=since, length=length)
    ]
    return sorted(rows, key=lambda row: row.at or since, reverse=True)[:length]


def checks() -> list[Check]:
    """What /readyz checks (``portal.health.readiness``), each ok, not configured or the error's name."""
    return [Check(name, result) for name, result in health.readiness().items()]


def queue_depths() -> list[Queue]:
    """Messages waiting in each Celery queue, as the broker counts them (None for all if it cannot be asked)."""
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=health.CHECK_TIMEOUT)
            channel = conn.default_channel
            return [Queue(name, _depth(channel, name)) for name in queues.ALL]
    except (KombuError, OSError):
        return [Queue(name, None) for name in queues.ALL]


def _depth(channel: Any, name: str) -> int:
    try:
        return channel.queue_declare(queue=name, passive=True).message_count
    except (KombuError, ChannelError):  # a queue nothing was ever sent to does not exist yet (Redis: ChannelError)
        return 0


# --- charts --------------------------------------------------------------------------------------------------------

OUTCOME_TONES = {
    ActivationOutcome.ACTIVATED: "ok",
    ActivationOutcome.REISSUED: "ok2",
    ActivationOutcome.NOT_ENABLED: "warn",
    ActivationOutcome.ALREADY_ACTIVATED: "warn2",
    ActivationOutcome.EXPIRED: "warn3",
    ActivationOutcome.DISABLED: "muted",
    ActivationOutcome.BAD_REQUEST: "bad",
    ActivationOutcome.INVALID_MODEL: "bad2",
    ActivationOutcome.UNKNOWN_SERIAL: "bad3",
}


@dataclass
class Chart:
    key: str
    title: str
    range_label: str
    buckets: list[datetime]
    legend: list[tuple[str, str, str]]  # (key, label, tone), in stacking order
    values: dict[str, list[int]] = field(default_factory=dict)  # key -> one count per bucket

    @property
    def totals(self) -> list[int]:
        return [sum(column) for column in zip(*self.values.values(), strict=True)] if self.values else []

    @property
    def total(self) -> int:
        return sum(self.totals)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "buckets": self.buckets,
            "series": [
                {"key": key, "label": label, "counts": self.values[key], "total": sum(self.values[key])}
                for key, label, _ in self.legend
            ],
        }


def range_start(range_key: str, now: datetime) -> tuple[datetime, list[datetime]]:
    """The first bucket's start and every bucket's start (hours or days in the current time zone, the current
    one last)."""
    _, unit, count = RANGES[range_key]
    local = timezone.localtime(now)
    if unit == "hour":
        last = local.replace(minute=0, second=0, microsecond=0)
        starts = [last - timedelta(hours=n) for n in range(count - 1, -1, -1)]
    else:
        last = local.replace(hour=0, minute=0, second=0, microsecond=0)
        starts = [timezone.make_aware(last.replace(tzinfo=None) - timedelta(days=n)) for n in range(count - 1, -1, -1)]
    return starts[0], starts


def charts(*, range_key: str = "24h", now: datetime | None = None) -> list[Chart]:
    """Activations, command and Conax request outcomes over the range: one GROUP BY query each."""
    now = now or timezone.now()
    since, buckets = range_start(range_key, now)
    unit = RANGES[range_key][1]
    label = RANGES[range_key][0]
    specs = [
        (
            "activations",
            "Activation attempts by outcome",
            [(o.value, o.label, OUTCOME_TONES[o]) for o in ActivationOutcome],
            device_selectors.attempt_series(since=since, unit=unit),
        ),
        (
            "commands",
            "Commands finished, by outcome",
            [("SUCCEEDED", "Succeeded", "ok"), ("FAILED", "Failed", "bad")],
            provisioning_selectors.command_series(since=since, unit=unit),
        ),
        (
            "requests",
            "Conax requests executed, by outcome",
            [("COMPLETED", "Completed", "ok"), ("REJECTED", "Rejected", "bad")],
            conax_selectors.request_series(since=since, unit=unit),
        ),
    ]
    return [_chart(key, title, label, buckets, legend, rows) for key, title, legend, rows in specs]


def _chart(
    key: str,
    title: str,
    range_label: str,
    buckets: list[datetime],
    legend: list[tuple[str, str, str]],
    rows: list[tuple[datetime, str, int]],
) -> Chart:
    index = {bucket: i for i, bucket in enumerate(buckets)}
    values = {series: [0] * len(buckets) for series, _, _ in legend}
    for bucket, series, n in rows:
        if series in values and (i := index.get(bucket)) is not None:
            values[series][i] += n
    return Chart(key, title, range_label, buckets, legend, values)


# The SVG's drawing, in the viewBox's units (the CSS scales it to the panel's width).
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 1000, 180, 48, 30, 10


def _n(value: float) -> str:
    return f"{value:.1f}"


def _nice_ceiling(value: int) -> int:
    """The axis' top: 1, 2 or 5 times a power of ten, at least ``value``."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def drawing(chart: Chart, unit: str) -> dict[str, Any]:
    """The chart's SVG (stacked bars: one per bucket, a segment per outcome, each with its own <title>; the y axis'
    ticks; the x axis' labels), its legend with totals and its table's rows. Built here with ``format_html``, not
    with template tags: a few hundred numbers cost the template engine more than every query of the page."""
    top = _nice_ceiling(max(chart.totals, default=0) or 1)
    plot_h, slot = HEIGHT - BOTTOM - TOP, (WIDTH - LEFT) / max(len(chart.buckets), 1)
    fmt = "%Y-%m-%d %H:00" if unit == "hour" else "%Y-%m-%d"
    periods = [timezone.localtime(start) for start in chart.buckets]
    bars = []
    for i, start in enumerate(periods):
        base = HEIGHT - BOTTOM
        for key, label, tone in chart.legend:
            if n := chart.values[key][i]:
                h = n / top * plot_h
                base -= h
                bars.append((LEFT + i * slot + slot * 0.1, base, slot * 0.8, h, tone, f"{start:{fmt}}: {n} {label}"))
    every = 3 if unit == "hour" else 1
    labels = [
        (LEFT + i * slot + slot / 2, "middle", start.strftime("%H:00" if unit == "hour" else "%a %d"))
        for i, start in enumerate(periods)
        if (len(periods) - 1 - i) % every == 0
    ]
    if labels:  # the current period's label ends at the right edge, so that a larger font does not cut it off
        labels[-1] = (WIDTH, "end", labels[-1][2])
    ticks = [(HEIGHT - BOTTOM - value / top * plot_h, value) for value in sorted({0, top // 2, top})]
    svg = format_html(
        '<svg viewBox="0 0 {} {}" role="img" aria-labelledby="chart-{}-title">'
        '<title id="chart-{}-title">{}, {}: {} in all (per period in the table below)</title>{}{}{}{}</svg>',
        WIDTH,
        HEIGHT,
        chart.key,
        chart.key,
        chart.title,
        chart.range_label,
        chart.total,
        format_html_join(
            "",
            '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
            '<text class="axis" x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}</text>',
            ((LEFT, WIDTH, _n(y), _n(y), LEFT - 4, _n(y), value) for y, value in ticks),
        ),
        format_html_join(
            "",
            '<rect class="bar tone-{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
            ((tone, _n(x), _n(y), _n(w), _n(h), title) for x, y, w, h, tone, title in bars),
        ),
        format_html_join(
            "",
            '<text class="axis" x="{}" y="{}" text-anchor="{}">{}</text>',
            ((_n(x), HEIGHT - 6, anchor, label) for x, anchor, label in labels),
        ),
        format_html(
            '<text class="empty" x="{}" y="{}" text-anchor="middle">Nothing in this range</text>',
            (LEFT + WIDTH) // 2,
            (HEIGHT - BOTTOM) // 2,
        )
        if not chart.total
        else "",
    )
    cells = [[chart.values[key][i] for key, _, _ in chart.legend] for i in range(len(periods))]
    rows = format_html_join(
        "",
        '<tr><th scope="row">{}</th>{}</tr>',
        (
            (f"{start:{fmt}}", format_html_join("", "<td>{}</td>", ((n,) for n in row)))
            for start, row in zip(periods, cells, strict=True)
        ),
    )
    legend = [(label, tone, sum(chart.values[key])) for key, label, tone in chart.legend]
    return {"svg": svg, "rows": rows, "legend": legend}
