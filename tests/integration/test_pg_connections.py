"""PostgreSQL connections the server dropped while they sat in the pool are replaced unseen."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from muster.db.engine import make_engine
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.skipif(
    not POSTGRES_URL, reason="PostgreSQL only: a SQLite file has no server to drop connections"
)


def _pooled_backend_dropped_by_the_server(ping_after_idle_seconds: float) -> tuple[int, int]:
    """Lend a connection, have the server terminate it in the pool, then lend one again."""
    engine = make_engine(POSTGRES_URL, pool_size=1, ping_after_idle_seconds=ping_after_idle_seconds)
    killer = make_engine(POSTGRES_URL, pool_size=1)
    try:
        with engine.connect() as connection:
            first = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with killer.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        with engine.connect() as connection:
            second = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        return first, second
    finally:
        engine.dispose()
        killer.dispose()


def test_a_connection_dropped_while_idle_is_pinged_and_replaced() -> None:
    first, second = _pooled_backend_dropped_by_the_server(ping_after_idle_seconds=0)
    assert second != first


def test_a_connection_lent_again_at_once_is_not_pinged() -> None:
    # The control: without the idle ping the dead connection reaches the caller.
    with pytest.raises(OperationalError):
        _pooled_backend_dropped_by_the_server(ping_after_idle_seconds=3600)
