from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.utils.html import format_html

from conax import services
from conax.admin_filters import RequestCreatedFilter, RequestFailingFilter
from conax.choices import LifeCycleState
from conax.exceptions import ConaxError
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
from portal.kernel.adminfilters import FilterSetAdminMixin


@admin.register(Unit)
class UnitAdmin(admin.ModelAdmin):
    list_display = ("name", "alternative_code", "group_name", "community_name")
    search_fields = ("name", "alternative_code")


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "service_ca_id", "alternative_code")
    search_fields = ("code", "name", "service_ca_id", "alternative_code")


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("number", "customer", "created_at")
    search_fields = ("number", "customer__username")
    autocomplete_fields = ("customer",)
    filter_horizontal = ("services",)
    list_select_related = ("customer",)


class EntitlementInline(admin.TabularInline):
    """Read-only: entitlements change only when the head-end confirms a request."""

    model = Entitlement
    fields = ("service", "subscription", "active", "changed_at")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(Smartcard)
class SmartcardAdmin(admin.ModelAdmin):
    list_display = ("serial_number", "ca_id", "subscription", "pairing", "alternative_code")
    search_fields = ("serial_number", "ca_id", "alternative_code", "subscription__number")
    autocomplete_fields = ("subscription",)
    readonly_fields = ("pairing",)
    list_select_related = ("subscription",)
    inlines = (EntitlementInline,)


@admin.register(SetTopBox)
class SetTopBoxAdmin(admin.ModelAdmin):
    list_display = ("serial_number", "ca_id", "device", "subscription", "pairing")
    search_fields = ("serial_number", "ca_id", "alternative_code", "device__serial_number")
    autocomplete_fields = ("subscription", "device")
    readonly_fields = ("pairing",)
    list_select_related = ("subscription", "device")


class PairedCards(admin.TabularInline):
    model = Smartcard
    fields = ("serial_number", "ca_id")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


class PairedBoxes(PairedCards):
    model = SetTopBox


@admin.register(Pairing)
class PairingAdmin(admin.ModelAdmin):
    list_display = ("id", "subscription", "created_at")
    readonly_fields = ("id", "subscription", "created_at")
    inlines = (PairedCards, PairedBoxes)

    def has_add_permission(self, request) -> bool:
        return False  # pairings are made by CREATE_PAIRING requests


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


class RetriesInline(admin.TabularInline):
    model = ProvisioningRequest
    fk_name = "retry_of"
    verbose_name, verbose_name_plural = "retry", "retries"
    fields = ("number", "life_cycle_state", "created_date", "executed_date")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True


class RequestChangeList(ChangeList):
    """Django's date hierarchy computes the next day, month or year of the one asked for in plain Python
    (``?created_date__year=9999&created_date__month=12&created_date__day=31`` overflows into a 500): a date the
    calendar cannot hold is a bad filter, answered like any other (the list with "?e=1"), never an error page."""

    def get_filters(self, request):
        try:
            return super().get_filters(request)
        except (OverflowError, ValueError) as exc:
            raise IncorrectLookupParameters(exc) from exc


@admin.register(ProvisioningRequest)
class ProvisioningRequestAdmin(FilterSetAdminMixin, admin.ModelAdmin):
    filterset_class = ProvisioningRequestFilter
    changelist_base = RequestChangeList
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
        return [f.name for f in ProvisioningRequest._meta.fields if f.name != "ca_pin_encrypted"]

    def has_add_permission(self, request) -> bool:
        return False  # requests come through the CRM API (or a retry)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the history of what was sent to the head-end is kept

    @admin.display(description="state", ordering="life_cycle_state")
    def state(self, obj: ProvisioningRequest) -> str:
        # Coloured by portal/static/portal/admin.css (the Content-Security-Policy allows no inline style).
        return format_html('<strong class="state state-{}">{}</strong>', obj.life_cycle_state, obj.life_cycle_state)

    @admin.action(description="Process selected pending requests now", permissions=["change"])
    def process_now(self, request, queryset: QuerySet[ProvisioningRequest]) -> None:
        numbers = list(queryset.values_list("pk", flat=True))
        queued = services.requests_process_now(numbers=numbers, actor=services.Actor(request.user))
        self.message_user(request, f"{queued} request(s) queued for the head-end.", messages.SUCCESS)

    @admin.action(description="Retry selected rejected requests", permissions=["change"])
    def retry_rejected(self, request, queryset: QuerySet[ProvisioningRequest]) -> None:
        made, refused = 0, []
        for original in queryset.filter(life_cycle_state=LifeCycleState.REJECTED).order_by("number"):
            try:
                services.request_retry(request=original, actor=services.Actor(request.user))
                made += 1
            except ConaxError as exc:
                refused.append(f"{original.number}: {exc.message}")
        self.message_user(request, f"{made} retry request(s) created.", messages.SUCCESS)
        if refused:
            self.message_user(request, "Not retried: " + "; ".join(refused), messages.WARNING)
