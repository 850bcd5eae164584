from django.db import models


class TokenPurpose(models.TextChoices):
    """Which login dialect issued a token; a token only authenticates requests of its own dialect."""

    STAFF_API = "staff_api", "Staff REST API"
    CRM = "crm", "CRM.COM-compatible API"
    COMPONENTS = "components", "/v1/ components API"
