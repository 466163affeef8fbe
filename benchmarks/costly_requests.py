"""The costliest SCIM requests within the 1 MiB body limit, in process: prints CPU ms per request.

    .venv/bin/python benchmarks/costly_requests.py [--only NAME ...] [--members 22000]

Issue 13 asks every request the body limit admits to cost at most about 100 ms of CPU. Each
case below crafts one request shape as large as the limit allows (big PatchOp value lists, many
operations, long filters, deep or wide /Bulk bodies, big member lists, long attribute lists,
...), or, where a limit now refuses that, the largest one the limit still accepts.

Nothing listens on a port. The app is built with create_app on a throwaway SQLite file, an
Enterprise tenant and its token are made through the services, and each request is sent twice
over: straight into the ASGI app with the body already in memory (`server ms`: the pipeline,
the handler, the services, SQLite and the provisioning log; no HTTP parsing, which uvicorn's
httptools does in C), and through starlette's TestClient (`client ms`: the test client and the
app together; process_time counts every thread). Both are time.process_time around the one
request, the median of --repeat runs; each run gets fresh targets (a new user or group),
prepared untimed. A run slower than --slow seconds is not repeated. The numbers are printed,
never asserted.

The settings write the provisioning log at once (log_flush_seconds=0), so a /Bulk request
pays one log transaction per operation here; served with the default 0.2 s, they are batched.

To measure older code, put its src first: PYTHONPATH=/other/worktree/src (cap it with
`timeout`: the quadratic cases took minutes there).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.testclient import TestClient

from muster.app import create_app
from muster.config import Settings
from muster.services import api_tokens, tenants, users
from muster.services.database import Database

MIB = 1024 * 1024
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_URN = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SEARCH_URN = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
SLUG = "costly"
ROOM = MIB - 512  # a body this size or less is inside the limit, envelope included


@dataclass(frozen=True, slots=True)
class Call:
    """One request: method, path under /scim/v2, query parameters and JSON body."""

    method: str
    path: str
    params: dict[str, str] | None = None
    body: Any = None  # JSON-ready, or bytes (orjson.dumps stops at 255 levels)

    @property
    def raw(self) -> bytes:
        if self.body is None:
            return b""
        return self.body if isinstance(self.body, bytes) else orjson.dumps(self.body)


def fill(make: Callable[[int], Any], wrap: Callable[[list[Any]], Any], room: int = ROOM) -> Any:
    """The largest wrap([make(0), make(1), ...]) whose JSON fits in `room` bytes."""
    one = len(orjson.dumps(make(10**5))) + 1
    count = max(1, (room - len(orjson.dumps(wrap([])))) // one)
    while len(orjson.dumps(wrap([make(i) for i in range(count)]))) > room:
        count = count * 95 // 100
    return wrap([make(i) for i in range(count)])


def patch(*operations: Any) -> dict[str, Any]:
    return {"schemas": [PATCH_URN], "Operations": list(operations)}


def user(name: str, **more: Any) -> dict[str, Any]:
    return {"schemas": [USER_URN], "userName": f"{name}@example.com", "active": True, **more}


def nested(depth: int) -> str:
    """A JSON array `depth` levels deep, as text (orjson.dumps stops at 255 levels)."""
    return "[" * depth + '"x@example.com"' + "]" * depth


def with_placeholder(body: Any, text: str) -> bytes:
    """The body's JSON with the string "@@" replaced by raw JSON text."""
    return orjson.dumps(body).replace(b'"@@"', text.encode())


