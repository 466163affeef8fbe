"""identity keys: NFKC and case folded; one email per user of a tenant

Revision ID: 0009_identity_keys
Revises: 0008_heartbeats
Create Date: 2026-12-12

Until now a userName or email was compared lower-cased only, so `rené@x.com` in NFC and NFD,
fullwidth `bob@x.com` or `bob@x.com` with a zero-width space each became a user of their own,
and a secondary email was not unique at all (issue 14). From here on:

- user_name_key, email_key and user_emails.value_key hold the identity key of
  scim/identities.py (NFKC, case folded, invisible characters left out). This migration
  recomputes every key from the one stored (the key of a lower-cased value is the key of the
  value).
- user_emails gets a unique index on (tenant_id, value_key): an email belongs to one user.

A database may already hold what the new rule refuses. This migration neither fails on it nor
merges anyone. Where users now share a key:

- users.user_name_key / email_key (unique constraints): the user already holding the key, else
  the first active one, else the oldest, takes it; the others keep their old lower-cased key.
  Such a key is the key of nothing (the key of a lower-cased value is the key of the value,
  and this one differs from it), so it clashes with no user to come. Those users go on
  working (read, replace, patch, deactivate, delete: a user's keys are only written at
  creation), but `userName eq` finds the one who took the key.
- user_emails: every row is kept and found by `emails.value eq`; one user per shared email
  (the one whose identity email it is, else the first active, else the oldest) is covered by
  the unique index, the others are flagged `is_legacy_duplicate` and left outside it (a
  partial index). A user listing one email twice keeps one row.

`muster user duplicates [SLUG]` lists every identity more than one user holds, one line each,
for an admin to resolve (delete or rename the extra users in the IdP). Downgrading drops the
index and the flag; the keys stay in their new form.
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from muster.scim.identities import identity_key

revision: str = "0009_identity_keys"
down_revision: str | None = "0008_heartbeats"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "uq_user_emails_tenant_id_value_key"
_NOT_LEGACY = sa.text("NOT is_legacy_duplicate")
_BATCH = 10_000
# The key columns' VARCHAR(255). NFKC spells a few characters out (㍿ is 株式会社): a key that
# would outgrow its column stays as it was (the user is then listed if it clashes).
_KEY_LENGTH = 255

users = sa.table(
    "users",
    sa.column("tenant_id", sa.String),
    sa.column("id", sa.String),
    sa.column("user_name", sa.String),
    sa.column("user_name_key", sa.String),
    sa.column("email_key", sa.String),
    sa.column("active", sa.Boolean),
    sa.column("created_at", sa.DateTime),
)
user_emails = sa.table(
    "user_emails",
    sa.column("tenant_id", sa.String),
    sa.column("value_key", sa.String),
    sa.column("user_id", sa.String),
    sa.column("is_legacy_duplicate", sa.Boolean),
)


def upgrade() -> None:
    op.add_column(
        "user_emails",
        sa.Column(
            "is_legacy_duplicate", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
    )
    conn = op.get_bind()
    for column in ("user_name_key", "email_key"):
        _rekey_users(conn, column)
    _rekey_emails(conn)
    _flag_shared_emails(conn)
    op.create_index(
        _INDEX,
        "user_emails",
        ["tenant_id", "value_key"],
        unique=True,
        sqlite_where=_NOT_LEGACY,
        postgresql_where=_NOT_LEGACY,
    )


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="user_emails")
    with op.batch_alter_table("user_emails", schema=None) as batch_op:
        batch_op.drop_column("is_legacy_duplicate")


def _streamed(conn: sa.Connection, statement: Any) -> Iterator[Any]:
    # Options on the statement, not the connection (which they would change for good).
    yield from conn.execute(statement.execution_options(yield_per=_BATCH))


def _rekey_users(conn: sa.Connection, column: str) -> None:
    """Give each user the new key in `column`, unless another user of the tenant has it."""
    source = users.c.user_name if column == "user_name_key" else users.c[column]
    stored = users.c[column]
    query = sa.select(
        users.c.tenant_id, users.c.id, source, stored, users.c.active, users.c.created_at
    )
    # Only keys that change are remembered: in most databases, a few non-ASCII ones.
    changing: dict[tuple[str, str], list[tuple[bool, Any, str]]] = {}
    for tenant_id, user_id, value, old, active, created_at in _streamed(conn, query):
        new = identity_key(value)
        if new != old and len(new) <= _KEY_LENGTH:
            changing.setdefault((tenant_id, new), []).append((not active, created_at, user_id))
    holder = sa.select(users.c.id).where(
        users.c.tenant_id == sa.bindparam("t"), stored == sa.bindparam("k")
    )
    for (tenant_id, new), candidates in changing.items():
        if conn.execute(holder, {"t": tenant_id, "k": new}).first() is not None:
            continue  # someone holds the key already: every candidate keeps its old one
        _, _, keeper = min(candidates)  # the first active one, else the oldest
        conn.execute(
            sa.update(users)
            .where(users.c.tenant_id == tenant_id, users.c.id == keeper)
            .values({column: new})
        )


def _rekey_emails(conn: sa.Connection) -> None:
    """Rewrite each email row under its new key; one row per user and key."""
    query = sa.select(user_emails.c.tenant_id, user_emails.c.value_key, user_emails.c.user_id)
    changing = []
    for tenant_id, old, user_id in _streamed(conn, query):
        new = identity_key(old)
        if new != old and len(new) <= _KEY_LENGTH:
            changing.append((tenant_id, old, new, user_id))
    if not changing:
        return
    conn.execute(
        sa.delete(user_emails).where(
            user_emails.c.tenant_id == sa.bindparam("t"),
            user_emails.c.value_key == sa.bindparam("old"),
            user_emails.c.user_id == sa.bindparam("u"),
        ),
        [{"t": t, "old": old, "u": u} for t, old, _, u in changing],
    )
    exists = sa.select(user_emails.c.user_id).where(
        user_emails.c.tenant_id == sa.bindparam("t"),
        user_emails.c.value_key == sa.bindparam("k"),
        user_emails.c.user_id == sa.bindparam("u"),
    )
    for tenant_id, new, user_id in sorted({(t, new, u) for t, _, new, u in changing}):
        if conn.execute(exists, {"t": tenant_id, "k": new, "u": user_id}).first() is None:
            conn.execute(
                sa.insert(user_emails).values(
                    tenant_id=tenant_id, value_key=new, user_id=user_id, is_legacy_duplicate=False
                )
            )


def _flag_shared_emails(conn: sa.Connection) -> None:
    """Leave one user per shared email under the unique index; flag the others' rows."""
    shared = (
        sa.select(user_emails.c.tenant_id, user_emails.c.value_key)
        .group_by(user_emails.c.tenant_id, user_emails.c.value_key)
        .having(sa.func.count() > 1)
    )
    holders = (
        sa.select(users.c.id, users.c.email_key, users.c.active, users.c.created_at)
        .join(
            user_emails,
            sa.and_(
                users.c.tenant_id == user_emails.c.tenant_id, users.c.id == user_emails.c.user_id
            ),
        )
        .where(
            user_emails.c.tenant_id == sa.bindparam("t"),
            user_emails.c.value_key == sa.bindparam("k"),
        )
    )
    for tenant_id, key in conn.execute(shared).all():
        rows = conn.execute(holders, {"t": tenant_id, "k": key}).all()
        # The user whose identity email it is, else the first active one, else the oldest.
        keeper = min(rows, key=lambda r: (r.email_key != key, not r.active, r.created_at, r.id))
        conn.execute(
            sa.update(user_emails)
            .where(
                user_emails.c.tenant_id == tenant_id,
                user_emails.c.value_key == key,
                user_emails.c.user_id != keeper.id,
            )
            .values(is_legacy_duplicate=True)
        )
