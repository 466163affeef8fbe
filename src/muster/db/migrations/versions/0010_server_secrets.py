"""server secrets

Revision ID: 0010_server_secrets
Revises: 0009_identity_keys
Create Date: 2026-12-08

Secrets every Muster process of one deployment shares, each made at random by the first
process that needs it: the key that signs list cursors when MUSTER_CURSOR_KEYS is unset.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_server_secrets"
down_revision: str | None = "0009_identity_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_secrets")),
    )


def downgrade() -> None:
    op.drop_table("server_secrets")
