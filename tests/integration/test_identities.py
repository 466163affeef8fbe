"""Issue 14 over HTTP and on a migrated database: malformed values, one identity, lengths."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from muster.db import schema
from muster.db.engine import make_engine, normalise_url
from muster.db.tables import Base
from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError
from muster.scim.listing import ListQuery, parse_filter
from muster.services import tenants, users
from tests.cli_runner import Muster
from tests.conftest import POSTGRES_URL
from tests.factories import USER_URN, build_user, patch_op, suffix

pytestmark = pytest.mark.integration

USERS = "/scim/v2/Users"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
NFC = unicodedata.normalize("NFC", "rené@x.com")
NFD = unicodedata.normalize("NFD", "rené@x.com")


def _error(response: Any, status: int, scim_type: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["status"], body.get("scimType")) == (str(status), scim_type)
    return str(body["detail"])


# `emails: [{}]` and its siblings: 400 naming the element, never a 500


EMPTY_EMAIL = {"schemas": [USER_URN], "userName": "e@x.com", "emails": [{}]}


def test_post_with_an_empty_email_element_is_400(okta: TestClient) -> None:
    detail = _error(okta.post(USERS, json=EMPTY_EMAIL), 400, "invalidValue")

    assert detail.startswith("emails[0].value is required")


def test_put_with_an_empty_email_element_is_400(okta: TestClient) -> None:
    user = okta.post(USERS, json=build_user()).json()

    response = okta.put(f"{USERS}/{user['id']}", json={**user, "emails": [*user["emails"], {}]})

    assert _error(response, 400, "invalidValue").startswith("emails[1].value is required")


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "add", "path": "emails", "value": [{}]},
        {"op": "add", "value": {"emails": [{}]}},
        {"op": "replace", "path": "emails", "value": [{"type": "home"}]},
    ],
)
def test_patch_leaving_an_empty_email_element_is_400(
    okta: TestClient, operation: dict[str, Any]
) -> None:
    user = okta.post(USERS, json=build_user()).json()

    response = okta.patch(f"{USERS}/{user['id']}", json=patch_op(operation))

    assert ".value is required" in _error(response, 400, "invalidValue")
    assert okta.get(f"{USERS}/{user['id']}").json()["emails"] == user["emails"]


def test_bulk_with_empty_email_elements_fails_each_operation_with_400(okta: TestClient) -> None:
    user = okta.post(USERS, json=build_user()).json()
    operations = [
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": EMPTY_EMAIL},
        {"method": "PUT", "path": f"/Users/{user['id']}", "data": {**user, "emails": [{}]}},
        {
            "method": "PATCH",
            "path": f"/Users/{user['id']}",
            "data": patch_op({"op": "add", "path": "emails", "value": [{}]}),
        },
    ]

    response = okta.post("/scim/v2/Bulk", json={"schemas": [BULK], "Operations": operations})

    assert response.status_code == 200
    results = response.json()["Operations"]
    assert [r["status"] for r in results] == ["400", "400", "400"]
    for result in results:
        assert result["response"]["scimType"] == "invalidValue"
        assert "emails[" in result["response"]["detail"]


@pytest.mark.parametrize(
    ("overrides", "detail"),
    [
        ({"emails": [5]}, "emails[0] must be an object"),
        ({"emails": [{"value": ["e@x.com"]}]}, "emails[0].value must be a string"),
        ({"phoneNumbers": [{"type": "work"}]}, "phoneNumbers[0].value is required"),
        ({"addresses": [{}]}, "addresses[0] is empty"),
        ({"roles": [{}]}, "roles[0].value is required"),
        ({"x509Certificates": [{"display": "x"}]}, "x509Certificates[0].value is required"),
    ],
)
def test_other_malformed_elements_are_400_naming_them(
    okta: TestClient, overrides: dict[str, Any], detail: str
) -> None:
    response = okta.post(USERS, json=build_user(**overrides))

    assert _error(response, 400, "invalidValue").startswith(detail)


# one identity per person


@pytest.mark.parametrize(
    ("email", "named"),
    [
        ("bob\u200b@x.com", "U+200B ZERO WIDTH SPACE"),
        ("\u202emoc.x@bob", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ],
)
def test_an_address_with_an_invisible_character_is_400_naming_it(
    okta: TestClient, email: str, named: str
) -> None:
    response = okta.post(USERS, json=build_user(email=email))

    assert _error(response, 400, "invalidValue").startswith(f"userName contains {named}")


def test_a_look_alike_domain_is_400(okta: TestClient) -> None:
    response = okta.post(USERS, json=build_user(email="bob@p\u0430ypal.com"))

    assert "mixes CYRILLIC and LATIN" in _error(response, 400, "invalidValue")


@pytest.mark.parametrize("spelling", [NFD, "\uff52\uff45\uff4e\uff45\u0301@x.com", "RENÉ@x.com"])
def test_a_second_spelling_of_an_address_is_409(okta: TestClient, spelling: str) -> None:
    assert okta.post(USERS, json=build_user(email=NFC)).status_code == 201

    response = okta.post(USERS, json=build_user(email=spelling))

    _error(response, 409, "uniqueness")
    assert okta.get(USERS).json()["totalResults"] == 1


def test_a_secondary_email_belongs_to_one_user(okta: TestClient) -> None:
    bob = okta.post(USERS, json=build_user(email="bob@x.com")).json()
    for name in ("carol", "dave"):
        body = build_user(
            email=f"{name}@x.com",
            emails=[{"value": f"{name}@x.com", "primary": True}, {"value": "Bob@x.com"}],
        )
        detail = _error(okta.post(USERS, json=body), 409, "uniqueness")
        assert detail.startswith("email address 'Bob@x.com' is already in use")

    found = okta.get(USERS, params={"filter": 'emails.value eq "bob@x.com"'}).json()

    assert [u["id"] for u in found["Resources"]] == [bob["id"]]


# every string has a maximum length


def test_a_950_kb_display_name_is_400(okta: TestClient) -> None:
    response = okta.post(USERS, json=build_user(displayName="x" * 950_000))

    detail = _error(response, 400, "invalidValue")
    assert detail.startswith("displayName is 950000 characters long; at most 255 are accepted")
    assert okta.get(USERS).json()["totalResults"] == 0


def test_a_950_kb_group_display_name_is_400(okta: TestClient) -> None:
    body = {"schemas": [GROUP_URN], "displayName": "x" * 950_000}

    detail = _error(okta.post("/scim/v2/Groups", json=body), 400, "invalidValue")

    assert detail.startswith("displayName is 950000 characters long")


def test_a_user_document_over_64_kib_is_400(okta: TestClient) -> None:
    roles = [{"value": "r" * 1000, "type": "aws"} for _ in range(70)]

    detail = _error(okta.post(USERS, json=build_user(roles=roles)), 400, "invalidValue")

    assert "at most 65536 (64 KiB) are accepted" in detail


# migration 0009 on a database that already holds what the new rules refuse


@pytest.fixture
def fresh_url(tmp_path: Any) -> Iterator[str]:
    """An empty database of its own: a SQLite file, or a new PostgreSQL database."""
    if not POSTGRES_URL:
        yield f"sqlite:///{tmp_path / 'legacy.db'}"
        return
    url = make_url(normalise_url(POSTGRES_URL))
    name = f"{url.database}_identities"
    admin = make_engine(str(url.set(database="postgres")))

    def recreate(create: bool) -> None:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            if create:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    recreate(True)
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        recreate(False)
        admin.dispose()


_legacy_emails = sa.table(
    "user_emails", sa.column("tenant_id"), sa.column("value_key"), sa.column("user_id")
)


class LegacyTenant:
    """Writes users as Muster did before migration 0009: keys lower-cased, emails not unique."""

    def __init__(self, engine: Engine, tenant_id: str) -> None:
        self.engine, self.tenant_id = engine, tenant_id
        self.created = datetime(2026, 1, 1)

    def user(self, user_name: str, *secondary: str, active: bool = True) -> str:
        user_id = str(uuid.uuid4())
        self.created += timedelta(minutes=1)
        emails = [{"value": user_name, "type": "work", "primary": True}]
        emails += [{"value": value, "type": "home"} for value in secondary]
        document = {"schemas": [USER_URN], "userName": user_name, "emails": emails}
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(Base.metadata.tables["users"]).values(
                    tenant_id=self.tenant_id,
                    id=user_id,
                    user_name=user_name,
                    user_name_key=user_name.lower(),
                    email_key=user_name.lower(),
                    external_id=None,
                    active=active,
                    source="idp",
                    document={**document, "active": active},
                    created_at=self.created,
                    last_modified=self.created,
                    version=1,
                )
            )
            for key in sorted({e["value"].lower() for e in emails}):
                conn.execute(
                    sa.insert(_legacy_emails).values(
                        tenant_id=self.tenant_id, value_key=key, user_id=user_id
                    )
                )
        return user_id


def _query(text: str) -> ListQuery:
    return ListQuery(parse_filter(text), 1, 100)


def _flagged(engine: Engine) -> set[tuple[str, str]]:
    emails = Base.metadata.tables["user_emails"]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(emails.c.value_key, emails.c.user_id).where(emails.c.is_legacy_duplicate)
        )
        return {(r.value_key, r.user_id) for r in rows}


def _email_rows(engine: Engine, user_id: str) -> list[str]:
    emails = Base.metadata.tables["user_emails"]
    with engine.connect() as conn:
        query = sa.select(emails.c.value_key).where(emails.c.user_id == user_id)
        return sorted(conn.execute(query).scalars())


def test_migration_keeps_and_reports_the_duplicates_a_database_already_holds(
    fresh_url: str,
) -> None:
    engine = make_engine(fresh_url)
    schema.upgrade(engine, "0008_heartbeats")
    acme = tenants.create_tenant(UnitOfWork(engine), "acme", plan="enterprise", seats=25)
    tenants.create_tenant(UnitOfWork(engine), "clean", plan="enterprise", seats=25)
    legacy = LegacyTenant(engine, acme.tenant_id)
    rene_nfc = legacy.user(NFC)
    rene_nfd = legacy.user(NFD)
    bob = legacy.user("bob@x.com")
    bob_fullwidth = legacy.user("\uff42\uff4f\uff42@x.com", active=False)
    carol = legacy.user("carol@x.com", "bob@x.com")  # a shared secondary email
    dave = legacy.user("Dave@x.com", "\uff44\uff41\uff56\uff45@x.com")  # his own, twice
    erin_hidden = legacy.user("erin\u200b@x.com")
    erin = legacy.user("erin@x.com")

    schema.upgrade(engine)

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    # Nobody was merged or dropped; one user per shared email stays under the unique index.
    assert _flagged(engine) == {
        ("bob@x.com", bob_fullwidth),
        ("bob@x.com", carol),
        (NFC, rene_nfd),
        ("erin@x.com", erin_hidden),
    }
    assert _email_rows(engine, dave) == ["dave@x.com"]
    uow = UnitOfWork(engine, acme.tenant_id)
    _, found = users.list_users(uow, _query('emails.value eq "bob@x.com"'))
    assert {u.user_id for u in found} == {bob, bob_fullwidth, carol}
    _, found = users.list_users(uow, _query('userName eq "\uff22OB@x.com"'))
    assert [u.user_id for u in found] == [bob]

    report = Muster(fresh_url).ok("user", "duplicates").stdout.splitlines()

    assert report == [
        f"acme\temail\tbob@x.com\t{bob} bob@x.com active, "
        f"{bob_fullwidth} \uff42\uff4f\uff42@x.com deactivated, {carol} carol@x.com active",
        f"acme\temail\terin@x.com\t{erin_hidden} erin\u200b@x.com active, {erin} erin@x.com active",
        f"acme\temail\t{NFC}\t{rene_nfc} {NFC} active, {rene_nfd} {NFD} active",
        f"acme\tuserName\tbob@x.com\t{bob} bob@x.com active, "
        f"{bob_fullwidth} \uff42\uff4f\uff42@x.com deactivated",
        f"acme\tuserName\terin@x.com\t{erin} erin@x.com active, "
        f"{erin_hidden} erin\u200b@x.com active",
        f"acme\tuserName\t{NFC}\t{rene_nfc} {NFC} active, {rene_nfd} {NFD} active",
    ]
    assert Muster(fresh_url).ok("user", "duplicates", "acme").stdout.splitlines() == report
    assert Muster(fresh_url).ok("user", "duplicates", "clean").stdout == (
        "no identity is held by more than one user\n"
    )

    # The users the rule would have refused go on working; the rule holds for what comes next.
    patched = users.patch_user(
        uow, carol, patch_op({"op": "replace", "path": "displayName", "value": "C"}), if_match=None
    )
    assert patched.user.document["displayName"] == "C"
    assert _email_rows(engine, carol) == ["bob@x.com", "carol@x.com"]
    assert (
        users.patch_user(
            uow, rene_nfd, patch_op({"op": "replace", "value": {"active": False}}), if_match=None
        ).user.active
        is False
    )
    with pytest.raises(ScimError) as refused:
        users.create_user(uow, build_user(email=f"{suffix()}@x.com", emails=[
            {"value": f"{suffix()}@x.com", "primary": True}, {"value": "BOB@x.com"}]))  # fmt: skip
    assert refused.value.status == 409
    users.delete_user(uow, bob_fullwidth)
    after = Muster(fresh_url).ok("user", "duplicates", "acme").stdout
    assert "\uff42\uff4f\uff42" not in after and "\tuserName\tbob@x.com" not in after
    engine.dispose()
