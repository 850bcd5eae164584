from __future__ import annotations

import copy

from django import forms
from django.contrib import admin
from django.db.models import QuerySet

from portal.kernel.adminfilters import FilterSetAdminMixin
from portal.kernel.console import ConsoleAdmin, ObjectAction, badge
from webhooks import services
from webhooks.choices import DeliveryState, EventType
from webhooks.filters import DeliveryFilter
from webhooks.models import Delivery, Endpoint

STATE_TONES = {DeliveryState.DELIVERED: "completed", DeliveryState.PENDING: "pending", DeliveryState.DEAD: "failed"}


class EndpointForm(forms.ModelForm):
    """The secret is write-only: asked for when the endpoint is made, replaced only when a new one is typed."""

    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=f"At least {services.MIN_SECRET} characters; leave empty to keep the current one (never shown).",
    )
    url = forms.URLField(
        label="URL", max_length=500, assume_scheme="https", help_text="http(s) URL that receives a POST per event."
    )
    event_types = forms.MultipleChoiceField(choices=EventType.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Endpoint
        fields = ("name", "url", "event_types", "active")


@admin.register(Endpoint)
class EndpointAdmin(ConsoleAdmin):
    form = EndpointForm
    list_display = ("name", "url", "events", "active", "created_at")
    list_filter = ("active",)
    search_fields = ("name", "url")
    fields = ("name", "url", "secret", "event_types", "active")

    @admin.display(description="event types")
    def events(self, obj: Endpoint) -> str:
        return ", ".join(obj.event_types)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        # A copy: the declared field is shared by every form class the admin makes.
        secret = form.base_fields["secret"] = copy.copy(form.base_fields["secret"])
        secret.required = obj is None
        secret.help_text = (
            f"At least {services.MIN_SECRET} characters; it signs every delivery and is never shown again."
            if obj is None
            else "Leave empty to keep the current secret (it is never shown); type a new one to replace it."
        )
        return form

    def service_save(self, request, obj, form, change):
        data = form.cleaned_data
        return services.endpoint_save(
            endpoint=obj if change else None,
            name=data["name"],
            url=data["url"],
            event_types=list(data["event_types"]),
            active=data["active"],
            secret=data["secret"] or None,
        )

    def service_delete(self, request, obj):
        services.endpoint_delete(endpoint=obj)


@admin.register(Delivery)
class DeliveryAdmin(FilterSetAdminMixin, ConsoleAdmin):
    """The delivery log: read only; a delivered or dead delivery can be sent again."""

    list_display = (
        "id",
        "event_type",
        "object_key",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "last_latency_ms",
        "created_at",
        "delivered_at",
    )
    list_filter = ("state", "event_type", "endpoint")
    search_fields = ("=event_id", "object_key")
    list_select_related = ("endpoint",)
    show_full_result_count = False
    filterset_class = DeliveryFilter
    actions = ("redeliver",)
    change_list_template = "admin/portal/live_change_list.html"
    # webhooks.services publishes one webhook.deliveries per batch of attempts or redelivery, webhook.delivery per
    # single send (the deliver task)
    live_event = "webhook.delivery webhook.deliveries"
    object_actions = (ObjectAction("redeliver", "Redeliver", run="redeliver_one", shown="can_redeliver"),)

    def get_readonly_fields(self, request, obj=None):
        # The next attempt means something only while the delivery is pending.
        return [f.name if f.name != "next_attempt_at" else "next_attempt" for f in Delivery._meta.fields]

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    @admin.display(description="next attempt")
    def next_attempt(self, obj: Delivery) -> object:
        return obj.next_attempt_at if obj.state == DeliveryState.PENDING else "none (not pending)"

    @admin.display(description="state", ordering="state")
    def status(self, obj: Delivery) -> str:
        return badge(STATE_TONES[DeliveryState(obj.state)], obj.get_state_display())

    def can_redeliver(self, obj: Delivery) -> bool:
        return obj.state != DeliveryState.PENDING

    def redeliver_one(self, request, obj, data) -> str:
        return self.run_one(request, "webhooks.redeliver", obj)

    @admin.action(description="Redeliver the selected deliveries", permissions=["change"])
    def redeliver(self, request, queryset: QuerySet[Delivery]):
        return self.bulk(request, queryset, "webhooks.redeliver")
