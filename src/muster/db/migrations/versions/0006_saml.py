"""saml: AuthnRequests in flight, accepted assertion IDs, SSO sessions, the sign-in log, and
per-tenant assertion attribute names on saml_settings

Revision ID: 0006_saml
Revises: 0005_rate_limits
Create Date: 2026-11-29

Requests, assertion IDs and sessions live in the database, not in a process, so the replay
check and sign-outs hold across every instance behind the load balancer.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_saml"
down_revision: str | None = "0005_rate_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


ATTRIBUTE_COLUMNS = (
    "attribute_given_name",
    "attribute_family_name",
    "attribute_email",
    "attribute_groups",
)


def upgrade() -> None:
    with op.batch_alter_table("saml_settings", schema=None) as batch_op:
        for name in ATTRIBUTE_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=255), nullable=True))
    op.create_table(
        "saml_requests",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_saml_requests_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_saml_requests")),
    )
    op.create_table(
        "saml_assertion_ids",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("assertion_id", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_saml_assertion_ids_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "assertion_id", name=op.f("pk_saml_assertion_ids")),
    )
    op.create_table(
        "sso_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["users.tenant_id", "users.id"],
            name=op.f("fk_sso_sessions_tenant_id_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_sessions")),
    )
    with op.batch_alter_table("sso_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sso_sessions_tenant_id_user_id"), ["tenant_id", "user_id"], unique=False
        )
    op.create_table(
        "sign_in_log",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("is_admitted", sa.Boolean(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("flow", sa.String(length=8), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_sign_in_log_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_sign_in_log")),
    )


def downgrade() -> None:
    op.drop_table("sign_in_log")
    with op.batch_alter_table("sso_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sso_sessions_tenant_id_user_id"))
    op.drop_table("sso_sessions")
    op.drop_table("saml_assertion_ids")
    op.drop_table("saml_requests")
    with op.batch_alter_table("saml_settings", schema=None) as batch_op:
        for name in reversed(ATTRIBUTE_COLUMNS):
            batch_op.drop_column(name)
