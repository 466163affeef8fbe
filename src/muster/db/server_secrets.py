"""ServerSecretRepository: secrets every process of one deployment shares, made once."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from muster.db.tables import ServerSecretRow

server_secrets = cast(Table, ServerSecretRow.__table__)


class ServerSecretRepository:
    """Platform-level: named secrets, not scoped to a tenant."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get_or_add(self, name: str, candidate: str, now: datetime) -> str:
        """The secret stored under `name`; `candidate` becomes it when there is none yet.

        An insert that does nothing on a conflict, then a read: processes starting together
        all end up with whichever candidate was stored first.
        """
        insert: Any = (
            postgresql.insert if self._conn.dialect.name == "postgresql" else sqlite.insert
        )
        self._conn.execute(
            insert(server_secrets)
            .values(name=name, value=candidate, created_at=now)
            .on_conflict_do_nothing(index_elements=[server_secrets.c.name])
        )
        stored = self._conn.execute(
            select(server_secrets.c.value).where(server_secrets.c.name == name)
        ).scalar_one()
        return str(stored)
