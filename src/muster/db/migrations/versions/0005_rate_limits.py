"""rate limits

Revision ID: 0005_rate_limits
Revises: 0004_filter_indexes
Create Date: 2026-12-01

A fixed-window request count per SCIM token, shared by every Muster process: each process adds
its own count to the row every ~100 ms and reads back the total (services/rate_limits.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_rate_limits"
down_revision: str | None = "0004_filter_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("token_id", sa.String(length=36), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_rate_limits_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "token_id", "window_start", name=op.f("pk_rate_limits")
        ),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
