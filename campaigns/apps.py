from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from campaigns.models import Campaign

        # Creation and draft edits go through save() and are recorded by the trail's hook; state changes are
        # conditional UPDATEs and write their own entries (services._audit). The engine's bookkeeping is not a
        # staff change.
        auditlog.register(
            Campaign, exclude_fields=["bucket_tokens", "bucket_at", "group_tokens", "current_rate", "updated_at"]
        )
