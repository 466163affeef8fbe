"""HTTP fixtures: the app on the test database and a client that speaks like Okta."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from muster.app import create_app
from muster.config import Settings
from tests.factories import OKTA_HEADERS


@pytest.fixture
def app(settings: Settings, engine: Engine):  # type: ignore[no-untyped-def]
    return create_app(settings, engine=engine)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """An unauthenticated client."""
    with TestClient(app, base_url="http://muster.test") as test_client:
        yield test_client


@pytest.fixture
def okta(client: TestClient, scim_token: str) -> TestClient:
    """The client with Okta's provisioning headers and the tenant's bearer token."""
    client.headers.update({**OKTA_HEADERS, "Authorization": f"Bearer {scim_token}"})
    return client
