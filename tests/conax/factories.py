"""factory_boy factories for the Conax models: each builds a valid row with unique codes, CA ids and serial
numbers; a test names only the fields its assertions are about."""

from __future__ import annotations

import factory
from django.utils import timezone

from conax.models import (
    Entitlement,
    Pairing,
    ProvisioningRequest,
    Service,
    SetTopBox,
    Smartcard,
    Subscription,
    Unit,
)


class UnitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Unit

    name = factory.Sequence(lambda n: f"Unit {n}")


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    code = factory.Sequence(lambda n: f"SVC{n}")
    service_ca_id = factory.LazyAttribute(lambda s: f"{s.code}-CA")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """``services=[…]`` adds those services to the subscription (the many-to-many is set after the row exists)."""

    class Meta:
        model = Subscription
        skip_postgeneration_save = True

    number = factory.Sequence(lambda n: f"S{n:05d}")

    @factory.post_generation
    def services(self, create, extracted, **kwargs):
        if create and extracted:
            self.services.add(*extracted)


class PairingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pairing

    subscription = factory.SubFactory(SubscriptionFactory)


class SmartcardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Smartcard

    serial_number = factory.Sequence(lambda n: f"SC-{n}")
    ca_id = factory.LazyAttribute(lambda c: f"CA-{c.serial_number}")
    subscription = factory.SubFactory(SubscriptionFactory)


class SetTopBoxFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SetTopBox

    serial_number = factory.Sequence(lambda n: f"STB-{n}")
    ca_id = factory.LazyAttribute(lambda b: f"CA-{b.serial_number}")
    subscription = factory.SubFactory(SubscriptionFactory)


class EntitlementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Entitlement

    smartcard = factory.SubFactory(SmartcardFactory)
    service = factory.SubFactory(ServiceFactory)
    subscription = factory.SelfAttribute("smartcard.subscription")
    changed_at = factory.LazyFunction(timezone.now)


class ProvisioningRequestFactory(factory.django.DjangoModelFactory):
    """A stored request row as-is (no service call): for admin lists and pages that only read requests. A test of
    how a request is made goes through ``conax.services.request_create``."""

    class Meta:
        model = ProvisioningRequest

    type = "ADD_SUBSCRIPTIONS"
    scheduled_date = factory.LazyFunction(timezone.now)
    smartcard = factory.SubFactory(SmartcardFactory)
    subscription = factory.SelfAttribute("smartcard.subscription")