class Bench:
    """The app, its tenant, some stored users, and the two ways to send a request."""

    def __init__(self, directory: str, members: int) -> None:
        settings = Settings(
            database_url=f"sqlite:///{directory}/costly.db",
            create_demo_tenant=False,
            log_flush_seconds=0,
        )
        database = Database(settings)
        database.upgrade()
        self.tenant_id = tenants.create_tenant(
            database.uow(), SLUG, plan="enterprise", seats=10_000_000
        ).tenant_id
        token = api_tokens.issue_scim_token(database.uow(), SLUG).secret
        self.database = database
        self.app = create_app(settings)
        self.headers = {"authorization": f"Bearer {token}", "content-type": "application/scim+json"}
        self.client = TestClient(self.app, base_url="http://bench.local", headers=self.headers)
        self.client.__enter__()  # lifespan startup, as under uvicorn
        self.loop = asyncio.new_event_loop()
        self.serial = 0
        self.big_group: str | None = None
        started = time.perf_counter()
        print(f"storing {members:,} users for the member-list cases ...", flush=True)
        self.member_ids = [self.stored_user(emails=1) for _ in range(members)]
        print(f"  stored in {time.perf_counter() - started:.1f} s", flush=True)

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.loop.close()
        self.database.dispose()

    def name(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def stored_user(self, *, emails: int = 1, name: str | None = None, **more: Any) -> str:
        """A user stored through the service (untimed), with `emails` email addresses."""
        name = name or self.name("u")
        items = [{"value": f"{name}@example.com", "type": "work", "primary": True}]
        items += [{"value": f"{name}.{i}@example.org", "type": "other"} for i in range(emails - 1)]
        outcome = users.create_user(
            self.database.uow(self.tenant_id), user(name, emails=items, **more)
        )
        return outcome.user.user_id

    def stored_group(self, members: int = 0) -> str:
        body = {
            "schemas": [GROUP_URN],
            "displayName": self.name("g"),
            "members": [{"value": m} for m in self.member_ids[:members]],
        }
        created = self.client.post("/scim/v2/Groups", content=orjson.dumps(body))
        assert created.status_code == 201, created.text[:300]
        return str(created.json()["id"])

    def through_client(self, call: Call, raw: bytes) -> tuple[int, float, int]:
        url = "/scim/v2" + call.path + (f"?{urlencode(call.params)}" if call.params else "")
        started = time.process_time()
        response = self.client.request(call.method, url, content=raw or None)
        spent = time.process_time() - started
        return response.status_code, spent, len(response.content)

    def through_asgi(self, call: Call, raw: bytes) -> tuple[int, float, int]:
        return self.loop.run_until_complete(self._asgi(call, raw))

    async def _asgi(self, call: Call, raw: bytes) -> tuple[int, float, int]:
        headers = [(k.encode(), v.encode()) for k, v in self.headers.items()]
        headers += [(b"host", b"bench.local"), (b"content-length", str(len(raw)).encode())]
        path = "/scim/v2" + call.path
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": call.method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": urlencode(call.params or {}).encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        sent = False
        status, size = 0, 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))

        started = time.process_time()
        await self.app(scope, receive, send)
        return status, time.process_time() - started, size


# ---- the cases -------------------------------------------------------------------------------
# Each takes the Bench, prepares its targets (untimed) and returns the request to time.


def patch_emails_as_strings(b: Bench) -> Call:
    """Issue 13's report: ~90,000 distinct bare values added to emails (36 s before)."""
    body = fill(lambda i: f"e{i}", lambda v: patch({"op": "add", "path": "emails", "value": v}))
    return Call("PATCH", f"/Users/{b.stored_user()}", body=body)


def patch_emails_as_objects(b: Bench) -> Call:
    body = fill(
        lambda i: {"value": f"p{i}@example.com", "type": "other"},
        lambda v: patch({"op": "add", "path": "emails", "value": v}),
    )
    return Call("PATCH", f"/Users/{b.stored_user()}", body=body)


def patch_emails_one_value_repeated(b: Bench) -> Call:
    """The same email over and over: every duplicate check finds a match."""
    body = fill(
        lambda i: {"value": "same@example.com"},
        lambda v: patch({"op": "add", "path": "emails", "value": v}),
    )
    return Call("PATCH", f"/Users/{b.stored_user()}", body=body)


def patch_emails_at_the_limit(b: Bench) -> Call:
    """Legitimate and as large as MAX_MULTI_VALUES allows: 99 more emails on a user with 1."""
    values = [{"value": f"q{i}@example.com", "type": "other"} for i in range(99)]
    return Call(
        "PATCH",
        f"/Users/{b.stored_user()}",
        body=patch({"op": "add", "path": "emails", "value": values}),
    )


