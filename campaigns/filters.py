"""One FilterSet per listable model of campaigns: the admin, the staff API and the members list filter the same way."""

from __future__ import annotations

import django_filters as filters
from django import forms

from campaigns.choices import ActionKind, CampaignState, MemberState, TargetKind
from campaigns.models import Campaign, Member


class IntegerFilter(filters.NumberFilter):
    field_class = forms.IntegerField


class CampaignFilter(filters.FilterSet):
    state = filters.ChoiceFilter(choices=CampaignState.choices, label="State")
    target_kind = filters.ChoiceFilter(choices=TargetKind.choices, label="Target kind")
    action_kind = filters.ChoiceFilter(choices=ActionKind.choices, label="Action kind")
    action = filters.CharFilter(field_name="action", label="Action (command kind or Conax request type)")
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")

    class Meta:
        model = Campaign
        fields = ["state", "target_kind", "action_kind", "action", "q"]


class MemberFilter(filters.FilterSet):
    outcome = filters.ChoiceFilter(field_name="state", choices=MemberState.choices, label="Outcome (member state)")
    wave = IntegerFilter(field_name="wave", min_value=1, max_value=1000, label="Wave number")
    q = filters.CharFilter(field_name="label", lookup_expr="icontains", label="Label (serial number) contains")

    class Meta:
        model = Member
        fields = ["outcome", "wave", "q"]
