"""create_user, get_user, list_users, replace_user, patch_user, delete_user (RFC 7644 §3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from muster.db.filter_sql import indexed_equality, user_filter, user_name_equality, user_order
from muster.db.ids import new_id
from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError, ScimType
from muster.scim import patching, versioning
from muster.scim.cursors import CursorPage
from muster.scim.identities import identity_key
from muster.scim.listing import ListQuery
from muster.scim.records import StoredUser
from muster.scim.resources import UserInput, identity_email, parse_user
from muster.scim.schemas import ENTERPRISE_ATTRIBUTES, ENTERPRISE_URN, USER_ATTRIBUTES, USER_URN
from muster.services import events, paging, seats
from muster.services.clock import utcnow
from muster.services.pages import PAGE_SIZE, Page, offset_of
from muster.services.provisioning_log import LogLine, entries_page

USER_SCHEMA = patching.Schema(
    core_urn=USER_URN,
    core=USER_ATTRIBUTES,
    extensions={ENTERPRISE_URN: ENTERPRISE_ATTRIBUTES},
    read_only=frozenset({"id", "meta", "groups"}),
)
IDENTITY_CHANGE = (
    "{attribute} cannot be changed through provisioning: Muster identifies each person by "
    "their email address. To change it, delete the user in Muster and have them sign in "
    "with the new address."
)


REVIVE_IDENTITY_CONFLICT = (
    "a deactivated user already holds this userName or email address with a different "
    "identity; email addresses cannot be changed through provisioning: delete that user in "
    "Muster and have the person sign in with the new address"
)


@dataclass(slots=True)
class Outcome:
    """A written user and the client quirks absorbed on the way, for the provisioning log."""

    user: StoredUser
    quirks: list[str]
    created: bool = False


def _stored(
    user_id: str,
    incoming: UserInput,
    active: bool,
    source: str,
    created: Any,
    now: Any,
    version: int,
) -> StoredUser:
    return StoredUser(user_id, incoming.document, active, source, created, now, version)


def _columns(
    incoming: UserInput, active: bool, source: str, now: Any, version: int
) -> dict[str, Any]:
    incoming.document["active"] = active
    return {
        "source": source,
        "user_name": incoming.user_name,
        "user_name_key": incoming.user_name_key,
        "email_key": incoming.email_key,
        "external_id": incoming.external_id,
        "active": active,
        "document": incoming.document,
        "last_modified": now,
        "version": version,
    }


def create_user(uow: UnitOfWork, payload: Any, *, source: str = "idp") -> Outcome:
    """Create a user, or revive the deactivated one holding the same userName or email."""
    incoming = parse_user(payload)
    active = incoming.active is not False
    with uow:
        holders = uow.users.find_holders(incoming.user_name_key, incoming.email_key)
        for _, is_active, user_name_key, _ in holders:
            if is_active:
                taken = "userName" if user_name_key == incoming.user_name_key else "email address"
                raise ScimError.uniqueness(taken)
        if len(holders) > 1:
            # The userName belongs to one deactivated user and the email to another.
            raise ScimError.uniqueness("email address")
        if holders and holders[0][2:] != (incoming.user_name_key, incoming.email_key):
            # Reviving is for the same person coming back. A deactivated user holding only the
            # userName or only the email is someone else's identity: reviving would rename it.
            raise ScimError(409, REVIVE_IDENTITY_CONFLICT, ScimType.UNIQUENESS)
        revived_id = holders[0][0] if holders else None
        _require_free_emails(uow, incoming, incoming.emails, owner=revived_id)
        now = utcnow()
        if holders:
            # Okta and others create again instead of reactivating after a re-assignment
            # (better-auth#11111): the deactivated user comes back with the same id.
            user_id = holders[0][0]
            current = uow.users.get(user_id, for_update=True)
            assert current is not None
            if active:
                seats.claim_seat(uow)
            version = current.version + 1
            values = _columns(incoming, active, source, now, version)
            if not uow.users.change(user_id, values, incoming.emails, read_version=current.version):
                raise versioning.changed_since_read("User", user_id)
            user = _stored(user_id, incoming, active, source, current.created, now, version)
            events.user_changed(
                uow, user_id, current.document, current.active, incoming.document, active, now
            )
            _attach_groups(uow, [user])  # deactivation kept their memberships
        else:
            if active:
                seats.claim_seat(uow)
            user_id = new_id()
            values = _columns(incoming, active, source, now, 1)
            uow.users.add({**values, "id": user_id, "created_at": now}, incoming.emails)
            user = _stored(user_id, incoming, active, source, now, now, 1)
            events.user_created(uow, user_id, incoming.document, active, now)
        uow.commit()
    return Outcome(user, incoming.quirks, created=True)


def _attach_groups(uow: UnitOfWork, page: list[StoredUser]) -> None:
    """Fill each user's read-only `groups` from the membership rows, one query per page."""
    if not page:
        return
    found = uow.groups.groups_of_users([u.user_id for u in page])
    for user in page:
        user.groups = found[user.user_id]


