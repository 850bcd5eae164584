from django.http import HttpResponse
from django.urls import path

from devices.models import Device
from portal.urls import urlpatterns as portal_urlpatterns


def read_one(request, pk: int) -> HttpResponse:
    """The baseline: one row read by primary key through the same server and middleware."""
    serial = Device.objects.filter(pk=pk).values_list("serial_number", flat=True).first()
    return HttpResponse(serial or "", content_type="text/plain; charset=utf-8")


urlpatterns = [path("bench/read/<int:pk>", read_one), *portal_urlpatterns]
