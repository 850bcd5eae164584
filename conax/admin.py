from __future__ import annotations

from django.contrib import admin
from django.db.models import ManyToManyField, QuerySet
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path

from conax import services
from conax.admin_filters import RequestCreatedFilter, RequestFailingFilter
from conax.choices import LifeCycleState, RequestType
from conax.filters import ProvisioningRequestFilter
from conax.models import (
    Entitlement,
    Pairing,
    ProvisioningRequest,
    Service,
    SetTopBox,
    Smartcard,
    Subscription,
    Unit,
)
from portal.kernel import jobs
from portal.kernel.adminexport import ExportAdminMixin
from portal.kernel.adminfilters import FilterSetAdminMixin
from portal.kernel.console import ConsoleAdmin, ConsoleInline, ObjectAction, badge


class CatalogAdmin(ConsoleAdmin):
    """Units, services, subscriptions, smartcards and CAS boxes: saved and deleted through ``conax.services``
    (unique identifiers as the head-end needs them; nothing a pending request refers to is deleted)."""

    def service_save(self, request, obj, form, change):
        values, services_ = {}, None
        for name, value in form.cleaned_data.items():
            field = obj._meta.get_field(name)
            if isinstance(field, ManyToManyField):
                services_ = list(value)
            else:
                values[name] = value
        return services.catalog_save(instance=obj, values=values, services=services_)

    def service_delete(self, request, obj):
        services.catalog_delete(instance=obj)


@admin.register(Unit)
class UnitAdmin(CatalogAdmin):
    list_display = ("name", "alternative_code", "group_name", "community_name")
    search_fields = ("name", "alternative_code")


@admin.register(Service)
class ServiceAdmin(CatalogAdmin):
    list_display = ("code", "name", "service_ca_id", "alternative_code")
    search_fields = ("code", "name", "service_ca_id", "alternative_code")


@admin.register(Subscription)
class SubscriptionAdmin(CatalogAdmin):
    list_display = ("number", "customer", "created_at")
    search_fields = ("number", "customer__username")
    autocomplete_fields = ("customer",)
    filter_horizontal = ("services",)
    list_select_related = ("customer",)


class EntitlementInline(ConsoleInline):
    """Read-only: entitlements change only when the head-end confirms a request."""

    model = Entitlement
    fields = ("service", "subscription", "active", "changed_at")
    readonly_fields = fields


@admin.register(Smartcard)
class SmartcardAdmin(CatalogAdmin):
    list_display = ("serial_number", "ca_id", "subscription", "pairing", "alternative_code")
    search_fields = ("serial_number", "ca_id", "alternative_code", "subscription__number")
    autocomplete_fields = ("subscription",)
    readonly_fields = ("pairing",)
    list_select_related = ("subscription",)
    inlines = (EntitlementInline,)


@admin.register(SetTopBox)
class SetTopBoxAdmin(CatalogAdmin):
    list_display = ("serial_number", "ca_id", "device", "subscription", "pairing")
    search_fields = ("serial_number", "ca_id", "alternative_code", "device__serial_number")
    autocomplete_fields = ("subscription", "device")
    readonly_fields = ("pairing",)
    list_select_related = ("subscription", "device")


class PairedCards(ConsoleInline):
    model = Smartcard
    fields = ("serial_number", "ca_id")
    readonly_fields = fields


class PairedBoxes(PairedCards):
    model = SetTopBox


@admin.register(Pairing)
class PairingAdmin(ConsoleAdmin):
    """Read-only: pairings are made by CREATE_PAIRING requests."""

    list_display = ("id", "subscription", "created_at")
    readonly_fields = ("id", "subscription", "created_at")
    inlines = (PairedCards, PairedBoxes)


class TextFilter(admin.SimpleListFilter):
    """A free-text filter (exact match): there are too many smartcards and subscriptions to list as choices."""

    template = "admin/conax/text_filter.html"
    free_text = True  # any value is one to look for (FilterSetAdminMixin checks the others against their choices)
    lookup: str

    def lookups(self, request, model_admin):
        return ((self.value(), self.value()),) if self.value() else ()

    def queryset(self, request, queryset):
        return queryset.filter(**{self.lookup: self.value()}) if self.value() else queryset


class SmartcardFilter(TextFilter):
    title, parameter_name, lookup = "smartcard CA id", "smartcard_ca_id", "smartcard__ca_id"


class SubscriptionFilter(TextFilter):
    title, parameter_name, lookup = "subscription number", "subscription_number", "subscription__number"


class RetriesInline(ConsoleInline):
    model = ProvisioningRequest
    fk_name = "retry_of"
    verbose_name, verbose_name_plural = "retry", "retries"
    fields = ("number", "life_cycle_state", "created_date", "executed_date")
    readonly_fields = fields
    show_change_link = True


