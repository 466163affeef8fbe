"""upgrade / current_revision: Alembic migrations run from code (serve, `muster db upgrade`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from muster.db.engine import BEGIN_KEY

MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed 64-bit number, the same in every Muster process ("muster" in ASCII, then 1).
MIGRATION_LOCK_KEY = 0x6D7573746572_0001


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to the given revision (the newest by default)."""
    config = _config()
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # A migration may rewrite a large table or wait for a long transaction to end:
            # MUSTER_DB_STATEMENT_TIMEOUT_MS and MUSTER_DB_LOCK_TIMEOUT_MS are for requests.
            # LOCAL: the pooled connection keeps its timeouts after this transaction.
            connection.execute(text("SET LOCAL statement_timeout = 0"))
            connection.execute(text("SET LOCAL lock_timeout = 0"))
        _lock_out_other_upgrades(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()


def _lock_out_other_upgrades(connection: Connection) -> None:
    """Make concurrent upgrades run one after another, inside the migration's transaction.

    Every instance migrates on start-up, and N instances (or `--workers`' parent and a
    `muster db upgrade`) may start together: without this, the second one's CREATE TABLE
    fails on PostgreSQL, and on SQLite its deferred transaction gets "database is locked"
    without waiting. The waiter then finds the schema current and does nothing.
    """
    if connection.dialect.name == "postgresql":
        # Released at commit; Alembic runs in this transaction since it is already open.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        connection.info[BEGIN_KEY] = "BEGIN IMMEDIATE"  # waits up to the busy timeout
        connection.begin()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()
