from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User
    from rest_framework.request import Request
    from rest_framework.views import APIView

SUPPORT_GROUP = "support"


class IsSupportStaff(BasePermission):
    """The staff REST API: active staff users of the support group (or superusers); the default for every endpoint.

    ``is_staff`` alone only opens the admin's door; what a staff user may do there comes from the support group's
    permissions, and the API asks for the same membership.
    """

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_support_staff(request.user)


def is_support_staff(user: User | AnonymousUser | None) -> bool:
    if not (user and user.is_authenticated and user.is_active and user.is_staff):
        return False
    return user.is_superuser or user.groups.filter(name=SUPPORT_GROUP).exists()
