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


# Whether a user is in the support group, when the statement that read the user read that too (the token check of
# every API call, portal.kernel.services): is_support_staff then sends no query of its own. Kept on the instance, so
# for one request, as Django keeps a user's permissions (``_perm_cache``).
SUPPORT_MEMBER = "_portal_support_member"


def remember_support_membership(user: User | AnonymousUser, *, member: bool) -> None:
    setattr(user, SUPPORT_MEMBER, member)


def is_support_staff(user: User | AnonymousUser | None) -> bool:
    if not (user and user.is_authenticated and user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    member = getattr(user, SUPPORT_MEMBER, None)
    return user.groups.filter(name=SUPPORT_GROUP).exists() if member is None else member