def patch_every_multi_valued_at_the_limit(b: Bench) -> Call:
    """100 values in each of the user's multi-valued attributes, in one PATCH."""
    shapes = {
        "emails": lambda i: {"value": f"m{i}@example.com", "type": "other"},
        "phoneNumbers": lambda i: {"value": f"+1 555 {i:07d}", "type": "work"},
        "ims": lambda i: {"value": f"im{i}", "type": "xmpp"},
        "photos": lambda i: {"value": f"https://example.com/p/{i}.jpg", "type": "photo"},
        "addresses": lambda i: {
            "streetAddress": f"{i} Main St",
            "locality": "Town",
            "postalCode": f"{i:05d}",
            "type": "work",
        },
        "entitlements": lambda i: {"value": f"ent{i}"},
        "roles": lambda i: {"value": f"role{i}"},
        "x509Certificates": lambda i: {"value": f"MIIC{i:040d}"},
    }
    operations = [
        {
            "op": "add",
            "path": name,
            "value": [make(i) for i in range(99 if name == "emails" else 100)],
        }
        for name, make in shapes.items()
    ]
    return Call("PATCH", f"/Users/{b.stored_user()}", body=patch(*operations))


def patch_many_operations(b: Bench) -> Call:
    body = fill(
        lambda i: {"op": "replace", "path": "displayName", "value": f"D{i}"},
        lambda ops: patch(*ops),
    )
    return Call("PATCH", f"/Users/{b.stored_user()}", body=body)


def patch_operations_at_the_limit_filtered(b: Bench) -> Call:
    """MAX_OPERATIONS (1000) filtered replaces, each matched against the user's 100 emails."""
    name = b.name("u")
    user_id = b.stored_user(emails=100, name=name)
    operations = [
        {
            "op": "replace",
            "value": f"d{i}",
            "path": f'emails[value eq "{name}.{i % 99}@example.org"].display',
        }
        for i in range(1000)
    ]
    return Call("PATCH", f"/Users/{user_id}", body=patch(*operations))


def patch_operations_at_the_limit_adding(b: Bench) -> Call:
    """MAX_OPERATIONS (1000) adds to a user's 100 emails, each checked against all of them."""
    name = b.name("u")
    user_id = b.stored_user(emails=100, name=name)
    operations = [
        {
            "op": "add",
            "path": "emails",
            "value": [{"value": f"{name}.{i % 99}@example.org", "type": "other"}],
        }
        for i in range(1000)
    ]
    return Call("PATCH", f"/Users/{user_id}", body=patch(*operations))


def patch_no_path_many_keys(b: Bench) -> Call:
    """One no-path replace whose value holds many Entra-style path keys."""
    body = fill(
        lambda i: (f'emails[value eq "k{i}@example.org"].display', "x"),
        lambda pairs: patch({"op": "replace", "value": dict(pairs)}),
    )
    return Call("PATCH", f"/Users/{b.stored_user(emails=100)}", body=body)


def patch_long_filter_path(b: Bench) -> Call:
    terms = fill(
        lambda i: f'value eq "f{i}@example.com"',
        lambda t: patch({"op": "remove", "path": "emails[" + " or ".join(t) + "]"}),
    )
    return Call("PATCH", f"/Users/{b.stored_user(emails=100)}", body=terms)


def patch_deeply_nested_value(b: Bench) -> Call:
    """Two values nested 1,000 arrays deep: the duplicate check compares them."""
    body = patch({"op": "add", "path": "emails", "value": "@@"})
    deep = nested(1000)
    return Call(
        "PATCH", f"/Users/{b.stored_user()}", body=with_placeholder(body, f"[{deep},{deep}]")
    )


def post_user_many_emails(b: Bench) -> Call:
    name = b.name("c")
    return Call(
        "POST",
        "/Users",
        body=fill(
            lambda i: {"value": f"{name}.{i}@example.com", "type": "other"},
            lambda v: user(name, emails=v),
        ),
    )


def post_user_at_the_limits(b: Bench) -> Call:
    """Legitimate: 100 emails and 100 phone numbers, the most a user may have of each."""
    name = b.name("c")
    emails = [{"value": f"{name}.{i}@example.com", "type": "other"} for i in range(100)]
    phones = [{"value": f"+1 555 {i:07d}", "type": "work"} for i in range(100)]
    return Call("POST", "/Users", body=user(name, emails=emails, phoneNumbers=phones))


