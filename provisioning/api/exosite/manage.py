"""``/provision/manage/model/…`` and ``/provision/register``: a vendor's models, serial numbers and devices.

Each view parses, calls one service or selector of the inventory (``devices.services``: the admin and the staff API
change devices through the same functions) and renders. docs/exosite.md says how each call maps.
"""

from __future__ import annotations

import io
import json
from urllib.parse import quote

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from devices import importing, selectors, services
from devices.choices import ActivationState, CloneOption
from devices.models import Device, DeviceModel, VendorToken
from provisioning.api.exosite import wire
from provisioning.api.exosite.wire import Form, Refusal

LIMIT_MIN, LIMIT_MAX = 5, 1000
STATUS_WORDS = {s.value for s in ActivationState} - {ActivationState.NOT_ADDED.value}


def _name(value: str | None, what: str, limit: int) -> str:
    if not value:
        raise Refusal(400, f"missing field {what}")
    if len(value) > limit or "/" in value or not value.isprintable() or value != value.strip():
        raise Refusal(400, f"invalid {what}")
    return value


def _template(form: Form) -> tuple[str, str, list[str]]:
    rid, code = form.get("rid", "", limit=128) or "", form.get("code", "", limit=128) or ""
    if rid and code:
        raise Refusal(400, "give rid or code, not both")
    options = list(dict.fromkeys(form.getlist("options")))
    if unknown := [o for o in options if o not in CloneOption.values]:
        raise Refusal(400, f"unknown option {unknown[0][:64]}")
    return rid, code, options


# --- /provision/manage/model/ -------------------------------------------------------------------------------------


@wire.view(("GET", "POST"))
def models(request: HttpRequest, token: VendorToken) -> HttpResponse:
    if request.method == "GET":
        if wire.query(request).get("show") == "shared":
            return wire.empty(204)  # no vendor shares models with another in the portal
        names = DeviceModel.objects.filter(vendor_id=token.vendor_id).order_by("name").values_list("name", flat=True)
        return wire.csv_answer(wire.csv_line([name]) for name in names)
    form = wire.body_form(request)
    name = _name(form.get("model"), "model", 64)
    if form.flag("delete"):
        services.device_model_purge(device_model=wire.vendor_model(token, name))
        return wire.reset()
    rid, code, options = _template(form)
    services.device_model_create(vendor=token.vendor, name=name, clone_rid=rid, clone_code=code, options=options)
    return wire.reset()


@wire.view(("GET", "PUT", "DELETE"))
def model(request: HttpRequest, token: VendorToken, model: str) -> HttpResponse:
    device_model = wire.vendor_model(token, model)
    if request.method == "GET":
        key, value = ("code", device_model.clone_code) if device_model.clone_code else ("rid", device_model.clone_rid)
        parts = [f"{key}={quote(value, safe='')}"] + [f"options[]={o}" for o in device_model.clone_options]
        return HttpResponse("&".join(parts), content_type=wire.FORM_UTF8)
    if request.method == "DELETE":
        services.device_model_purge(device_model=device_model)
        return wire.reset()
    rid, code, options = _template(wire.body_form(request))
    services.device_model_template_save(device_model=device_model, clone_rid=rid, clone_code=code, options=options)
    return wire.reset()


# --- /provision/manage/model/<model>/ -----------------------------------------------------------------------------


def _page(form: Form) -> tuple[int, int]:
    def number(name: str, default: int) -> int:
        raw = form.get(name)
        if raw is None or raw == "":
            return default
        if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
            raise Refusal(400, f"{name} must be a non-negative integer")
        return int(raw)

    return number("offset", 0), min(max(number("limit", LIMIT_MAX), LIMIT_MIN), LIMIT_MAX)


def _serial_list(device_model: DeviceModel, form: Form) -> HttpResponse:
    offset, limit = _page(form)
    status = form.get("status")
    if status is not None and status not in STATUS_WORDS:
        raise Refusal(400, f"status must be one of {', '.join(sorted(STATUS_WORDS))}")
    rows = selectors.model_serials(model=device_model, offset=offset, limit=limit, state=status)
    return wire.csv_answer(
        wire.csv_line([sn, "" if state == ActivationState.NOT_ADDED else selectors.device_rid(pk), extra])
        for pk, sn, state, extra in rows
    )


def _ranges_answer(device_model: DeviceModel) -> HttpResponse:
    ranges = [
        importing.ExositeRange(r.format, r.first, r.last, r.length, r.casing).as_dict()
        for r in device_model.serial_ranges.all()
    ]
    return HttpResponse(json.dumps({"ranges": ranges}), content_type="application/javascript; charset=utf-8")


