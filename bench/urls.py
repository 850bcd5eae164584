from django.http import HttpResponse
from django.urls import path
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from conax.models import Unit
from devices.models import Device
from portal.urls import urlpatterns as portal_urlpatterns


def read_one(request, pk: int) -> HttpResponse:
    """The baseline: one row read by primary key through the same server and middleware."""
    serial = Device.objects.filter(pk=pk).values_list("serial_number", flat=True).first()
    return HttpResponse(serial or "", content_type="text/plain; charset=utf-8")


@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def drf_read_one(request: Request, pk: int) -> Response:
    """The DRF baseline: a bare DRF view (JSON renderer, no authentication) reading one row by primary key."""
    row = Device.objects.filter(pk=pk).values("id", "serial_number").first()
    return Response(row)


class UnitName(serializers.Serializer):
    name = serializers.CharField(max_length=128)


@api_view(["POST"])
@authentication_classes([])
@permission_classes([])
def drf_create_one(request: Request) -> Response:
    """The DRF create baseline: a bare DRF view (no authentication) validating a one-field serializer and inserting
    one row (a ``conax.Unit``: 32-hex primary key made in Python, unique name; not audited, no signals)."""
    form = UnitName(data=request.data)
    form.is_valid(raise_exception=True)
    unit = Unit.objects.create(name=form.validated_data["name"])
    return Response({"id": unit.pk, "name": unit.name}, status=201)


urlpatterns = [
    path("bench/read/<int:pk>", read_one),
    path("bench/drf-read/<int:pk>", drf_read_one),
    path("bench/drf-create", drf_create_one),
    *portal_urlpatterns,
]
