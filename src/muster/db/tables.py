"""Rows: tenants, tokens, users, their emails, the provisioning log; tenant_id leads every key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(36)
Document = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TenantRow(Base):
    """A customer account. Its id is the tenant_id every other row carries."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(16))
    seat_limit: Mapped[int] = mapped_column(Integer)
    # Active users, kept by services/seats.py in the same transaction as each change, so a
    # seat check is one conditional UPDATE instead of a count over the users table.
    seats_used: Mapped[int] = mapped_column(Integer, default=0)
    scim_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class ApiTokenRow(Base):
    """A SCIM bearer token, stored only as its SHA-256; the secret itself is never kept."""

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("tenant_id", "token_hash"),)

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    # scim: the IdP's SCIM bearer token; events: the platform's key for /api/v1/events.
    kind: Mapped[str] = mapped_column(String(8), default="scim", server_default="scim")
    prefix: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class UserRow(Base):
    """A person: the whole SCIM document, plus the columns we search and enforce rules on."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_name_key"),
        UniqueConstraint("tenant_id", "email_key"),
        # Ends with id: `externalId eq` rows come out in id order, so the planner picks this
        # index over walking the primary key (see migration 0003).
        Index(None, "tenant_id", "external_id", "id"),
    )

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_name: Mapped[str] = mapped_column(String(255))  # as sent
    # Keys (scim/identities.py: NFKC, case folded), unique per tenant. Written at creation only:
    # the identity cannot change. A user whose key another one already held when migration 0009
    # brought the keys in keeps its old, lower-cased key (`muster user duplicates` lists them).
    user_name_key: Mapped[str] = mapped_column(String(255))
    email_key: Mapped[str] = mapped_column(String(255))  # the identity email's key
    external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)  # caseExact
    active: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(8))  # idp | local | sso
    document: Mapped[dict[str, Any]] = mapped_column(Document)  # full SCIM JSON, no id/meta
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_modified: Mapped[datetime] = mapped_column(DateTime)
    version: Mapped[int] = mapped_column(Integer)


class UserEmailRow(Base):
    """Every email of a user, by its key, so `emails.value eq` is an index lookup.

    An email belongs to one user of a tenant, primary or not: the unique index is the last word
    behind the users service's check. Rows that already shared their email with another user's
    when migration 0009 made emails unique are kept and flagged `is_legacy_duplicate` (outside
    the index) rather than merged or dropped; `muster user duplicates` lists them.
    """

    __tablename__ = "user_emails"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
        Index(None, "tenant_id", "user_id"),
        Index(
            "uq_user_emails_tenant_id_value_key",
            "tenant_id",
            "value_key",
            unique=True,
            sqlite_where=text("NOT is_legacy_duplicate"),
            postgresql_where=text("NOT is_legacy_duplicate"),
        ),
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    value_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, primary_key=True)
    is_legacy_duplicate: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )


class GroupRow(Base):
    """A group pushed by the IdP; its members are MembershipRows, never a list in the document."""

    __tablename__ = "groups"
    __table_args__ = (
        UniqueConstraint("tenant_id", "display_name_key"),
        Index(None, "tenant_id", "external_id", "id"),
    )

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(255))
    display_name_key: Mapped[str] = mapped_column(String(255))  # lower-cased, unique per tenant
    external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    document: Mapped[dict[str, Any]] = mapped_column(Document)  # no id, meta or members
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_modified: Mapped[datetime] = mapped_column(DateTime)
    version: Mapped[int] = mapped_column(Integer)


class MembershipRow(Base):
    """One user in one group. `source` says who added it: the IdP (idp) or an admin (manual)."""

    __tablename__ = "memberships"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "group_id"], ["groups.tenant_id", "groups.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
        # A user's groups (users' `groups`, `members.value eq`, cascades on user delete).
        Index(None, "tenant_id", "user_id", "group_id"),
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    group_id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, primary_key=True)
    source: Mapped[str] = mapped_column(String(8))  # idp | manual
    added_at: Mapped[datetime] = mapped_column(DateTime)


class ProvisioningLogRow(Base):
    """One SCIM request's outcome, for the admin reading a failed Okta task."""

    __tablename__ = "provisioning_log"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)  # time-ordered: newest sorts last
    at: Mapped[datetime] = mapped_column(DateTime)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    resource_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    resource_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[int] = mapped_column(Integer)
    scim_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[float] = mapped_column(Float)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)
    request_id: Mapped[str] = mapped_column(String(36))
    client_quirks: Mapped[str | None] = mapped_column(String(200), nullable=True)


