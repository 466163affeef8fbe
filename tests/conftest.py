"""Shared fixtures: a fresh database per test (SQLite by default, PostgreSQL when asked)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from muster.config import Settings
from muster.db.engine import make_engine, normalise_url
from muster.db.tables import Base
from muster.db.unit_of_work import UnitOfWork
from muster.scim.records import TenantInfo
from muster.services import api_tokens, tenants

# Set MUSTER_TEST_DATABASE_URL=postgresql://user@host/db to run every database test on
# PostgreSQL; the database is created if missing and emptied between tests.
POSTGRES_URL = os.environ.get("MUSTER_TEST_DATABASE_URL", "")
# The tests' webhook receivers listen on 127.0.0.1, which a production worker refuses; this
# reaches the settings of every `muster` process the tests start, too.
os.environ.setdefault("MUSTER_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")


def _ensure_postgres_database(url: str) -> None:
    parsed = make_url(normalise_url(url))
    admin = make_engine(str(parsed.set(database="postgres")))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": parsed.database}).first()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine | None]:
    if not POSTGRES_URL:
        yield None
        return
    _ensure_postgres_database(POSTGRES_URL)
    engine = make_engine(POSTGRES_URL)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def database_url(tmp_path: Path, postgres_engine: Engine | None) -> str:
    if postgres_engine is not None:
        return POSTGRES_URL
    return f"sqlite:///{tmp_path / 'muster.db'}"


@pytest.fixture
def engine(database_url: str, postgres_engine: Engine | None) -> Iterator[Engine]:
    """A migrated, empty database for this test."""
    if postgres_engine is not None:
        tables = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
        with postgres_engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} CASCADE"))
        yield postgres_engine
        return
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Log entries written at once, so a test can read the log right after a request.
    return Settings(database_url=database_url, create_demo_tenant=False, log_flush_seconds=0)


@pytest.fixture
def uow_factory(engine: Engine) -> Callable[[str | None], UnitOfWork]:
    return lambda tenant_id=None: UnitOfWork(engine, tenant_id)


@pytest.fixture
def tenant(uow_factory: Callable[..., UnitOfWork]) -> TenantInfo:
    """An Enterprise tenant with 25 seats and SCIM on."""
    slug = f"acme-{uuid.uuid4().hex[:6]}"
    created = tenants.create_tenant(uow_factory(), slug, plan="enterprise", seats=25)
    return created


@pytest.fixture
def uow(uow_factory: Callable[..., UnitOfWork], tenant: TenantInfo) -> UnitOfWork:
    """The tenant's unit of work."""
    return uow_factory(tenant.tenant_id)


@pytest.fixture
def scim_token(uow_factory: Callable[..., UnitOfWork], tenant: TenantInfo) -> str:
    return api_tokens.issue_scim_token(uow_factory(), tenant.slug).secret
