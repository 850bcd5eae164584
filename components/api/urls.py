from rest_framework.routers import SimpleRouter

from components.api.rest import (
    ComponentViewSet,
    ParameterGroupViewSet,
    ParameterViewSet,
    ProvisioningViewSet,
    SensorViewSet,
)

router = SimpleRouter()
router.register("sensors", SensorViewSet, basename="sensor")
router.register("parameters", ParameterViewSet, basename="parameter")
router.register("parameter-groups", ParameterGroupViewSet, basename="parameter-group")
router.register("provisioning-records", ProvisioningViewSet, basename="provisioning-record")
router.register("components", ComponentViewSet, basename="component")

urlpatterns = router.urls