class AdminAccountRow(Base):
    """A console admin of one tenant. Platform-level like tenants: sign-in finds it by email."""

    __tablename__ = "admin_accounts"
    # Email alone identifies an admin at sign-in (the tenant comes from the account, never from
    # the form), so it is unique across tenants: the one key that does not start with tenant_id.
    __table_args__ = (UniqueConstraint("email_key"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(255))
    email_key: Mapped[str] = mapped_column(String(255))  # lower-cased
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)  # argon2id
    # The one-time set-password link's SHA-256; the link itself is shown once and never kept.
    setup_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    setup_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class AdminSessionRow(Base):
    """A signed-in console session, kept in the database so every instance shares it."""

    __tablename__ = "admin_sessions"

    # SHA-256 of the cookie's secret: a leaked table cannot be replayed as cookies.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    admin_id: Mapped[str] = mapped_column(
        ForeignKey("admin_accounts.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class SignInAttemptRow(Base):
    """Failed console sign-ins per email (known or not), for the lock-out."""

    __tablename__ = "sign_in_attempts"

    email_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failed_at: Mapped[datetime] = mapped_column(DateTime)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class AccessGroupRow(Base):
    """A group whose members may sign in (the lock icon); no rows means everyone may."""

    __tablename__ = "access_groups"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "group_id"], ["groups.tenant_id", "groups.id"], ondelete="CASCADE"
        ),
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    group_id: Mapped[str] = mapped_column(ID, primary_key=True)
    added_at: Mapped[datetime] = mapped_column(DateTime)


class SamlSettingsRow(Base):
    """The tenant's SAML identity provider, as read from the metadata XML an admin pasted."""

    __tablename__ = "saml_settings"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    idp_entity_id: Mapped[str] = mapped_column(String(1024))
    sso_url: Mapped[str] = mapped_column(String(2048))
    certificate_pem: Mapped[str] = mapped_column(Text)
    certificate_sha256: Mapped[str] = mapped_column(String(95))  # AA:BB:... (32 bytes)
    certificate_not_after: Mapped[datetime] = mapped_column(DateTime)
    metadata_xml: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    # Which assertion attributes carry names, email and groups; NULL: the default name
    # (given_name, family_name, email, groups), which the README tells admins to set in Okta.
    attribute_given_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    attribute_family_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    attribute_email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    attribute_groups: Mapped[str | None] = mapped_column(String(255), nullable=True)


class SamlRequestRow(Base):
    """An AuthnRequest we sent (SP-initiated sign-in), until its response uses it up."""

    __tablename__ = "saml_requests"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class SamlAssertionIdRow(Base):
    """An assertion ID already accepted: replaying it is refused until it expires anyway."""

    __tablename__ = "saml_assertion_ids"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    # The primary key is the replay check: it holds across processes and instances.
    assertion_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class SsoSessionRow(Base):
    """A person signed in through SAML; deleting the user ends it (cascade)."""

    __tablename__ = "sso_sessions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
        Index(None, "tenant_id", "user_id"),
    )

    # SHA-256 of the cookie's secret: a leaked table cannot be replayed as cookies.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ID)
    user_id: Mapped[str] = mapped_column(ID)
    # The assertion's group names, lower-cased: access may come from them instead of stored
    # membership, and every request checks them again against the current access groups.
    groups: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class SignInLogRow(Base):
    """One SAML sign-in attempt: admitted, or refused with its code."""

    __tablename__ = "sign_in_log"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)  # time-ordered: newest sorts last
    at: Mapped[datetime] = mapped_column(DateTime)
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_admitted: Mapped[bool] = mapped_column(Boolean)
    code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    detail: Mapped[str | None] = mapped_column(String(500), nullable=True)
    flow: Mapped[str] = mapped_column(String(8))  # sp | idp (who started the sign-in)
    user_id: Mapped[str | None] = mapped_column(ID, nullable=True)


