import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from devices.models import Device, DeviceModel, Vendor

PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)


class StaffFactory(UserFactory):
    is_staff = True

    @factory.post_generation
    def support_group(self, create, extracted, **kwargs):
        if create:
            self.groups.add(Group.objects.get(name="support"))


class CustomerFactory(UserFactory):
    @factory.post_generation
    def customers_group(self, create, extracted, **kwargs):
        if create:
            self.groups.add(Group.objects.get(name="customers"))


class VendorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Vendor

    name = factory.Sequence(lambda n: f"vendor{n}")


class DeviceModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeviceModel

    vendor = factory.SubFactory(VendorFactory)
    name = factory.Sequence(lambda n: f"model{n}")


class DeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Device

    model = factory.SubFactory(DeviceModelFactory)
    serial_number = factory.Sequence(lambda n: f"SN{n:08d}")
