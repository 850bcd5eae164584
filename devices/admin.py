from __future__ import annotations

import io
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from devices import contents, importing, services, vendor_tokens
from devices.admin_filters import DeviceModelChoices, VendorChoices
from devices.choices import ActivationState
from devices.choices import ActivationState as S
from devices.exceptions import InvalidImport
from devices.filters import DeviceFilter, DeviceModelFilter, VendorFilter, VendorTokenFilter
from devices.models import ActivationAttempt, Content, Device, DeviceModel, Vendor, VendorToken, stranded_q
from portal.kernel import jobs
from portal.kernel.adminexport import ExportAdminMixin
from portal.kernel.adminfilters import FilterSetAdminMixin
from portal.kernel.console import ConsoleAdmin, ConsoleInline, NotDone, ObjectAction, badge

MAX_IMPORT_BYTES = 2 * 1024 * 1024  # larger files: `manage.py import_serials`


@admin.register(Vendor)
class VendorAdmin(FilterSetAdminMixin, ConsoleAdmin):
    filterset_class = VendorFilter
    list_display = ("name", "created_at")
    search_fields = ("name",)

    def service_save(self, request, obj, form, change):
        return services.vendor_save(name=form.cleaned_data["name"], vendor=obj if change else None)

    def service_delete(self, request, obj):
        services.vendor_delete(vendor=obj)


@admin.register(DeviceModel)
class DeviceModelAdmin(FilterSetAdminMixin, ConsoleAdmin):
    filterset_class = DeviceModelFilter
    list_display = ("name", "vendor", "description")
    list_filter = ("vendor",)
    search_fields = ("name", "vendor__name")
    autocomplete_fields = ("vendor",)
    list_select_related = ("vendor",)

    def service_save(self, request, obj, form, change):
        data = form.cleaned_data
        return services.device_model_save(
            vendor=data["vendor"],
            name=data["name"],
            description=data.get("description", ""),
            device_model=obj if change else None,
        )

    def service_delete(self, request, obj):
        services.device_model_delete(device_model=obj)


class ActivationAttemptInline(ConsoleInline):
    model = ActivationAttempt
    fields = ("at", "outcome", "remote_addr", "user_agent")
    readonly_fields = fields
    ordering = ("-at",)


class EffectiveStateFilter(admin.SimpleListFilter):
    """Filters on the state as read everywhere: a pending device whose window has passed is expired."""

    title = "activation state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return ActivationState.choices

    def queryset(self, request, queryset):
        return queryset.in_effective_state(self.value()) if self.value() else queryset


