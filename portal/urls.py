from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from components.api import login as components_login
from components.api import v1 as components_v1
from conax.api import crm
from portal import docs_pages, fleet_views, health, pages
from portal import metrics as portal_metrics
from portal.fleet_api import FleetSummaryView
from portal.kernel.api.rest import TokenView
from provisioning.api import activation, jsonrpc

api_v1 = [
    path("auth/token/", TokenView.as_view(), name="auth-token"),
    path("", include("provisioning.api.urls")),
    path("", include("devices.api.urls")),
    path("", include("components.api.urls")),
    path("", include("conax.api.rest_urls")),  # conditional access: /api/v1/conax/…
    path("", include("webhooks.api.urls")),  # outbound webhooks: /api/v1/webhooks/…
    path("", include("campaigns.api.urls")),  # fleet campaigns: /api/v1/campaigns/…
    path("fleet/summary/", FleetSummaryView.as_view(), name="fleet-summary"),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", portal_metrics.metrics_view, name="metrics"),  # Prometheus (portal/metrics.py)
    path("provision/activate", activation.activate, name="provision-activate"),
    # --- Exosite fleet management API (docs/exosite.md) ---
    path("", include("provisioning.api.exosite.urls")),
    # --- end Exosite fleet management API ---
    path("jsonrpc", jsonrpc.endpoint, name="device-jsonrpc"),
    path("v1/Login/", components_login.login, name="v1-login"),
    path("v1/DeviceProvisioningComponents/", components_v1.device_provisioning_components, name="v1-components"),
    path("crmapi/", include("conax.api.urls")),
    path("crmapi", crm.unknown, {"path": ""}),  # the bare prefix answers the envelope too, never a redirect
    path("", pages.my_devices, name="pages-my-devices"),
    path("panel/", pages.my_devices_panel, name="pages-my-devices-panel"),
    path("login/", pages.LoginView, name="pages-login"),
    path("logout/", pages.LogoutView, name="pages-logout"),
    path("password-reset/", pages.PasswordResetView.as_view(), name="pages-password-reset"),
    path("password-reset/sent/", pages.PasswordResetDoneView, name="pages-password-reset-done"),
    path("password-reset/<uidb64>/<token>/", pages.PasswordResetConfirmView, name="pages-password-reset-confirm"),
    path("password-reset/done/", pages.PasswordResetCompleteView, name="pages-password-reset-complete"),
    path("devices/<int:device_id>/", pages.device_page, name="pages-device"),
    path("devices/<int:device_id>/panel/", pages.device_panel, name="pages-device-panel"),
    path("admin/activity/", admin.site.admin_view(pages.activity), name="admin-activity"),
    path("admin/requests/<int:number>/panel/", admin.site.admin_view(pages.request_panel), name="admin-request-panel"),
    path(
        "admin/devices/<int:device_id>/panel/",
        admin.site.admin_view(pages.device_staff_panel),
        name="admin-device-panel",
    ),
    path("admin/", admin.site.admin_view(fleet_views.index), name="admin-dashboard"),
    path("admin/fleet/panel/", admin.site.admin_view(fleet_views.panel), name="admin-fleet-panel"),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="api-v1")),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[]), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[]), name="api-docs"),
    path("api/redoc/", pages.api_redoc, name="api-redoc"),
    # The repository's docs/*.md as pages (portal/docs_pages.py): the dialects the schema cannot describe.
    path("docs/", docs_pages.docs_index, name="docs-index"),
    path("docs/<slug:name>/", docs_pages.docs_page, name="docs-page"),
]

# Each dialect answers its own format when Django answers for it (unknown path, refused Host, database down).
handler400 = "portal.errors.bad_request"
handler403 = "portal.errors.permission_denied"
handler404 = "portal.errors.page_not_found"
handler500 = "portal.errors.server_error"
