"""filter indexes that also give id order

Revision ID: 0004_filter_indexes
Revises: 0003_console
Create Date: 2026-11-29

A filtered list is ordered by id. Without statistics SQLite's planner then prefers walking the
primary key (tenant_id, id) in order over the (tenant_id, external_id) index, which at a
million users scans the whole tenant for `externalId eq`. Ending these indexes with id makes the
selective index return rows already in id order, so it wins on every plan. The memberships index
gains group_id so `members.value eq` reads a user's groups from the index alone.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004_filter_indexes"
down_revision: str | None = "0003_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, old columns, new columns); names follow the metadata naming convention.
_CHANGES = (
    ("users", ["tenant_id", "external_id"], ["tenant_id", "external_id", "id"]),
    ("groups", ["tenant_id", "external_id"], ["tenant_id", "external_id", "id"]),
    ("memberships", ["tenant_id", "user_id"], ["tenant_id", "user_id", "group_id"]),
)


def _name(table: str, columns: list[str]) -> str:
    return f"ix_{table}_{'_'.join(columns)}"


def upgrade() -> None:
    for table, old, new in _CHANGES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(_name(table, new)), new, unique=False)
            batch_op.drop_index(batch_op.f(_name(table, old)))


def downgrade() -> None:
    for table, old, new in _CHANGES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(_name(table, old)), old, unique=False)
            batch_op.drop_index(batch_op.f(_name(table, new)))