class StrandedCikFilter(admin.SimpleListFilter):
    """Devices whose CIK was handed out but never used: the answer may never have reached the device."""

    title = "CIK use"
    parameter_name = "stranded"
    SINCE = {"1": None, "1h": timedelta(hours=1), "1d": timedelta(days=1)}

    def lookups(self, request, model_admin):
        return [
            ("1", "Never used (stranded)"),
            ("1h", "Never used for over an hour"),
            ("1d", "Never used for over a day"),
            ("0", "Used, or no CIK"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "0":
            return queryset.exclude(stranded_q())
        if value in self.SINCE:
            return queryset.stranded(unused_for=self.SINCE[value])
        return queryset


class ImportForm(forms.Form):
    model = forms.ModelChoiceField(queryset=DeviceModel.objects.select_related("vendor"), label="Device model")
    file = forms.FileField(required=False, help_text="CSV with one `sn,extra` per line (header optional).")
    csv_text = forms.CharField(required=False, widget=forms.HiddenInput)
    enable = forms.BooleanField(required=False, help_text="Open the activation window of the new serials.")

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            if upload.size > MAX_IMPORT_BYTES:
                raise forms.ValidationError("File too large for the admin; use `manage.py import_serials`.")
            try:
                data["csv_text"] = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise forms.ValidationError("The file is not UTF-8 text.") from exc
        if not data.get("csv_text"):
            raise forms.ValidationError("Choose a CSV file.")
        return data


class DeviceForm(forms.ModelForm):
    class Meta:
        model = Device
        fields = ("model", "serial_number", "extra", "owner")

    def clean_owner(self):
        owner = self.cleaned_data.get("owner")
        if owner is not None and (problem := services.owner_problem(owner)):
            raise forms.ValidationError(problem)
        return owner

    def clean_serial_number(self):
        serial = self.cleaned_data.get("serial_number", "")
        if problem := services.serial_problem(serial):
            raise forms.ValidationError(problem)
        return serial


@admin.register(Device)
class DeviceAdmin(FilterSetAdminMixin, ExportAdminMixin, ConsoleAdmin):
    filterset_class = DeviceFilter
    list_display = (
        "serial_number",
        "model",
        "state_display",
        "has_active_cik",
        "cik_use",
        "owner",
        "activation_expires_at",
    )
    list_filter = (
        EffectiveStateFilter,
        StrandedCikFilter,
        VendorChoices,
        DeviceModelChoices,
        ("owner", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("serial_number",)
    autocomplete_fields = ("model", "owner")
    list_select_related = ("model__vendor", "owner")
    # What changes by itself (state, CIK use, the window) is not a form field: the page's live facts show it, re-read
    # with the live panel, so nothing on the page can be stale beside a fresh value (templates/admin/devices/device/).
    readonly_fields = ("created_at", "updated_at")
    fields = ("model", "serial_number", "extra", "owner", *readonly_fields)
    inlines = (ActivationAttemptInline,)
    actions = ("enable", "reenable", "disable")
    change_list_template = "admin/devices/device/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).with_effective_state()

    object_actions = (
        ObjectAction("enable", "Enable", run="enable_one", shown="can_enable"),
        ObjectAction(
            "reenable",
            "Re-enable",
            run="reenable_one",
            shown="can_reenable",
            danger=True,
            confirm="Re-enabling opens a new activation window. The device's current key (CIK) stops working at "
            "once: the device is offline until it activates again.",
        ),
        ObjectAction(
            "disable",
            "Disable",
            run="disable_one",
            shown="can_disable",
            danger=True,
            confirm="Disabling revokes the device's key (CIK) at once and refuses any activation until the device is "
            "re-enabled. The device goes offline.",
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return ("model", "serial_number", *fields) if obj is not None else fields  # its identity, once it exists

    def get_urls(self):
        facts = self.admin_site.admin_view(self.facts_view)
        extra = [path("<int:device_id>/facts/", facts, name="devices_device_facts")]
        return [*extra, *self._import_urls(), *super().get_urls()]

    def facts_view(self, request: HttpRequest, device_id: int) -> HttpResponse:
        device = self.get_queryset(request).filter(pk=device_id).first()
        if device is None or not self.has_view_permission(request, device):
            raise Http404("No such device.")
        return TemplateResponse(request, "admin/devices/device/facts.html", self.facts(device))

    def facts(self, device: Device) -> dict:
        return {
            "d": device,
            "state": self.state_display(device),
            "cik_active": device.has_active_cik,
            "cik_use": self.cik_use(device),
        }

    def change_view(self, request, object_id, form_url="", extra_context=None):
        device = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if device is not None:
            context["facts"] = self.facts(device)
        return super().change_view(request, object_id, form_url, context)

    def service_save(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            return services.device_update(device=obj, extra=data.get("extra", ""), owner=data.get("owner"))
        return services.device_create(
            model=data["model"], serial_number=data["serial_number"], extra=data.get("extra", ""), owner=data["owner"]
        )

    def service_delete(self, request, obj):
        services.device_delete(device=obj)

    def can_enable(self, obj: Device) -> bool:
        return obj.current_state == S.NOT_ADDED

    def can_reenable(self, obj: Device) -> bool:
        return obj.current_state in (S.ACTIVATED, S.EXPIRED, S.DISABLED)

    def can_disable(self, obj: Device) -> bool:
        return obj.current_state in (S.NOT_ACTIVATED, S.ACTIVATED, S.EXPIRED)

    def enable_one(self, request, obj, data) -> str:
        return self.run_one(request, "devices.enable", obj)

    def reenable_one(self, request, obj, data) -> str:
        return self.run_one(request, "devices.reenable", obj) + " Its old key no longer works."

    def disable_one(self, request, obj, data) -> str:
        return self.run_one(request, "devices.disable", obj) + " Its key no longer works."

    @admin.display(description="State", ordering="state")
    def state_display(self, obj: Device) -> str:
        return badge(obj.current_state, ActivationState(obj.current_state).label)

    @admin.display(boolean=True, description="CIK active")
    def has_active_cik(self, obj: Device) -> bool:
        # The CIK itself is never stored in clear nor shown; only whether one is live.
        return obj.has_active_cik

    @admin.display(description="CIK use", ordering="cik_first_used_at")
    def cik_use(self, obj: Device) -> str:
        unused = obj.cik_unused_for
        if unused is not None:
            return f"never used ({_duration(unused)} since activation)"
        return "used" if obj.cik_first_used_at else "—"

    @admin.action(description="Enable selected devices (open the activation window)", permissions=["change"])
    def enable(self, request, queryset):
        return self.bulk(request, queryset, "devices.enable")

    @admin.action(description="Re-enable selected devices (new window, old CIK revoked)", permissions=["change"])
    def reenable(self, request, queryset):
        return self.bulk(request, queryset, "devices.reenable")

    @admin.action(description="Disable selected devices (CIK revoked)", permissions=["change"])
    def disable(self, request, queryset):
        return self.bulk(request, queryset, "devices.disable")

    form = DeviceForm

    def _import_urls(self):
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="devices_device_import")]

    @staticmethod
    def _rows(form: ImportForm) -> list | None:
        try:
            return list(importing.rows_from_csv(io.StringIO(form.cleaned_data["csv_text"])))
        except InvalidImport as exc:
            form.add_error(None, str(exc))
            return None

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a CSV, see what it would do (created / existing / invalid), then confirm."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": "Import serial numbers",
        }
        rows = self._rows(form) if request.method == "POST" and form.is_valid() else None
        if rows is not None:
            data = form.cleaned_data
            confirmed = "confirm" in request.POST
            if confirmed and len(rows) > settings.ADMIN_IMPORT_INLINE_ROWS:
                return self._import_in_background(request, data, rows)
            result = services.devices_import(
                model=data["model"], rows=rows, enable=data["enable"], dry_run=not confirmed
            )
            if confirmed:
                self.message_user(
                    request,
                    f"Imported into {data['model']}: {result.created} created, {result.existing} already there, "
                    f"{len(result.duplicates)} repeated in the file, {len(result.invalid)} invalid, "
                    f"{result.enabled} enabled.",
                    messages.SUCCESS,
                )
                return redirect(reverse("admin:devices_device_changelist"))
            context |= {
                "preview": result,
                "more": result.created - len(result.sample),
                "window": settings.ACTIVATION_WINDOW if data["enable"] else None,
                "window_words": _duration(timedelta(seconds=settings.ACTIVATION_WINDOW)),
                "invalid_rows": [(line, importing.shown(value), why) for line, value, why in result.invalid[:100]],
                "duplicate_rows": result.duplicates[:100],
                "csv_text": data["csv_text"],
            }
        return TemplateResponse(request, "admin/devices/device/import.html", context)

    def _import_in_background(self, request: HttpRequest, data: dict, rows: list) -> HttpResponse:
        """A large file: the rows the preview showed become a background job with live progress. Lines repeated in
        the file keep their first occurrence (the preview listed the repeats)."""
        table: dict[str, list[str]] = {}
        seen: set[str] = set()
        for line, serial, extra in rows:
            if serial not in seen:
                seen.add(serial)
                table[str(line)] = [serial, extra]
        job = jobs.job_start(
            name="devices.import",
            ids=[int(line) for line in table],
            params={"model_id": data["model"].pk, "enable": bool(data["enable"]), "rows": table},
            actor=request.user,
            title=f"Import {len(table)} serial numbers into {data['model']}"
            + (" and enable them" if data["enable"] else ""),
        )
        return redirect(reverse("admin:portal_bulkjob_change", args=[job.pk]))


def _duration(span: timedelta) -> str:
    """Whole units a support engineer reads at a glance: 45 s, 12 min, 5 h 3 min, 2 d 4 h."""
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{seconds} s"


# --- Exosite fleet management (docs/exosite.md) -------------------------------------------------------------------


class TokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("live", "Live"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() in ("live", "revoked"):
            return queryset.filter(revoked_at__isnull=self.value() == "live")
        return queryset


@admin.register(VendorToken)
class VendorTokenAdmin(FilterSetAdminMixin, ConsoleAdmin):
    """Vendor tokens are created here and shown once; afterwards they can only be revoked."""

    filterset_class = VendorTokenFilter
    list_display = ("name", "vendor", "created_at", "created_by", "last_used_at", "status")
    list_filter = (TokenStatusFilter, "vendor")
    search_fields = ("name", "vendor__name")
    list_select_related = ("vendor", "created_by")
    object_actions = (
        ObjectAction(
            "revoke",
            "Revoke",
            run="revoke_one",
            shown="is_live",
            danger=True,
            confirm="Revoking ends this token at once: tooling that uses it is refused from its next call.",
        ),
    )

    def get_fields(self, request, obj=None):
        return (
            ("vendor", "name")
            if obj is None
            else ("vendor", "name", "created_at", "created_by", "last_used_at", "revoked_at")
        )

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    @admin.display(description="Status")
    def status(self, token: VendorToken) -> str:
        return badge("disabled", "Revoked") if token.revoked_at else badge("active", "Live")

    def is_live(self, token: VendorToken) -> bool:
        return token.revoked_at is None

    def service_save(self, request, obj, form, change):
        data = form.cleaned_data
        issued = vendor_tokens.vendor_token_create(vendor=data["vendor"], name=data["name"], created_by=request.user)
        request._issued_vendor_token = issued.raw  # shown by response_add, once
        return issued.token

    def response_add(self, request, obj, post_url_continue=None):
        raw = getattr(request, "_issued_vendor_token", None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        context = {**self.admin_site.each_context(request), "opts": self.opts, "token": obj, "raw": raw}
        context["title"] = f"Vendor token {obj.name}"
        response = TemplateResponse(request, "admin/devices/vendortoken/issued.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def revoke_one(self, request, obj, data) -> str:
        if not vendor_tokens.vendor_token_revoke(token=obj):
            raise NotDone("not changed: already revoked")
        return f"Revoked {obj}."


@admin.register(Content)
class ContentAdmin(ConsoleAdmin):
    """Content vendors upload through the management API; staff see it, describe it, say which devices may
    download protected content, and delete it. Blobs are uploaded by the vendor's tooling only."""

    list_display = ("name", "model", "protected", "content_type", "size", "uploaded_at")
    list_filter = ("protected", "model")
    search_fields = ("name", "model__name")
    list_select_related = ("model__vendor",)
    autocomplete_fields = ("model", "allowed")
    readonly_on_change = ("model", "name", "content_type", "size", "uploaded_at")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("model", "name", "meta", "protected")
        return ("model", "name", "meta", "protected", "allowed", "content_type", "size", "uploaded_at")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_on_change

    def service_save(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            return contents.content_create(
                model=data["model"], name=data["name"], meta=data.get("meta", ""), protected=data["protected"]
            )
        return contents.content_save(
            content=obj, meta=data["meta"], protected=data["protected"], allowed=data["allowed"]
        )

    def service_delete(self, request, obj):
        contents.content_delete(content=obj)
