import pytest

from tests.conax.support import Crm, world_load


@pytest.fixture
def world(staff_user):
    return world_load()


@pytest.fixture
def crm(client, world) -> Crm:
    return Crm.login(client)