def _ranges(body: bytes) -> list[importing.ExositeRange]:
    try:
        data = json.loads(wire.decode(body), parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the parser goes
        raise Refusal(400, "body is not valid JSON") from exc
    return importing.parse_ranges(data, max_total=settings.EXOSITE_RANGE_MAX)


def _no_constant(name: str) -> None:
    raise ValueError(name)


def _csv_rows(body: bytes) -> list[tuple[int, str, str]]:
    """``<sn>,<extra>`` lines (a header line ``sn,extra`` is skipped); read whole before anything is written."""
    return list(importing.rows_from_csv(io.StringIO(wire.decode(body), newline=""), strict=True))


@wire.view(("GET", "POST", "DELETE"))
def serials(request: HttpRequest, token: VendorToken, model: str) -> HttpResponse:
    device_model = wire.vendor_model(token, model)
    if request.method == "GET":
        form = wire.query(request)
        return _ranges_answer(device_model) if form.get("show") == "ranges" else _serial_list(device_model, form)
    kind = wire.media_type(request)
    removing = request.method == "DELETE"
    if kind in wire.JSON_TYPES:
        ranges = _ranges(wire.read_body(request))
        if removing:
            services.serial_ranges_remove(model=device_model, ranges=ranges)
        else:
            services.serial_ranges_add(model=device_model, ranges=ranges)
        return wire.reset()
    if kind == "text/csv":
        rows = _csv_rows(wire.read_body(request))
        if removing:
            services.devices_remove(model=device_model, serials=[sn for _, sn, _ in rows])
        else:
            services.devices_add(model=device_model, rows=rows)
        return wire.reset()
    return _serial_form(device_model, wire.body_form(request), removing=removing)


def _serial_form(device_model: DeviceModel, form: Form, *, removing: bool) -> HttpResponse:
    """``sn=&extra=`` or ``sn[]=…`` to add; ``delete=true`` (the documentation) or ``remove=true`` (pyonep's
    ``serialnumber_remove_batch``) to remove; pyonep's ``add=true`` is accepted and means adding."""
    serial_list = form.getlist("sn")
    if not serial_list:
        raise Refusal(400, "missing field sn")
    if removing or form.flag("delete") or form.flag("remove"):
        services.devices_remove(model=device_model, serials=serial_list)
        return wire.reset()
    extra = form.get("extra", "", limit=255) or ""
    rows = [(line, sn, extra) for line, sn in enumerate(serial_list, start=1)]
    services.devices_add(model=device_model, rows=rows)
    return wire.reset()


# --- /provision/manage/model/<model>/<sn> -------------------------------------------------------------------------


def _device(device_model: DeviceModel, sn: str) -> Device:
    device = selectors.model_device(model=device_model, serial=sn)
    if device is None:
        raise Refusal(404, "serial number not found")
    return device


def _log(device: Device) -> HttpResponse:
    """``<timestamp>,<connection-info>,<log-entry>``: Unix seconds, the client address, the outcome."""
    return wire.csv_answer(
        wire.csv_line([int(a.at.timestamp()), a.remote_addr or "", a.outcome])
        for a in selectors.device_log(device_id=device.pk)
    )


@wire.view(("GET", "POST", "DELETE"))
def serial(request: HttpRequest, token: VendorToken, model: str, sn: str) -> HttpResponse:
    device = _device(wire.vendor_model(token, model), sn)
    if request.method == "GET":
        show = wire.query(request).get("show")
        if show == "log":
            return _log(device)
        if show == "groups":
            return wire.empty(204)  # groups are not supported: a serial is a member of none
        if device.current_state == ActivationState.NOT_ADDED:
            return wire.empty(204)  # "unused": never enabled, no client
        return wire.csv_answer([wire.csv_line([device.current_state, selectors.device_rid(device.pk), device.extra])])
    if request.method == "DELETE":
        services.device_delete(device=device)
        return wire.reset()
    return _serial_change(device, wire.body_form(request))


def _serial_change(device: Device, form: Form) -> HttpResponse:
    if form.flag("disable"):
        services.device_disable(device=device)
        return wire.reset()
    if not form.flag("enable"):
        raise Refusal(400, "give enable=true or disable=true")
    if (oldsn := form.get("oldsn", limit=128)) is not None:
        old = _device(device.model, oldsn)
        services.device_remap(device=old, serial_number=device.serial_number)
        return wire.reset()
    if "owner" in form:
        form.get("owner", limit=255)  # One Platform owner RIDs have no counterpart: accepted, not kept
        if device.current_state != ActivationState.NOT_ADDED:
            raise Refusal(409, "serial number already enabled")
        services.device_enable(device=device)
        return HttpResponse(selectors.device_rid(device.pk), content_type=wire.CSV)
    if device.current_state == ActivationState.NOT_ADDED:
        services.device_enable(device=device)
    else:
        services.device_regenerate(device=device)
    return wire.reset()


# --- /provision/register ------------------------------------------------------------------------------------------


@wire.view(("GET", "POST"))
def register(request: HttpRequest, token: VendorToken) -> HttpResponse:
    """A token belongs to one vendor, named by staff: showing it works; registering that same name is a no-op;
    another name, or unregistering, is refused (vendor names are changed by staff, in the admin)."""
    if request.method == "GET":
        return wire.text(token.vendor.name)
    form = wire.body_form(request)
    vendor = form.get("vendor", limit=64)
    if not vendor:
        raise Refusal(400, "missing field vendor")
    if form.flag("delete") or vendor != token.vendor.name:
        raise Refusal(409, "vendor names are managed by staff in the portal")
    return wire.reset()


# --- what the portal does not offer -------------------------------------------------------------------------------


@wire.view(("GET", "POST", "PUT", "DELETE"))
def unsupported(request: HttpRequest, token: VendorToken, rest: str = "") -> HttpResponse:
    """Groups, model shares and vendor-token administration: answered in the dialect, never as a page."""
    return wire.text("not supported by this portal", 501)


@wire.view(("GET", "POST", "PUT", "DELETE"), authenticate=False)
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    return wire.text("not found", 404)