@admin.register(ProvisioningRequest)
class ProvisioningRequestAdmin(FilterSetAdminMixin, ExportAdminMixin, ConsoleAdmin):
    filterset_class = ProvisioningRequestFilter
    list_display = (
        "number",
        "type",
        "state",
        "priority",
        "smartcard",
        "subscription",
        "scheduled_date",
        "executed_date",
        "attempts",
    )
    list_filter = (
        "type",
        "life_cycle_state",
        RequestFailingFilter,
        RequestCreatedFilter,
        "priority",
        SmartcardFilter,
        SubscriptionFilter,
        "created_date",
        "scheduled_date",
        "executed_date",
    )
    search_fields = ("=uid", "=reference_number", "=smartcard__ca_id", "=subscription__number")
    list_select_related = ("smartcard", "subscription")
    date_hierarchy = "created_date"
    show_full_result_count = False  # a count(*) of a million-row table on every page is not worth it
    actions = ("process_now", "retry_rejected")
    change_list_template = "admin/portal/live_change_list.html"
    # conax.pipeline publishes one cas.requests per batch to staff (cas.request goes to each box's device only);
    # cas.request stays for events published before batches
    live_event = "cas.request cas.requests"
    object_actions = (
        ObjectAction("process_now", "Process now", run="process_now_one", shown="is_pending"),
        ObjectAction(
            "retry",
            "Retry",
            run="retry_one",
            shown="can_retry",
            confirm="A new request with the same parameters is created and sent to the head-end at once; this one "
            "stays rejected, linked to it.",
        ),
    )
    inlines = (RetriesInline,)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "uid",
                    "type",
                    "life_cycle_state",
                    "priority",
                    "subscription",
                    "smartcard",
                    "service",
                    "set_top_box",
                    "parameters_set",
                )
            },
        ),
        (
            "History",
            {
                "fields": (
                    "created_date",
                    "created_by_user",
                    "created_by_unit",
                    "scheduled_date",
                    "process_immediately",
                    "sequence_number",
                    "process_name",
                    "process_id",
                    "attempts",
                    "sent_at",
                    "executed_date",
                    "updated_date",
                    "retry_of",
                )
            },
        ),
        (
            "Outcome",
            {
                "fields": (
                    "request",
                    "response",
                    "reference_number",
                    "error_code",
                    "error_description",
                    "provider_error_code",
                    "provider_error_description",
                )
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        # Requests come through the CRM API (or a retry) and their history is kept: nothing here is editable,
        # so the page has no Save button, and there is no add or delete (no service_save / service_delete).
        return [f.name for f in ProvisioningRequest._meta.fields if f.name != "ca_pin_encrypted"]

    @admin.display(description="state", ordering="life_cycle_state")
    def state(self, obj: ProvisioningRequest) -> str:
        return badge(obj.life_cycle_state, obj.get_life_cycle_state_display())

    def is_pending(self, obj: ProvisioningRequest) -> bool:
        return obj.life_cycle_state == LifeCycleState.PENDING

    def can_retry(self, obj: ProvisioningRequest) -> bool:
        return obj.life_cycle_state == LifeCycleState.REJECTED and obj.type != RequestType.UPDATE_CA_PIN_TO_GIVEN_VALUE

    def _one(self, request, operation: str, obj: ProvisioningRequest) -> str:
        self.run_one(request, operation, obj)
        return f"Request {obj.pk} {jobs.operation(operation).done_verb}."

    def process_now_one(self, request, obj, data) -> str:
        return self._one(request, "conax.process_now", obj)

    def retry_one(self, request, obj, data) -> str:
        return self._one(request, "conax.retry", obj)

    @admin.action(description="Process selected pending requests now", permissions=["change"])
    def process_now(self, request, queryset: QuerySet[ProvisioningRequest]):
        return self.bulk(request, queryset, "conax.process_now")

    @admin.action(description="Retry selected rejected requests", permissions=["change"])
    def retry_rejected(self, request, queryset: QuerySet[ProvisioningRequest]):
        return self.bulk(request, queryset, "conax.retry")

    # --- the live page: the whole record re-rendered on every change, never a stale field under a live one ------

    def get_urls(self):
        panel = self.admin_site.admin_view(self.panel_view)
        return [path("<int:number>/panel/", panel, name="conax_provisioningrequest_panel"), *super().get_urls()]

    def _detail(self, request, obj: ProvisioningRequest) -> dict:
        return {"r": obj, "opts": self.opts, "object_actions": self.visible_actions(request, obj)}

    def panel_view(self, request, number: int):
        obj = self.get_queryset(request).filter(pk=number).first()
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404("No such request.")
        return TemplateResponse(request, "admin/conax/provisioningrequest/detail.html", self._detail(request, obj))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if obj is not None:
            context |= {"title": f"Provisioning request {obj.pk}", "detail": self._detail(request, obj)}
        return super().change_view(request, object_id, form_url, context)