def put_user_many_addresses(b: Bench) -> Call:
    name = b.name("c")
    user_id = b.stored_user(name=name)
    primary = [{"value": f"{name}@example.com", "type": "work", "primary": True}]
    body = fill(
        lambda i: {"streetAddress": f"{i} Main St", "type": "work"},
        lambda v: user(name, emails=primary, addresses=v),
    )
    return Call("PUT", f"/Users/{user_id}", body=body)


def search_long_or_filter(b: Bench) -> Call:
    body = fill(
        lambda i: f'userName eq "s{i}@example.com"',
        lambda t: {"schemas": [SEARCH_URN], "filter": " or ".join(t) or "id pr"},
    )
    return Call("POST", "/Users/.search", body=body)


def search_deep_parentheses(b: Bench) -> Call:
    depth = (ROOM - 200) // 2
    text = "(" * depth + 'userName eq "x"' + ")" * depth
    return Call("POST", "/Users/.search", body={"schemas": [SEARCH_URN], "filter": text})


def search_parentheses_at_the_limit(b: Bench) -> Call:
    """A filter MAX_FILTER_LENGTH (4096) long, nearly all of it nested parentheses."""
    depth = (4096 - 20) // 2
    text = "(" * depth + 'userName eq "x"' + ")" * depth
    return Call("POST", "/Users/.search", body={"schemas": [SEARCH_URN], "filter": text})


def search_or_filter_at_the_limits(b: Bench) -> Call:
    """MAX_FILTER_TERMS (32) indexed look-ups, a client's batch existence check."""
    terms = [f'userName eq "u{i}@example.com"' for i in range(1, 33)]
    return Call(
        "POST", "/Users/.search", body={"schemas": [SEARCH_URN], "filter": " or ".join(terms)}
    )


def search_filter_at_the_limits(b: Bench) -> Call:
    """Legitimate and as costly as MAX_FILTER_TERMS (32) allows: filters over JSON arrays."""
    terms = [f'phoneNumbers[value eq "+1 555 {i:07d}" and type eq "work"]' for i in range(16)]
    return Call(
        "POST", "/Users/.search", body={"schemas": [SEARCH_URN], "filter": " or ".join(terms)}
    )


def get_filter_in_url(b: Bench) -> Call:
    """MAX_FILTER_TERMS (32) substring matches on the JSON document, every user a candidate."""
    terms = [f'name.givenName co "g{i}"' for i in range(32)]
    return Call("GET", "/Users", params={"filter": " or ".join(terms), "count": "100"})


def search_many_attributes(b: Bench) -> Call:
    body = fill(
        lambda i: "emails.value" if i % 2 else "name.givenName",
        lambda a: {"schemas": [SEARCH_URN], "attributes": a, "count": 1000},
    )
    return Call("POST", "/Users/.search", body=body)


def search_many_distinct_attributes(b: Bench) -> Call:
    body = fill(
        lambda i: f"urn:example:{i}:attribute",
        lambda a: {"schemas": [SEARCH_URN], "attributes": a, "count": 1000},
    )
    return Call("POST", "/Users/.search", body=body)


def search_many_excluded_attributes(b: Bench) -> Call:
    body = fill(
        lambda i: "emails.type" if i % 2 else "name.familyName",
        lambda a: {"schemas": [SEARCH_URN], "excludedAttributes": a, "count": 1000},
    )
    return Call("POST", "/Users/.search", body=body)


def search_attributes_at_the_limit(b: Bench) -> Call:
    """MAX_ATTRIBUTE_NAMES (1000) names over the largest page (1000 users)."""
    names = ["emails.value", "name.givenName", "meta.version"] * 333
    return Call(
        "POST", "/Users/.search", body={"schemas": [SEARCH_URN], "attributes": names, "count": 1000}
    )


def list_users_full_page(b: Bench) -> Call:
    """Legitimate: the largest page (1000 users), rendered whole."""
    return Call("GET", "/Users", params={"count": "1000"})


def search_long_sort_by(b: Bench) -> Call:
    body = {"schemas": [SEARCH_URN], "sortBy": "name." + "x" * (ROOM - 200)}
    return Call("POST", "/Users/.search", body=body)


