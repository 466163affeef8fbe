"""Core statements built once at import, so a request pays for execution, not construction.

Building a SELECT with its where-clause costs ~100 µs in SQLAlchemy; executing a prebuilt one
with bound parameters ~20 µs (measured on this project's SQLite). Every repeated statement of
the repositories lives here; parameters are named b_* so they never clash with column names.
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from muster.db.sql_json import json_object
from muster.db.tables import (
    ApiTokenRow,
    EventRow,
    EventStreamRow,
    GroupRow,
    MembershipRow,
    ProvisioningLogRow,
    TenantRow,
    UserEmailRow,
    UserRow,
)

tenants = cast(Table, TenantRow.__table__)
api_tokens = cast(Table, ApiTokenRow.__table__)
users = cast(Table, UserRow.__table__)
user_emails = cast(Table, UserEmailRow.__table__)
groups = cast(Table, GroupRow.__table__)
memberships = cast(Table, MembershipRow.__table__)
provisioning_log = cast(Table, ProvisioningLogRow.__table__)
events = cast(Table, EventRow.__table__)
event_streams = cast(Table, EventStreamRow.__table__)

# A per-connection scratch table for member id lists, so that membership changes are
# set-based statements however long the list is (SQLite caps bound parameters at 32,766).
_scratch = MetaData()
staged_members = Table(
    "muster_staged_members",
    _scratch,
    Column("user_id", String(255), primary_key=True),
    prefixes=["TEMPORARY"],
)
CREATE_STAGE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS muster_staged_members (user_id VARCHAR(255) PRIMARY KEY)"
)

# Typed, so that PostgreSQL knows them even where they appear alone (INSERT ... SELECT).
TENANT = bindparam("b_tenant", type_=String(36))
ID = bindparam("b_id", type_=String(255))
OFFSET = bindparam("b_offset", type_=Integer())
LIMIT = bindparam("b_limit", type_=Integer())

# -- tenants ---------------------------------------------------------------------------------
TENANT_BY_ID = select(tenants).where(tenants.c.id == TENANT)
TENANT_BY_SLUG = select(tenants).where(tenants.c.slug == bindparam("b_slug"))
TENANTS = select(tenants).order_by(tenants.c.slug)
TENANT_COUNT = select(func.count()).select_from(tenants)
INSERT_TENANT = insert(tenants)
UPDATE_TENANT = update(tenants).where(tenants.c.id == TENANT)
CLAIM_SEAT = (
    update(tenants)
    .where(tenants.c.id == TENANT, tenants.c.seats_used < tenants.c.seat_limit)
    .values(seats_used=tenants.c.seats_used + 1)
)
RELEASE_SEAT = (
    update(tenants)
    .where(tenants.c.id == TENANT, tenants.c.seats_used > 0)
    .values(seats_used=tenants.c.seats_used - 1)
)
SEATS = select(tenants.c.seats_used, tenants.c.seat_limit).where(tenants.c.id == TENANT)

# -- tokens ----------------------------------------------------------------------------------
# api_tokens holds two kinds: the IdP's SCIM token ('scim') and the platform's events API key
# ('events'). Every statement names its kind, so one kind never authenticates, replaces or
# revokes the other.
SCIM, EVENTS = "scim", "events"


class TokenStatements(NamedTuple):
    """The prebuilt statements for one kind of token."""

    revoke: Any
    active: Any
    current: Any
    touch: Any


def _token_statements(kind: str) -> TokenStatements:
    of_kind = literal_column(f"'{kind}'", String(8))  # a constant, not a bound parameter
    live = and_(
        api_tokens.c.tenant_id == TENANT,
        api_tokens.c.kind == of_kind,
        api_tokens.c.revoked_at.is_(None),
    )
    active = (
        select(
            api_tokens.c.id,
            api_tokens.c.token_hash,
            api_tokens.c.last_used_at,
            tenants.c.plan,
            tenants.c.scim_enabled,
        )
        .join(tenants, tenants.c.id == api_tokens.c.tenant_id)
        .where(live, api_tokens.c.token_hash == bindparam("b_hash"))
    )
    return TokenStatements(
        revoke=update(api_tokens).where(live).values(revoked_at=bindparam("b_now")),
        active=active,
        current=select(api_tokens).where(live),
        touch=(
            update(api_tokens)
            .where(api_tokens.c.tenant_id == TENANT, api_tokens.c.kind == of_kind)
            .where(api_tokens.c.id == ID)
            .values(last_used_at=bindparam("b_now"))
        ),
    )


INSERT_TOKEN = insert(api_tokens)
TOKENS = {SCIM: _token_statements(SCIM), EVENTS: _token_statements(EVENTS)}
REVOKE_TOKENS, ACTIVE_TOKEN, CURRENT_TOKEN, TOUCH_TOKEN = TOKENS[SCIM]

# -- users -----------------------------------------------------------------------------------
USER_COLUMNS = (
    users.c.id,
    users.c.document,
    users.c.active,
    users.c.source,
    users.c.created_at,
    users.c.last_modified,
    users.c.version,
)
_THE_USER = and_(users.c.tenant_id == TENANT, users.c.id == ID)
USER = select(*USER_COLUMNS).where(_THE_USER)
USER_FOR_UPDATE = USER.with_for_update()
USER_HOLDERS = select(users.c.id, users.c.active, users.c.user_name_key, users.c.email_key).where(
    users.c.tenant_id == TENANT,
    (users.c.user_name_key == bindparam("b_user_name_key"))
    | (users.c.email_key == bindparam("b_email_key")),
)
USER_ID_BY_EMAIL = select(users.c.id).where(
    users.c.tenant_id == TENANT, users.c.email_key == bindparam("b_email_key")
)
INSERT_USER = insert(users)
# The columns every user write sets, bound as v_<column>: a fixed shape, so it is prebuilt.
# Not the keys: a user's identity cannot change (services/users.py), so they are written once,
# at creation; a user migration 0009 left with its old key (a legacy duplicate) keeps it.
USER_WRITE_COLUMNS = (
    "user_name",
    "external_id",
    "active",
    "source",
    "document",
    "last_modified",
    "version",
)
# Writes name the version they read, so a row changed since then matches nothing: the If-Match
# check is part of the statement that writes (RFC 7644 §3.14), not only of the read before it.
_THE_USER_AS_READ = and_(_THE_USER, users.c.version == bindparam("b_version"))
UPDATE_USER = (
    update(users)
    .where(_THE_USER_AS_READ)
    .values({name: bindparam(f"v_{name}", type_=users.c[name].type) for name in USER_WRITE_COLUMNS})
)
DELETE_USER = delete(users).where(_THE_USER_AS_READ)
INSERT_EMAILS = insert(user_emails).values(
    tenant_id=bindparam("tenant_id", type_=String(36)),
    user_id=bindparam("user_id", type_=String(36)),
    value_key=bindparam("value_key", type_=String(255)),
    is_legacy_duplicate=False,
)
_EMAILS_OF_USER = and_(user_emails.c.tenant_id == TENANT, user_emails.c.user_id == ID)
EMAIL_KEYS_OF_USER = select(user_emails.c.value_key).where(_EMAILS_OF_USER)
DELETE_EMAILS = delete(user_emails).where(
    _EMAILS_OF_USER, user_emails.c.value_key.in_(bindparam("b_keys", expanding=True))
)
# Who else holds any of these emails (primary or not): the check before a write.
EMAIL_HOLDERS = (
    select(user_emails.c.value_key, user_emails.c.user_id)
    .where(
        user_emails.c.tenant_id == TENANT,
        user_emails.c.value_key.in_(bindparam("b_keys", expanding=True)),
        user_emails.c.user_id != ID,
    )
    .order_by(user_emails.c.value_key, user_emails.c.user_id)
)
# The same for one email: a prebuilt statement for the fast path (db/fast_exec.py); a create
# or an update carries one or two emails.
EMAIL_HOLDER = (
    select(user_emails.c.value_key)
    .where(
        user_emails.c.tenant_id == TENANT,
        user_emails.c.value_key == bindparam("b_key"),
        user_emails.c.user_id != ID,
    )
    .limit(1)
)
# Emails held by more than one user: what migration 0009 found and kept (legacy duplicates).
_SHARED_KEYS = (
    select(user_emails.c.value_key)
    .where(user_emails.c.tenant_id == TENANT)
    .group_by(user_emails.c.value_key)
    .having(func.count() > 1)
)
SHARED_EMAILS = (
    select(user_emails.c.value_key, users.c.id, users.c.user_name, users.c.active)
    .join(
        users,
        and_(users.c.tenant_id == user_emails.c.tenant_id, users.c.id == user_emails.c.user_id),
    )
    .where(user_emails.c.tenant_id == TENANT, user_emails.c.value_key.in_(_SHARED_KEYS))
    .order_by(user_emails.c.value_key, users.c.created_at, users.c.id)
)
# Every user's userName and key, a page at a time in id order (the duplicates report).
USER_NAME_KEYS = (
    select(users.c.id, users.c.user_name, users.c.user_name_key, users.c.active)
    .where(users.c.tenant_id == TENANT, users.c.id > bindparam("b_after", type_=String(36)))
    .order_by(users.c.id)
    .limit(LIMIT)
)
USERS_BY_KEYS = (
    select(users.c.id, users.c.user_name, users.c.user_name_key, users.c.active)
    .where(
        users.c.tenant_id == TENANT,
        users.c.user_name_key.in_(bindparam("b_keys", expanding=True)),
    )
    .order_by(users.c.created_at, users.c.id)
)
# The Okta existence check, `userName eq "…"`, by its own prebuilt statement.
USERS_BY_USER_NAME_KEY = (
    select(*USER_COLUMNS)
    .where(users.c.tenant_id == TENANT, users.c.user_name_key == bindparam("b_key"))
    .order_by(users.c.id)
    .offset(OFFSET)
    .limit(LIMIT)
)
# The other existence checks IdPs send (`externalId eq`, `emails.value eq`), prebuilt too.
USERS_BY_EXTERNAL_ID = (
    select(*USER_COLUMNS)
    .where(users.c.tenant_id == TENANT, users.c.external_id == bindparam("b_key"))
    .order_by(users.c.id)
    .offset(OFFSET)
    .limit(LIMIT)
)
USERS_BY_EMAIL_KEY = (
    select(*USER_COLUMNS)
    .where(
        users.c.tenant_id == TENANT,
        users.c.id.in_(
            select(user_emails.c.user_id).where(
                user_emails.c.tenant_id == TENANT, user_emails.c.value_key == bindparam("b_key")
            )
        ),
    )
    .order_by(users.c.id)
    .offset(OFFSET)
    .limit(LIMIT)
)

# -- groups and memberships ------------------------------------------------------------------
GROUP_COLUMNS = (
    groups.c.id,
    groups.c.document,
    groups.c.created_at,
    groups.c.last_modified,
    groups.c.version,
)
_THE_GROUP = and_(groups.c.tenant_id == TENANT, groups.c.id == ID)
GROUP = select(*GROUP_COLUMNS).where(_THE_GROUP)
GROUP_FOR_UPDATE = GROUP.with_for_update()
INSERT_GROUP = insert(groups)
_THE_GROUP_AS_READ = and_(_THE_GROUP, groups.c.version == bindparam("b_version"))
UPDATE_GROUP = update(groups).where(_THE_GROUP_AS_READ)
DELETE_GROUP = delete(groups).where(_THE_GROUP_AS_READ)
GROUP_BY_NAME_KEY = select(groups.c.id).where(
    groups.c.tenant_id == TENANT, groups.c.display_name_key == bindparam("b_key")
)
GROUPS_AMONG = select(groups.c.id).where(
    groups.c.tenant_id == TENANT, groups.c.id.in_(bindparam("b_ids", expanding=True))
)

_MEMBERS_OF = and_(memberships.c.tenant_id == TENANT, memberships.c.group_id == ID)
_SOURCE = memberships.c.source == bindparam("b_source")
UNKNOWN_STAGED = (
    select(staged_members.c.user_id)
    .where(~exists().where(users.c.tenant_id == TENANT, users.c.id == staged_members.c.user_id))
    .limit(LIMIT)
)
CLEAR_STAGE = delete(staged_members)
STAGE = insert(staged_members)
SOURCE = bindparam("b_source", type_=String(8))
NOW = bindparam("b_now", type_=DateTime())
# The staged users who would become members (shared with their outbox events below).
_ADDABLE = (
    users.c.tenant_id == TENANT,
    users.c.id.in_(select(staged_members.c.user_id)),
    ~exists().where(_MEMBERS_OF, memberships.c.user_id == users.c.id),
    # The IdP never adds a user made by hand (the product rule for local users).
    users.c.source.not_in(bindparam("b_skipped_sources", expanding=True)),
)
ADD_STAGED = insert(memberships).from_select(
    ["tenant_id", "group_id", "user_id", "source", "added_at"],
    select(TENANT, ID, users.c.id, SOURCE, NOW).where(*_ADDABLE),
)
_STAGED_MEMBERS = (
    _MEMBERS_OF,
    _SOURCE,
    memberships.c.user_id.in_(select(staged_members.c.user_id)),
)
_UNSTAGED_MEMBERS = (
    _MEMBERS_OF,
    _SOURCE,
    # NOT EXISTS, not NOT IN: PostgreSQL runs NOT IN (subquery) as a per-row scan of the list
    # once it outgrows work_mem (100,000 ids), but NOT EXISTS as one hash anti-join.
    ~exists().where(staged_members.c.user_id == memberships.c.user_id),
)
_ALL_MEMBERS = (_MEMBERS_OF, _SOURCE)
REMOVE_STAGED = delete(memberships).where(*_STAGED_MEMBERS)
REMOVE_UNSTAGED = delete(memberships).where(*_UNSTAGED_MEMBERS)
REMOVE_ALL = delete(memberships).where(*_ALL_MEMBERS)
SET_MEMBER_SOURCE = (
    update(memberships)
    .where(_MEMBERS_OF, memberships.c.user_id == bindparam("b_user"))
    .values(source=bindparam("b_source"))
)
INSERT_MEMBERSHIP = insert(memberships)
REMOVE_MEMBER = (
    delete(memberships)
    .where(_MEMBERS_OF, memberships.c.user_id == bindparam("b_user"))
    .returning(memberships.c.source)
)
_MEMBER_USER = and_(
    users.c.tenant_id == memberships.c.tenant_id, users.c.id == memberships.c.user_id
)
MEMBERS = (
    select(memberships.c.user_id, users.c.user_name)
    .join(users, _MEMBER_USER)
    .where(_MEMBERS_OF)
    .order_by(memberships.c.user_id)
)
MEMBERS_OF_GROUPS = (
    select(memberships.c.group_id, memberships.c.user_id, users.c.user_name)
    .join(users, _MEMBER_USER)
    .where(
        memberships.c.tenant_id == TENANT,
        memberships.c.group_id.in_(bindparam("b_ids", expanding=True)),
    )
    .order_by(memberships.c.group_id, memberships.c.user_id)
)
_MEMBER_GROUP = and_(
    groups.c.tenant_id == memberships.c.tenant_id, groups.c.id == memberships.c.group_id
)
GROUPS_OF_USERS = (
    select(memberships.c.user_id, groups.c.id, groups.c.display_name)
    .join(groups, _MEMBER_GROUP)
    .where(
        memberships.c.tenant_id == TENANT,
        memberships.c.user_id.in_(bindparam("b_ids", expanding=True)),
    )
    .order_by(groups.c.display_name_key)
)
GROUPS_OF_USER = (
    select(memberships.c.user_id, groups.c.id, groups.c.display_name)
    .join(groups, _MEMBER_GROUP)
    .where(memberships.c.tenant_id == TENANT, memberships.c.user_id == ID)
    .order_by(groups.c.display_name_key)
)

# -- provisioning log ------------------------------------------------------------------------
INSERT_LOG = insert(provisioning_log)
_LOG_OF_TENANT = provisioning_log.c.tenant_id == TENANT
PRUNE_LOG_BY_AGE = delete(provisioning_log).where(
    _LOG_OF_TENANT, provisioning_log.c.at < bindparam("b_cutoff")
)
LOG_BOUNDARY = (
    select(provisioning_log.c.id)
    .where(_LOG_OF_TENANT)
    .order_by(provisioning_log.c.id.desc())
    .offset(OFFSET)
    .limit(1)
)
PRUNE_LOG_BY_COUNT = delete(provisioning_log).where(
    _LOG_OF_TENANT, provisioning_log.c.id <= bindparam("b_boundary")
)


# -- events (the outbox) ---------------------------------------------------------------------
def _reserve(dialect_insert: Any) -> Any:
    """Add b_count to the tenant's counter (making it on first use); return the new last_seq.

    The upsert locks the counter row until the transaction ends, so numbers are handed out in
    commit order (see EventStreamRow); b_count 0 only takes the lock and reads the number.
    """
    count = bindparam("b_count", type_=BigInteger())
    stmt = dialect_insert(event_streams).values(tenant_id=TENANT, last_seq=count)
    return stmt.on_conflict_do_update(
        index_elements=[event_streams.c.tenant_id],
        set_={"last_seq": event_streams.c.last_seq + stmt.excluded.last_seq},
    ).returning(event_streams.c.last_seq)


RESERVE_EVENTS = {"sqlite": _reserve(sqlite_insert), "postgresql": _reserve(postgresql_insert)}
INSERT_EVENT = insert(events)
EVENT_COLUMNS = [
    "tenant_id",
    "seq",
    "type",
    "occurred_at",
    "resource_type",
    "resource_id",
    "member_id",
    "data",
]
_FIRST_SEQ = bindparam("b_seq", type_=BigInteger())


def _member_events(type_: str, user_id: Any, user_name: Any, source: Any) -> Any:
    """Event columns for one membership per row, numbered after b_seq in user id order."""
    return (
        TENANT,
        _FIRST_SEQ + func.row_number().over(order_by=user_id),
        literal_column(f"'{type_}'", String(40)),
        NOW,
        literal_column("'Group'", String(16)),
        ID,
        user_id,
        json_object("userId", user_id, "userName", user_name, "source", source),
    )


# preserve_rowcount: SQLAlchemy reports an INSERT's row count only when asked (it is how many
# events were numbered).
ADDED_MEMBER_EVENTS = (
    insert(events)
    .from_select(
        EVENT_COLUMNS,
        select(*_member_events("group.member_added", users.c.id, users.c.user_name, SOURCE)).where(
            *_ADDABLE
        ),
    )
    .execution_options(preserve_rowcount=True)
)


def _removed_member_events(condition: tuple[Any, ...]) -> Any:
    columns = _member_events(
        "group.member_removed", memberships.c.user_id, users.c.user_name, memberships.c.source
    )
    return (
        insert(events)
        .from_select(EVENT_COLUMNS, select(*columns).join(users, _MEMBER_USER).where(*condition))
        .execution_options(preserve_rowcount=True)
    )


REMOVED_STAGED_EVENTS = _removed_member_events(_STAGED_MEMBERS)
REMOVED_UNSTAGED_EVENTS = _removed_member_events(_UNSTAGED_MEMBERS)
REMOVED_ALL_EVENTS = _removed_member_events(_ALL_MEMBERS)
EVENTS_AFTER = (
    select(events)
    .where(events.c.tenant_id == TENANT, events.c.seq > _FIRST_SEQ)
    .order_by(events.c.seq)
    .limit(LIMIT)
)
EVENT_STREAM = select(event_streams.c.last_seq, event_streams.c.pruned_through).where(
    event_streams.c.tenant_id == TENANT
)
# Retention walks a tenant's oldest events in number order (the primary key), a batch at a time.
_THROUGH = bindparam("b_through", type_=BigInteger())
OLDEST_EVENT_TIMES = (
    select(events.c.seq, events.c.occurred_at)
    .where(events.c.tenant_id == TENANT, events.c.seq > _FIRST_SEQ)
    .order_by(events.c.seq)
    .limit(LIMIT)
)
DELETE_EVENTS_THROUGH = delete(events).where(
    events.c.tenant_id == TENANT, events.c.seq > _FIRST_SEQ, events.c.seq <= _THROUGH
)
MARK_PRUNED = (
    update(event_streams)
    .where(event_streams.c.tenant_id == TENANT, event_streams.c.pruned_through < _THROUGH)
    .values(pruned_through=_THROUGH)
)
STREAMS_WITH_EVENTS = (
    select(event_streams.c.tenant_id)
    .where(event_streams.c.last_seq > event_streams.c.pruned_through)
    .order_by(event_streams.c.tenant_id)
)


def _append_in_one_statement() -> Any:
    """PostgreSQL: bump the counter and insert the event in one round trip (a data-modifying
    CTE; SQLite has none, so there it is RESERVE_EVENTS then INSERT_EVENT)."""
    counter = RESERVE_EVENTS["postgresql"].cte("counter")
    row = select(
        TENANT,
        counter.c.last_seq,
        bindparam("b_type", type_=String(40)),
        NOW,
        bindparam("b_resource_type", type_=String(16)),
        bindparam("b_resource_id", type_=String(255)),
        bindparam("b_member_id", type_=String(255)),
        bindparam("b_data", type_=events.c.data.type),
    ).select_from(counter)
    return insert(events).from_select(EVENT_COLUMNS, row).returning(events.c.seq)


APPEND_EVENT_POSTGRESQL = _append_in_one_statement()
