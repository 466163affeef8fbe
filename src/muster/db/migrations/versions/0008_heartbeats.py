"""heartbeats

Revision ID: 0008_heartbeats
Revises: 0007_events_webhooks
Create Date: 2026-12-08

One row per serving process, rewritten every half second: the readiness probe's proof that the
database answers and takes writes (db/health.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_heartbeats"
down_revision: str | None = "0007_events_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("beat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("heartbeats")