def _bulk(operations: list[Any]) -> dict[str, Any]:
    return {"schemas": [BULK_URN], "Operations": operations}


def bulk_thousand_user_creates(b: Bench) -> Call:
    """Legitimate: maxOperations user creates."""
    prefix = b.name("bulk")
    return Call(
        "POST",
        "/Bulk",
        body=_bulk(
            [
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": f"b{i}",
                    "data": user(f"{prefix}.{i}"),
                }
                for i in range(1000)
            ]
        ),
    )


def bulk_user_creates_at_the_limit(b: Bench) -> Call:
    """Legitimate: maxOperations (MUSTER_BULK_MAX_OPERATIONS, 100) user creates."""
    prefix = b.name("bulk")
    operations = [
        {"method": "POST", "path": "/Users", "bulkId": f"b{i}", "data": user(f"{prefix}.{i}")}
        for i in range(Settings().bulk_max_operations)
    ]
    return Call("POST", "/Bulk", body=_bulk(operations))


def bulk_changes_at_the_limit(b: Bench) -> Call:
    """maxOperations PATCHes of 100-email users holding MAX_OPERATIONS (1000) changes in all."""
    count = Settings().bulk_max_operations
    each = 1000 // count
    operations = []
    for _ in range(count):
        name = b.name("u")
        user_id = b.stored_user(emails=100, name=name)
        changes = [
            {
                "op": "replace",
                "value": f"d{i}",
                "path": f'emails[value eq "{name}.{i}@example.org"].display',
            }
            for i in range(each)
        ]
        operations.append({"method": "PATCH", "path": f"/Users/{user_id}", "data": patch(*changes)})
    return Call("POST", "/Bulk", body=_bulk(operations))


def bulk_group_referencing_its_users(b: Bench) -> Call:
    """Legitimate: 999 user creates and one group whose members are their bulkIds."""
    prefix = b.name("bulk")
    operations: list[Any] = [
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "group",
            "data": {
                "schemas": [GROUP_URN],
                "displayName": prefix,
                "members": [{"value": f"bulkId:b{i}"} for i in range(999)],
            },
        }
    ]
    operations += [
        {"method": "POST", "path": "/Users", "bulkId": f"b{i}", "data": user(f"{prefix}.{i}")}
        for i in range(999)
    ]
    return Call("POST", "/Bulk", body=_bulk(operations))


def bulk_deeply_nested_data(b: Bench) -> Call:
    """Issue 14: data nested 1,000 arrays deep (a RecursionError before)."""
    body = _bulk(
        [{"method": "POST", "path": "/Users", "bulkId": "deep", "data": user("deep", x="@@")}]
    )
    return Call("POST", "/Bulk", body=with_placeholder(body, nested(1000)))


def bulk_circular_references(b: Bench) -> Call:
    """1000 operations in one reference cycle: each fails, naming the cycle."""
    prefix = b.name("cycle")
    return Call(
        "POST",
        "/Bulk",
        body=_bulk(
            [
                {
                    "method": "POST",
                    "path": "/Groups",
                    "bulkId": f"{prefix}-{i:04d}",
                    "data": {
                        "schemas": [GROUP_URN],
                        "displayName": f"{prefix}-{i}",
                        "members": [{"value": f"bulkId:{prefix}-{(i + 1) % 1000:04d}"}],
                    },
                }
                for i in range(1000)
            ]
        ),
    )


def bulk_wide_references(b: Bench) -> Call:
    """One operation whose data holds as many bulkId references as fit."""
    body = fill(
        lambda i: {"value": f"bulkId:r{i}"},
        lambda m: _bulk(
            [
                {
                    "method": "POST",
                    "path": "/Groups",
                    "bulkId": "wide",
                    "data": {"schemas": [GROUP_URN], "displayName": b.name("wide"), "members": m},
                }
            ]
        ),
    )
    return Call("POST", "/Bulk", body=body)


def bulk_patches_with_long_filters(b: Bench) -> Call:
    """PATCH operations each with a filtered path just under one PatchOp's budget, 1 MiB of them."""
    user_id = b.stored_user(emails=100)
    terms = " or ".join(f'value eq "f{i}@example.com"' for i in range(300))[:8000]
    terms = terms[: terms.rindex(" or ")]
    operation = {
        "method": "PATCH",
        "path": f"/Users/{user_id}",
        "data": patch({"op": "remove", "path": f"emails[{terms}]"}),
    }
    return Call("POST", "/Bulk", body=fill(lambda i: operation, _bulk))


