"""The staff REST API's conditional-access collections, under ``/api/v1/`` (the CRM.COM dialect is ``urls.py``)."""

from rest_framework.routers import SimpleRouter

from conax.api.rest import (
    EntitlementViewSet,
    PairingViewSet,
    ServiceViewSet,
    SetTopBoxViewSet,
    SmartcardViewSet,
    SubscriptionViewSet,
    UnitViewSet,
)

router = SimpleRouter()
router.register("conax/units", UnitViewSet, basename="conax-unit")
router.register("conax/services", ServiceViewSet, basename="conax-service")
router.register("conax/subscriptions", SubscriptionViewSet, basename="conax-subscription")
router.register("conax/smartcards", SmartcardViewSet, basename="conax-smartcard")
router.register("conax/set-top-boxes", SetTopBoxViewSet, basename="conax-set-top-box")
router.register("conax/pairings", PairingViewSet, basename="conax-pairing")
router.register("conax/entitlements", EntitlementViewSet, basename="conax-entitlement")

urlpatterns = router.urls