def get_user(uow: UnitOfWork, user_id: str, *, with_groups: bool = True) -> StoredUser:
    """Return one user of the tenant; another tenant's id is simply not found."""
    with uow.reading():
        user = uow.users.get(user_id)
        if user is not None and with_groups:
            _attach_groups(uow, [user])
    if user is None:
        raise ScimError.not_found("User", user_id)
    return user


def list_users(
    uow: UnitOfWork, query: ListQuery, *, with_groups: bool = True
) -> tuple[int, list[StoredUser]]:
    """Return (total matches, one page) for a filter, in creation order or by sortBy."""
    user_name = user_name_equality(query.filter)
    keyed = indexed_equality(query.filter) if query.sort_by is None else None
    where = None
    if query.filter is not None and user_name is None and keyed is None:
        where = user_filter(query.filter, _tenant_of(uow))
    order = user_order(query.sort_by, query.sort_descending)
    with uow.reading():
        found = None
        if user_name is not None:  # Okta's existence check, on its own prebuilt statement
            # (userName is unique: at most one match, so sortBy changes nothing)
            found = uow.users.search_by_user_name(
                identity_key(user_name), offset=query.offset, limit=query.count
            )
        elif keyed is not None:  # externalId / emails.value existence checks, also prebuilt
            found = uow.users.search_by_key(*keyed, offset=query.offset, limit=query.count)
        if found is None:
            if keyed is not None and query.filter is not None:  # the page could not tell
                where = user_filter(query.filter, _tenant_of(uow))
            found = uow.users.search(where, offset=query.offset, limit=query.count, order=order)
        total, page = found
        if with_groups:
            _attach_groups(uow, page)
    return total, page


def list_users_by_cursor(
    uow: UnitOfWork, query: ListQuery, *, with_groups: bool = True
) -> CursorPage[StoredUser]:
    """Return one page read by cursor (RFC 9865): the users after (or before) the cursor's key."""
    where = user_filter(query.filter, _tenant_of(uow)) if query.filter is not None else None
    order = user_order(query.sort_by, query.sort_descending)
    with uow.reading():
        page: CursorPage[StoredUser] = paging.seek_page(uow.users, "User", query, where, order)
        if with_groups:
            _attach_groups(uow, page.items)
    return page


def _require_free_emails(
    uow: UnitOfWork, incoming: UserInput, keys: set[str], *, owner: str | None
) -> None:
    """Refuse an email another user of the tenant holds, as primary or secondary (409)."""
    taken = uow.users.email_holders(keys, other_than=owner)
    if taken:
        raise ScimError.uniqueness(f"email address {incoming.email_as_sent(taken[0])!r}")


def _email_keys(document: dict[str, Any]) -> set[str]:
    """The keys of a stored user's emails, as its email rows hold them."""
    keys = {
        identity_key(value)
        for item in document.get("emails", [])
        if isinstance(value := item.get("value"), str) and value.strip()
    }
    keys.add(identity_key(identity_email(document)))
    return keys


