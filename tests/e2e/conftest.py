import pytest


@pytest.fixture(autouse=True)
def _fast_password_hasher():
    """The servers these tests start check passwords with the production hashers: keep them for the users too."""
