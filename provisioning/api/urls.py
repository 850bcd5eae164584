from django.urls import path

from provisioning.api import rest

urlpatterns = [
    path("devices/<int:pk>/box/", rest.BoxView.as_view(), name="device-box"),
    path("devices/<int:pk>/reprovision/", rest.ReprovisionView.as_view(), name="device-reprovision"),
    path("devices/<int:pk>/refresh/", rest.RefreshView.as_view(), name="device-refresh"),
    path("devices/<int:pk>/provision/", rest.ProvisionView.as_view(), name="device-provision"),
    path("devices/<int:pk>/set-index/", rest.SetIndexView.as_view(), name="device-set-index"),
    path("commands/", rest.CommandListView.as_view(), name="command-list"),
]
