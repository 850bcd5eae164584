from rest_framework.permissions import BasePermission


class IsSupportStaff(BasePermission):
    """The staff REST API: active staff users only (the default for every endpoint)."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_staff)
