"""Reads of campaigns for the console and the staff API (the writes are ``campaigns.services``)."""

from __future__ import annotations

from django.db.models import QuerySet

from campaigns.models import Campaign, Member


def campaign_list() -> QuerySet[Campaign]:
    return Campaign.objects.select_related("created_by").order_by("-created_at", "-id")


def member_list(*, campaign: Campaign) -> QuerySet[Member]:
    return Member.objects.filter(campaign=campaign).order_by("id")