def bulk_patches_at_the_limits(b: Bench) -> Call:
    """As many PATCH operations as fit, each MAX_OPERATIONS filtered replaces on one user."""
    name = b.name("u")
    user_id = b.stored_user(emails=100, name=name)
    operations = [
        {
            "op": "replace",
            "value": f"d{i}",
            "path": f'emails[value eq "{name}.{i % 99}@example.org"].display',
        }
        for i in range(1000)
    ]
    operation = {"method": "PATCH", "path": f"/Users/{user_id}", "data": patch(*operations)}
    return Call("POST", "/Bulk", body=fill(lambda i: operation, _bulk))


def _members(b: Bench, wrap: Callable[[list[Any]], Any]) -> Any:
    ids = b.member_ids
    return fill(lambda i: {"value": ids[i % len(ids)]}, wrap)


def post_group_big_member_list(b: Bench) -> Call:
    """Legitimate: a group created with as many members as 1 MiB holds (~22,000)."""
    name = b.name("big")
    return Call(
        "POST",
        "/Groups",
        body=_members(b, lambda m: {"schemas": [GROUP_URN], "displayName": name, "members": m}),
    )


def put_group_big_member_list(b: Bench) -> Call:
    group_id = b.stored_group()
    name = b.name("big")
    return Call(
        "PUT",
        f"/Groups/{group_id}",
        body=_members(b, lambda m: {"schemas": [GROUP_URN], "displayName": name, "members": m}),
    )


def patch_group_add_big_member_list(b: Bench) -> Call:
    group_id = b.stored_group()
    return Call(
        "PATCH",
        f"/Groups/{group_id}",
        body=_members(b, lambda m: patch({"op": "add", "path": "members", "value": m})),
    )


def patch_group_many_remove_operations(b: Bench) -> Call:
    """Okta's remove-by-filter, one operation per member, as many as fit."""
    group_id = b.stored_group(members=1000)
    ids = b.member_ids
    body = fill(
        lambda i: {"op": "remove", "path": f'members[value eq "{ids[i % len(ids)]}"]'},
        lambda ops: patch(*ops),
    )
    return Call("PATCH", f"/Groups/{group_id}", body=body)


def patch_group_thousand_remove_operations(b: Bench) -> Call:
    """Legitimate: MAX_OPERATIONS (1000) one-member removes, Okta's shape, run as one step."""
    group_id = b.stored_group(members=1000)
    ids = b.member_ids
    removes = [{"op": "remove", "path": f'members[value eq "{ids[i]}"]'} for i in range(1000)]
    return Call("PATCH", f"/Groups/{group_id}", body=patch(*removes))


def patch_group_steps_at_the_limit(b: Bench) -> Call:
    """MAX_MEMBER_STEPS (100) single-member adds and removes, alternating: none merge."""
    group_id = b.stored_group(members=1000)
    ids = b.member_ids
    operations: list[Any] = []
    for i in range(50):
        operations.append({"op": "add", "path": "members", "value": [{"value": ids[-1 - i]}]})
        operations.append({"op": "remove", "path": f'members[value eq "{ids[i]}"]'})
    return Call("PATCH", f"/Groups/{group_id}", body=patch(*operations))


def patch_group_long_member_filter(b: Bench) -> Call:
    group_id = b.stored_group(members=1000)
    ids = b.member_ids
    body = fill(
        lambda i: f'value eq "{ids[i % len(ids)]}"',
        lambda t: patch({"op": "remove", "path": "members[" + " or ".join(t) + "]"}),
    )
    return Call("PATCH", f"/Groups/{group_id}", body=body)


def patch_group_member_filter_at_the_limit(b: Bench) -> Call:
    """One remove whose filter names as many members as MAX_COMPLEX_PATH_CHARACTERS allows."""
    group_id = b.stored_group(members=1000)
    terms = [f'value eq "{member}"' for member in b.member_ids[:158]]
    path = "members[" + " or ".join(terms) + "]"
    return Call("PATCH", f"/Groups/{group_id}", body=patch({"op": "remove", "path": path}))


