from rest_framework.routers import SimpleRouter

from webhooks.api.rest import DeliveryViewSet, EndpointViewSet

router = SimpleRouter()
router.register("webhooks/endpoints", EndpointViewSet, basename="webhook-endpoint")
router.register("webhooks/deliveries", DeliveryViewSet, basename="webhook-delivery")

urlpatterns = router.urls
