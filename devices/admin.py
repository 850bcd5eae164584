from __future__ import annotations

import io
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from devices import importing, services
from devices.admin_filters import DeviceModelChoices, VendorChoices
from devices.choices import ActivationState
from devices.exceptions import InvalidImport
from devices.filters import DeviceFilter, DeviceModelFilter, VendorFilter
from devices.models import ActivationAttempt, Device, DeviceModel, Vendor, stranded_q
from portal.kernel.adminfilters import FilterSetAdminMixin

MAX_IMPORT_BYTES = 2 * 1024 * 1024  # larger files: `manage.py import_serials`


@admin.register(Vendor)
class VendorAdmin(FilterSetAdminMixin, admin.ModelAdmin):
    filterset_class = VendorFilter
    list_display = ("name", "created_at")
    search_fields = ("name",)


@admin.register(DeviceModel)
class DeviceModelAdmin(FilterSetAdminMixin, admin.ModelAdmin):
    filterset_class = DeviceModelFilter
    list_display = ("name", "vendor", "description")
    list_filter = ("vendor",)
    search_fields = ("name", "vendor__name")
    autocomplete_fields = ("vendor",)
    list_select_related = ("vendor",)


class ActivationAttemptInline(admin.TabularInline):
    model = ActivationAttempt
    fields = ("at", "outcome", "remote_addr", "user_agent")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
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
class DeviceAdmin(FilterSetAdminMixin, admin.ModelAdmin):
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
    readonly_fields = (
        "state_display",
        "has_active_cik",
        "cik_use",
        "enabled_at",
        "activation_expires_at",
        "activated_at",
        "cik_first_used_at",
        "disabled_at",
        "configuration_version",
        "created_at",
        "updated_at",
    )
    fields = ("model", "serial_number", "extra", "owner", *readonly_fields)
    inlines = (ActivationAttemptInline,)
    actions = ("enable", "reenable", "disable")
    change_list_template = "admin/devices/device/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).with_effective_state()

    @admin.display(description="State", ordering="state")
    def state_display(self, obj: Device) -> str:
        return ActivationState(obj.current_state).label

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

    def _bulk(self, request, queryset, service, verb: str) -> None:
        result = service(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{verb.capitalize()}d {len(result.changed)} device(s).", messages.SUCCESS)
        if result.skipped:
            self.message_user(
                request, f"{len(result.skipped)} device(s) could not be {verb}d in their state.", messages.WARNING
            )

    @admin.action(description="Enable selected devices (open the activation window)", permissions=["change"])
    def enable(self, request, queryset) -> None:
        self._bulk(request, queryset, services.devices_enable, "enable")

    @admin.action(description="Re-enable selected devices (new window, old CIK revoked)", permissions=["change"])
    def reenable(self, request, queryset) -> None:
        self._bulk(request, queryset, services.devices_reenable, "re-enable")

    @admin.action(description="Disable selected devices (CIK revoked)", permissions=["change"])
    def disable(self, request, queryset) -> None:
        self._bulk(request, queryset, services.devices_disable, "disable")

    form = DeviceForm

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="devices_device_import"), *super().get_urls()]

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
            result = services.devices_import(
                model=data["model"], rows=rows, enable=data["enable"], dry_run=not confirmed
            )
            if confirmed:
                self.message_user(
                    request,
                    f"Imported into {data['model']}: {result.created} created, {result.existing} already there, "
                    f"{len(result.invalid)} invalid, {result.enabled} enabled.",
                    messages.SUCCESS,
                )
                return redirect(reverse("admin:devices_device_changelist"))
            context |= {"preview": result, "invalid_rows": result.invalid[:100], "csv_text": data["csv_text"]}
        return TemplateResponse(request, "admin/devices/device/import.html", context)


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
