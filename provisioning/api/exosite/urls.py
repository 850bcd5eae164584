"""Routes of the Exosite fleet management API, included at the project root (``portal.urls``)."""

from django.urls import path, re_path

from provisioning.api.exosite import content, manage

urlpatterns = [
    path("provision/manage/model/", manage.models, name="exosite-models"),
    path("provision/manage/model/<str:model>", manage.model, name="exosite-model"),
    path("provision/manage/model/<str:model>/", manage.serials, name="exosite-serials"),
    path("provision/manage/model/<str:model>/<str:sn>", manage.serial, name="exosite-serial"),
    path("provision/manage/content/<str:model>/", content.content_list, name="exosite-contents"),
    path("provision/manage/content/<str:model>/<str:content_id>", content.content_item, name="exosite-content"),
    path("provision/download", content.download, name="exosite-download"),
    path("provision/register", manage.register, name="exosite-register"),
    re_path(r"^provision/manage/(?:group|share)/(?P<rest>.*)$", manage.unsupported, name="exosite-unsupported"),
    re_path(r"^provision/admin/auth(?P<rest>/.*)?$", manage.unsupported),
    # Anything else under the prefix: the dialect's 404, never a redirect to an added slash.
    re_path(r"^provision/manage/(?P<rest>.*)$", manage.not_found),
]