class RateLimitRow(Base):
    """One token's shared request count in one fixed rate-limit window (see rate_limits.py)."""

    __tablename__ = "rate_limits"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    token_id: Mapped[str] = mapped_column(ID, primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # Unix seconds
    count: Mapped[int] = mapped_column(Integer)


class EventStreamRow(Base):
    """A tenant's event counter: the last sequence number given to one of its events.

    The row is bumped inside each changing transaction and stays locked until it commits, so a
    tenant's sequence numbers are given in commit order: a reader that has seen number N will
    never later find a smaller one appear (the cursor of the events API relies on it).
    """

    __tablename__ = "event_streams"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    last_seq: Mapped[int] = mapped_column(BigInteger)
    # Events up to this number were removed by retention (a cursor before it has lost events).
    pruned_through: Mapped[int] = mapped_column(BigInteger, server_default="0")


class EventRow(Base):
    """One change, written in the same transaction as the change itself (the outbox)."""

    __tablename__ = "events"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # per tenant, from 1
    type: Mapped[str] = mapped_column(String(40))  # user.deactivated, group.member_added, ...
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    resource_type: Mapped[str] = mapped_column(String(16))  # User | Group | Tenant | Token
    resource_id: Mapped[str] = mapped_column(String(255))
    # The user of a group.member_added/removed event: each membership is its own stream of
    # changes, so a group's 100,000 member events need not reach a webhook one at a time.
    member_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    data: Mapped[dict[str, Any] | None] = mapped_column(Document, nullable=True)


class WebhookEndpointRow(Base):
    """A URL of the tenant's that receives its events, signed with the endpoint's secret."""

    __tablename__ = "webhook_endpoints"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # Kept as is: every delivery is signed with it, so it cannot be a one-way hash like tokens.
    secret: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean)
    # Event types sent (None: all of them).
    event_types: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # How each event is sent: "json" (the public event) or "set" (a Security Event Token).
    format: Mapped[str] = mapped_column(String(8), default="json", server_default="json")
    # The tenant's last event already queued for this endpoint (webhooks fan out from here).
    cursor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class WebhookDeliveryRow(Base):
    """One event to one endpoint: (waiting ->) pending -> sending -> delivered, or dead.

    Deliveries of one order key (a resource; a membership for member events) to one endpoint
    go one at a time, in event order: only the oldest unfinished one is pending, the others
    wait, and finishing one (delivered or dead) makes the next one pending.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoints.tenant_id", "webhook_endpoints.id"],
            ondelete="CASCADE",
        ),
        # Per-key order: the next waiting delivery of a key, and whether one is on its way.
        Index(None, "tenant_id", "endpoint_id", "order_key", "event_seq"),
        # The worker's queue. It is read across tenants, so unlike every other index it is not
        # led by tenant_id; each shard's worker reads only its own shard's queue.
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            sqlite_where=text("state IN ('pending', 'sending')"),
            postgresql_where=text("state IN ('pending', 'sending')"),
        ),
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ID, primary_key=True)
    event_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_key: Mapped[str] = mapped_column(String(512))  # resource id[/member id]
    state: Mapped[str] = mapped_column(String(10))  # waiting|pending|sending|delivered|dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)  # HTTP status
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class HeartbeatRow(Base):
    """One serving process's last heartbeat: a tiny write that proves the database takes writes.

    Platform-level (no tenant): each process upserts its own row every half second
    (db/health.py), so /readyz knows within two seconds when the database stops answering or
    stops taking writes (a full disk, a read-only standby). Rows of processes gone for a day
    are removed by the survivors.
    """

    __tablename__ = "heartbeats"

    instance_id: Mapped[str] = mapped_column(ID, primary_key=True)
    beat_at: Mapped[datetime] = mapped_column(DateTime)


class ServerSecretRow(Base):
    """A secret every Muster process of one deployment shares, made once at random.

    Platform-level. The cursor signing key lives here when MUSTER_CURSOR_KEYS is unset: every
    instance behind a load balancer must sign with the same key, and the database is what they
    all share (services/paging.py).
    """

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime)