def _require_same_identity(current: StoredUser, incoming: UserInput) -> None:
    # Product rule: the email address is the person's identity, and userName follows it.
    # A change that keeps the key (letter case, NFC/NFD, fullwidth forms) is not a change of
    # identity; so the key columns never change after creation.
    if incoming.user_name_key != identity_key(str(current.document.get("userName", ""))):
        raise ScimError.mutability(IDENTITY_CHANGE.format(attribute="userName"))
    if incoming.email_key != identity_key(identity_email(current.document)):
        raise ScimError.mutability(IDENTITY_CHANGE.format(attribute="The email address"))


def _rewrite(uow: UnitOfWork, current: StoredUser, incoming: UserInput, active: bool) -> StoredUser:
    _require_same_identity(current, incoming)
    current_emails = _email_keys(current.document)
    _require_free_emails(uow, incoming, incoming.emails - current_emails, owner=current.user_id)
    seats.move_seat(uow, was_active=current.active, is_active=active)
    now = utcnow()
    version = current.version + 1
    emails = incoming.emails if incoming.emails != current_emails else None
    values = _columns(incoming, active, current.source, now, version)
    if not uow.users.change(current.user_id, values, emails, read_version=current.version):
        raise versioning.changed_since_read("User", current.user_id)
    events.user_changed(
        uow, current.user_id, current.document, current.active, incoming.document, active, now
    )
    return _stored(current.user_id, incoming, active, current.source, current.created, now, version)


def replace_user(uow: UnitOfWork, user_id: str, payload: Any, *, if_match: str | None) -> Outcome:
    """Replace a user's attributes (RFC 7644 §3.5.1); read-only ones in the body are ignored."""
    with uow:
        current = uow.users.get(user_id, for_update=True)
        if current is None:
            raise ScimError.not_found("User", user_id)
        versioning.require_match(current.version, if_match)
        # Read against the stored user: values stored before a newer rule (a length limit,
        # the identity characters) may stay as they are.
        incoming = parse_user(payload, stored=current.document)
        # A PUT without `active` keeps the current state rather than silently toggling a seat.
        active = current.active if incoming.active is None else incoming.active
        user = _rewrite(uow, current, incoming, active)
        _attach_groups(uow, [user])
        uow.commit()
    return Outcome(user, incoming.quirks)


def patch_user(uow: UnitOfWork, user_id: str, payload: Any, *, if_match: str | None) -> Outcome:
    """Apply a PatchOp to a user (RFC 7644 §3.5.2), all operations or none."""
    quirks: list[str] = []
    operations = patching.parse_patch(payload, quirks)
    with uow:
        current = uow.users.get(user_id, for_update=True)
        if current is None:
            raise ScimError.not_found("User", user_id)
        versioning.require_match(current.version, if_match)
        patched = patching.apply_operations(current.document, operations, USER_SCHEMA, quirks)
        # apply_operations held the PATCH to MAX_MULTI_VALUES on what it adds; a user stored
        # with more values before the limit can still be patched (deactivated, say).
        incoming = parse_user(
            patched, require_schemas=False, limit_values=False, stored=current.document
        )
        active = incoming.active if incoming.active is not None else current.active
        user = _rewrite(uow, current, incoming, active)
        _attach_groups(uow, [user])
        uow.commit()
    return Outcome(user, quirks + incoming.quirks)


def delete_user(uow: UnitOfWork, user_id: str, *, if_match: str | None = None) -> None:
    """Delete a user for good; an active user's seat is freed."""
    with uow:
        current = uow.users.get(user_id, for_update=True)
        if current is None:
            raise ScimError.not_found("User", user_id)
        versioning.require_match(current.version, if_match)
        if not uow.users.remove(user_id, read_version=current.version):
            raise versioning.changed_since_read("User", user_id)
        if current.active:
            seats.release_seat(uow)
        events.user_deleted(uow, user_id, current.document, utcnow())
        uow.commit()


