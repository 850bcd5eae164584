"""Errors of campaigns, with stable codes. Every illegal state move has its own error (a ``CampaignStateError``,
category CONFLICT) carrying the campaign's state in ``details``; bad definitions are ``InvalidCampaign``."""

from __future__ import annotations

from portal.kernel.errors import Category, DomainError


class CampaignError(DomainError):
    code = "CAMPAIGN_ERROR"


class InvalidCampaign(CampaignError):
    """A definition that breaks a rule: unknown target filter value, action parameters, wave plan, window."""

    code = "INVALID_CAMPAIGN"


class CampaignStateError(CampaignError):
    category = Category.CONFLICT
    code = "CAMPAIGN_STATE"


class NotEditable(CampaignStateError):
    code = "CAMPAIGN_NOT_EDITABLE"


class NotSchedulable(CampaignStateError):
    code = "CAMPAIGN_NOT_SCHEDULABLE"


class NotStartable(CampaignStateError):
    code = "CAMPAIGN_NOT_STARTABLE"


class NotPausable(CampaignStateError):
    code = "CAMPAIGN_NOT_PAUSABLE"


class NotResumable(CampaignStateError):
    code = "CAMPAIGN_NOT_RESUMABLE"


class NotCancellable(CampaignStateError):
    code = "CAMPAIGN_NOT_CANCELLABLE"


class NotRetryable(CampaignStateError):
    code = "CAMPAIGN_NOT_RETRYABLE"


class NothingToRetry(CampaignStateError):
    code = "CAMPAIGN_NOTHING_TO_RETRY"
