from rest_framework.routers import SimpleRouter

from devices.api.rest import (
    ActivationAttemptViewSet,
    DeviceModelViewSet,
    DeviceViewSet,
    VendorTokenViewSet,
    VendorViewSet,
)

router = SimpleRouter()
router.register("vendors", VendorViewSet, basename="vendor")
router.register("device-models", DeviceModelViewSet, basename="device-model")
router.register("devices", DeviceViewSet, basename="device")
router.register("activation-attempts", ActivationAttemptViewSet, basename="activation-attempt")
router.register("vendor-tokens", VendorTokenViewSet, basename="vendor-token")

urlpatterns = router.urls