def create_local_user(
    uow: UnitOfWork, email: str, *, given_name: str = "", family_name: str = ""
) -> StoredUser:
    """Create a user by hand (console or CLI); IdP group pushes never touch their memberships."""
    name = {k: v for k, v in (("givenName", given_name), ("familyName", family_name)) if v}
    payload: dict[str, Any] = {
        "schemas": [USER_URN],
        "userName": email,
        "emails": [{"value": email, "type": "work", "primary": True}],
        "active": True,
    }
    if name:
        payload["name"] = name
        payload["displayName"] = " ".join(name.values())
    return create_user(uow, payload, source="local").user


# -- identities shared by several users (stored before migration 0009) -------------------------


@dataclass(frozen=True, slots=True)
class SharedIdentity:
    """Users of one tenant holding one identity: an email (primary or not) or a userName."""

    kind: str  # "email" | "userName"
    key: str  # the identity key (scim/identities.py) they share
    users: list[tuple[str, str, bool]]  # (user id, userName, active)


def find_shared_identities(uow: UnitOfWork) -> list[SharedIdentity]:
    """List the identities more than one user of the tenant holds; read-only, merges nothing.

    Writes refuse them since migration 0009 (409); these were stored before it. Emails come
    from the email rows (one GROUP BY). A userName that clashed kept its old key in the
    migration, so those are the users whose key is not their userName's key: one pass over the
    tenant's users, a batch at a time.
    """
    found: list[SharedIdentity] = []
    with uow.reading():
        by_email: dict[str, list[tuple[str, str, bool]]] = {}
        for key, user_id, user_name, active in uow.users.shared_emails():
            by_email.setdefault(key, []).append((user_id, user_name, active))
        found += [SharedIdentity("email", key, holders) for key, holders in by_email.items()]
        stale: dict[str, list[tuple[str, str, bool]]] = {}
        for batch in uow.users.user_name_keys():
            for user_id, user_name, user_name_key, active in batch:
                key = identity_key(user_name)
                if key != user_name_key:
                    stale.setdefault(key, []).append((user_id, user_name, active))
        keepers: dict[str, list[tuple[str, str, bool]]] = {}
        for user_id, user_name, user_name_key, active in uow.users.holders_of_user_name_keys(stale):
            keepers.setdefault(user_name_key, []).append((user_id, user_name, active))
    for key, others in sorted(stale.items()):
        holders = keepers.get(key, []) + others
        if len(holders) > 1:
            found.append(SharedIdentity("userName", key, holders))
    return found


# -- the console's views ----------------------------------------------------------------------

USER_SOURCES = ("idp", "local", "sso")
USER_STATUSES = {"active": True, "deactivated": False}


@dataclass(frozen=True, slots=True)
class UserDetail:
    """One user with their groups (and how each membership came) and their log entries."""

    user: StoredUser
    groups: list[tuple[str, str, str]]  # (group id, displayName, idp | manual)
    log: Page[LogLine]


def search_users(
    uow: UnitOfWork,
    *,
    text: str = "",
    source: str | None = None,
    status: str | None = None,
    page: int = 1,
) -> Page[StoredUser]:
    """Find users by a fragment of their name or email, source and status; newest first."""
    if source not in (None, "", *USER_SOURCES):
        raise ScimError.invalid_value(f"source must be one of {', '.join(USER_SOURCES)}")
    if status not in (None, "", *USER_STATUSES):
        raise ScimError.invalid_value("status must be active or deactivated")
    with uow.reading():
        total, found = uow.console.users_page(
            text=text.strip()[:255],
            source=source or None,
            is_active=USER_STATUSES[status] if status else None,
            offset=offset_of(page),
            limit=PAGE_SIZE,
        )
    return Page(found, total, max(page, 1))


def user_detail(uow: UnitOfWork, user_id: str, *, log_page: int = 1) -> UserDetail:
    """Return a user of the tenant with their groups and provisioning log entries."""
    with uow.reading():
        user = uow.users.get(user_id)
        if user is None:
            raise ScimError.not_found("User", user_id)
        memberships = uow.console.groups_of_user(user_id)
    log = entries_page(uow, page=log_page, resource_id=user_id)
    return UserDetail(user, memberships, log)


def _tenant_of(uow: UnitOfWork) -> str:
    assert uow.tenant_id is not None  # list use cases always run with a tenant's unit of work
    return uow.tenant_id