def get_group_big_with_projection(b: Bench) -> Call:
    """A ~22,000-member group read with a long attributes list naming members.value."""
    if b.big_group is None:
        big = post_group_big_member_list(b)
        created = b.client.post("/scim/v2/Groups", content=big.raw)
        assert created.status_code == 201, created.text[:300]
        b.big_group = str(created.json()["id"])
    attributes = ",".join(["members.value", "displayName"] * 499)  # MAX_ATTRIBUTE_NAMES: 1000
    return Call("GET", f"/Groups/{b.big_group}", params={"attributes": attributes})


CASES: list[Callable[[Bench], Call]] = [
    patch_emails_as_strings,
    patch_emails_as_objects,
    patch_emails_one_value_repeated,
    patch_emails_at_the_limit,
    patch_every_multi_valued_at_the_limit,
    patch_many_operations,
    patch_operations_at_the_limit_filtered,
    patch_operations_at_the_limit_adding,
    patch_no_path_many_keys,
    patch_long_filter_path,
    patch_deeply_nested_value,
    post_user_many_emails,
    post_user_at_the_limits,
    put_user_many_addresses,
    search_long_or_filter,
    search_deep_parentheses,
    search_parentheses_at_the_limit,
    search_or_filter_at_the_limits,
    search_filter_at_the_limits,
    get_filter_in_url,
    search_many_attributes,
    search_many_distinct_attributes,
    search_many_excluded_attributes,
    search_attributes_at_the_limit,
    list_users_full_page,
    search_long_sort_by,
    bulk_thousand_user_creates,
    bulk_user_creates_at_the_limit,
    bulk_changes_at_the_limit,
    bulk_group_referencing_its_users,
    bulk_deeply_nested_data,
    bulk_circular_references,
    bulk_wide_references,
    bulk_patches_with_long_filters,
    bulk_patches_at_the_limits,
    post_group_big_member_list,
    put_group_big_member_list,
    patch_group_add_big_member_list,
    patch_group_many_remove_operations,
    patch_group_thousand_remove_operations,
    patch_group_steps_at_the_limit,
    patch_group_long_member_filter,
    patch_group_member_filter_at_the_limit,
    get_group_big_with_projection,
]


def run(bench: Bench, name: str, case: Callable[[Bench], Call], repeat: int, slow: float) -> None:
    rows: list[tuple[int, float, float, int]] = []
    for _ in range(repeat):
        call = case(bench)
        raw = call.raw
        status, server, size = bench.through_asgi(call, raw)
        if server > slow:
            rows.append((status, server, float("nan"), size))
            break
        call = case(bench)
        client_status, client, _ = bench.through_client(call, call.raw)
        assert client_status == status, (name, client_status, status)
        rows.append((status, server, client, size))
    status = rows[0][0]
    server_ms = statistics.median(r[1] for r in rows) * 1000
    client_ms = statistics.median(r[2] for r in rows) * 1000
    size = rows[0][3]
    print(
        f"{name:42} {call.method:6} {len(raw) / 1024:8.1f} {status:6} {server_ms:10.1f}"
        f" {client_ms:10.1f} {size / 1024:9.1f}  (n={len(rows)})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="run only the cases whose name contains these")
    parser.add_argument("--members", type=int, default=22_500, help="users stored for member lists")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--slow", type=float, default=10.0, help="seconds: do not repeat beyond")
    args = parser.parse_args()
    # The 500s of the old code log their tracebacks; the status column shows them.
    logging.disable(logging.ERROR)
    chosen = [
        case for case in CASES if not args.only or any(part in case.__name__ for part in args.only)
    ]
    with tempfile.TemporaryDirectory(prefix="muster-costly-") as directory:
        bench = Bench(directory, args.members)
        try:
            print(
                f"\n{'request kind':42} {'method':6} {'body KiB':>8} {'status':>6}"
                f" {'server ms':>10} {'client ms':>10} {'resp KiB':>9}"
            )
            for case in chosen:
                run(bench, case.__name__, case, args.repeat, args.slow)
        finally:
            bench.close()


if __name__ == "__main__":
    main()
