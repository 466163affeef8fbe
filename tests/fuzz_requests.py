"""random_request(rng, known): a hostile or sloppy request to any SCIM endpoint or the events API.

Shared by the property-based fuzz suite (tests/integration/test_fuzz.py, where Hypothesis drives
`rng`) and the long run in benchmarks/fuzz_load.py. Each request mixes what real clients send
(Okta's and Entra's shapes, valid paths and filters) with what breaks parsers: wrong types,
huge and negative numbers, deep nesting, odd Unicode, truncated JSON, wrong media types, other
tenants' ids, forged cursors. Every answer must be below 500, with an error body that parses.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_URN = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SEARCH_URN = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

ATTRIBUTES = [
    "userName",
    "name",
    "name.givenName",
    "name.familyName",
    "displayName",
    "emails",
    "emails.value",
    "emails.type",
    "emails.primary",
    "active",
    "externalId",
    "title",
    "locale",
    "phoneNumbers",
    "addresses",
    "addresses.postalCode",
    "groups",
    "members",
    "members.value",
    "meta",
    "meta.created",
    "meta.lastModified",
    "id",
    "password",
    "nickName",
    "usérName",
    f"{ENTERPRISE_URN}:department",
    f"{ENTERPRISE_URN}:manager",
    f"{ENTERPRISE_URN}:manager.value",
    "urn:unknown:schema:attr",
    "",
    " ",
    "a" * 300,
    "$ref",
    'emails[type eq "work"]',
]
OPERATORS = ["eq", "ne", "co", "sw", "ew", "gt", "lt", "ge", "le", "pr", "EQ", "xx", ""]
STRANGE = [
    "",
    " ",
    "\x00",
    "\u200b",
    "\u202e",
    "ｂｏｂ@x．com",
    "rene\u0301@x.com",
    "\ud7ff",
    "😀" * 3,
    "a" * 5000,
    "\\",
    '"',
    "'",
    "%",
    "%00",
    "${jndi:x}",
    "<x/>",
    "null",
    "true",
    "1e999",
    "-0",
    "9" * 40,
    "bulkId:x",
    "bulkId:",
    "bob@x.com",
    "e@x.com",
    "Ann",
    "urn:x",
]


@dataclass
class Known:
    """Ids that exist, so some requests hit real resources (and others' ids miss)."""

    user_ids: list[str] = field(default_factory=list)
    group_ids: list[str] = field(default_factory=list)
    cursors: list[str] = field(default_factory=list)
    token: str = ""
    events_key: str = ""
    other_tenant_ids: list[str] = field(default_factory=list)


@dataclass
class FuzzRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None

    def describe(self) -> str:
        body = (self.body or b"")[:300]
        return f"{self.method} {self.path[:300]} {self.headers} {body!r}"


def _text(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.35:
        return rng.choice(STRANGE)
    if pick < 0.7:
        return "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 20)))
    return "".join(chr(rng.randint(0x20, 0x2FFF)) for _ in range(rng.randint(1, 12)))


def _number(rng: random.Random) -> Any:
    return rng.choice(
        [0, 1, -1, 2, 100, 1000, 10**6, 2**31, 2**63, 10**20, -(10**20), 1.5, float("1e300")]
    )


def _json(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.random()
    if depth > 3 or pick < 0.25:
        return rng.choice([None, True, False, _number(rng), _text(rng)])
    if pick < 0.5:
        return [_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if pick < 0.6:
        return {"value": _json(rng, depth + 1), "type": rng.choice(["work", "home", _text(rng)])}
    keys = [
        rng.choice([*ATTRIBUTES, "value", "display", "primary", "op", "path"]) for _ in range(3)
    ]
    return {key: _json(rng, depth + 1) for key in keys}


def _deep(rng: random.Random) -> Any:
    value: Any = "x"
    for _ in range(rng.choice([10, 70, 200, 600])):
        value = [value] if rng.random() < 0.5 else {"a": value}
    return value


def _email(rng: random.Random) -> str:
    local = rng.choice(["bob", "ann", "rené", "ｂｏｂ", "bob\u200b", "b\u202eob", "x" * 70])
    domain = rng.choice(["x.com", "x．com", "pаypal.com", "example.org", "", "a" * 260 + ".com"])
    return f"{local}{rng.randint(0, 50)}@{domain}"


def user_body(rng: random.Random, known: Known) -> Any:
    """A User body: mostly plausible, with one or two fields spoiled."""
    email = _email(rng)
    body: dict[str, Any] = {
        "schemas": [USER_URN],
        "userName": email,
        "name": {"givenName": rng.choice(["Ann", "Zoë", "李", "A#n"]), "familyName": "Lee"},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "active": True,
    }
    for _ in range(rng.randint(0, 3)):
        key = rng.choice([*ATTRIBUTES, "schemas", "emails", "phoneNumbers", ENTERPRISE_URN])
        body[key] = _json(rng) if rng.random() < 0.8 else _deep(rng)
    if rng.random() < 0.1:
        body["emails"] = [{}]
    if rng.random() < 0.05:
        body["displayName"] = "x" * rng.choice([300, 70_000])
    return body if rng.random() < 0.95 else _json(rng)


def group_body(rng: random.Random, known: Known) -> Any:
    members = [
        {"value": rng.choice(known.user_ids or ["nobody"])} for _ in range(rng.randint(0, 3))
    ]
    if rng.random() < 0.3:
        members.append(_json(rng))
    body: dict[str, Any] = {"schemas": [GROUP_URN], "displayName": _text(rng), "members": members}
    if rng.random() < 0.2:
        body[rng.choice(["members", "displayName", "schemas", "id"])] = _json(rng)
    return body


def patch_body(rng: random.Random, known: Known) -> Any:
    operations = []
    for _ in range(rng.randint(0, 4)):
        op: dict[str, Any] = {"op": rng.choice(["add", "replace", "remove", "Replace", "x", 1])}
        if rng.random() < 0.8:
            attribute = rng.choice(ATTRIBUTES)
            if rng.random() < 0.3:
                attribute += (
                    f'[{rng.choice(["type", "value"])} {rng.choice(OPERATORS)} "{_text(rng)}"]'
                )
            op["path"] = attribute if rng.random() < 0.95 else _json(rng)
        if rng.random() < 0.8:
            op["value"] = _json(rng) if rng.random() < 0.9 else _deep(rng)
        operations.append(op)
    body: dict[str, Any] = {"schemas": [PATCH_URN], "Operations": operations}
    if rng.random() < 0.1:
        body["Operations"] = _json(rng)
    return body


def bulk_body(rng: random.Random, known: Known) -> Any:
    operations = []
    for i in range(rng.randint(0, 5)):
        method = rng.choice(["POST", "PUT", "PATCH", "DELETE", "GET", "post"])
        target = rng.choice(
            ["/Users", "/Groups", f"/Users/{_an_id(rng, known)}", "/Users/bulkId:u0", "x"]
        )
        data = rng.choice([user_body, group_body, patch_body])(rng, known)
        operation: dict[str, Any] = {
            "method": method,
            "path": target,
            "bulkId": f"u{i}",
            "data": data,
        }
        if rng.random() < 0.1:
            operation["data"] = _deep(rng)
        operations.append(operation)
    body: dict[str, Any] = {"schemas": [BULK_URN], "Operations": operations}
    if rng.random() < 0.2:
        body["failOnErrors"] = _json(rng)
    return body


def filter_text(rng: random.Random) -> str:
    terms = []
    for _ in range(rng.choice([1, 1, 2, 3, 40])):
        attribute = rng.choice(ATTRIBUTES)
        operator = rng.choice(OPERATORS)
        value = rng.choice([f'"{_text(rng)}"', "true", "false", "null", "42", "1e999", _text(rng)])
        terms.append(f"{attribute} {operator} {value}" if operator != "pr" else f"{attribute} pr")
    joined = f" {rng.choice(['and', 'or', 'AND', 'xor'])} ".join(terms)
    if rng.random() < 0.2:
        joined = "(" * rng.randint(1, 300) + joined
    return joined if rng.random() < 0.9 else _text(rng)


def search_params(rng: random.Random, known: Known) -> dict[str, Any]:
    params: dict[str, Any] = {}
    choices = {
        "filter": lambda: filter_text(rng),
        "startIndex": lambda: rng.choice([_number(rng), _text(rng)]),
        "count": lambda: rng.choice([_number(rng), _text(rng)]),
        "sortBy": lambda: rng.choice([*ATTRIBUTES, "active", "meta.created"]),
        "sortOrder": lambda: rng.choice(["ascending", "descending", "x", ""]),
        "attributes": lambda: ",".join(rng.choice(ATTRIBUTES) for _ in range(rng.randint(1, 4))),
        "excludedAttributes": lambda: rng.choice(["members", "groups", "emails", _text(rng)]),
        "cursor": lambda: rng.choice([*known.cursors, "", "AAAA", _text(rng), "x" * 3000]),
    }
    for name in rng.sample(list(choices), rng.randint(0, 4)):
        params[name] = choices[name]()
    return params


def _an_id(rng: random.Random, known: Known) -> str:
    pool = known.user_ids + known.group_ids + known.other_tenant_ids
    if pool and rng.random() < 0.7:
        return rng.choice(pool)
    return quote(_text(rng), safe="") or "x"


def _query(params: dict[str, Any]) -> str:
    if not params:
        return ""
    return "?" + "&".join(f"{quote(str(k))}={quote(str(v), safe='')}" for k, v in params.items())


def _encode(rng: random.Random, body: Any) -> bytes:
    raw = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS) if _dumpable(body) else b"{}"
    pick = rng.random()
    if pick < 0.03:
        return raw[: rng.randint(0, len(raw))]  # truncated
    if pick < 0.05:
        return b"\xff\xfe" + raw  # not UTF-8
    return raw


def _dumpable(body: Any) -> bool:
    try:
        orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return True


def _content_type(rng: random.Random) -> str | None:
    return rng.choice(
        [
            "application/scim+json",
            "application/scim+json; charset=utf-8",
            "application/json",
            "application/json;charset=UTF-8",
            None,
            "text/plain",
            "application/xml",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/scim+json; charset=latin-1",
            "*/*",
            "",
        ]
    )


def random_request(rng: random.Random, known: Known) -> FuzzRequest:
    """One request to /scim/v2 or the events API, hostile or sloppy in some way."""
    headers = {"Authorization": f"Bearer {known.token}"}
    roll = rng.random()
    if roll < 0.05:
        headers["Authorization"] = rng.choice(
            ["", "Bearer", "Basic x", f"Bearer {_text(rng)}", "Bearer mst_" + "0" * 32 + "_x"]
        )
    if roll > 0.93:
        return _events_request(rng, known)
    body: Any = None
    kind = rng.random()
    if kind < 0.25:
        method, path = (
            "GET",
            rng.choice(["/Users", "/Groups", "/", ""]) + _query(search_params(rng, known)),
        )
    elif kind < 0.35:
        method, path = (
            "GET",
            f"/{rng.choice(['Users', 'Groups'])}/{_an_id(rng, known)}"
            + _query(search_params(rng, known)),
        )
    elif kind < 0.45:
        method, path = "POST", "/Users"
        body = user_body(rng, known)
    elif kind < 0.5:
        method, path = "POST", "/Groups"
        body = group_body(rng, known)
    elif kind < 0.58:
        method, path = "PUT", f"/{rng.choice(['Users', 'Groups'])}/{_an_id(rng, known)}"
        body = rng.choice([user_body, group_body])(rng, known)
    elif kind < 0.72:
        method, path = "PATCH", f"/{rng.choice(['Users', 'Groups'])}/{_an_id(rng, known)}"
        body = patch_body(rng, known)
    elif kind < 0.76:
        method, path = "DELETE", f"/{rng.choice(['Users', 'Groups'])}/{_an_id(rng, known)}"
    elif kind < 0.84:
        method, path = "POST", rng.choice(["/.search", "/Users/.search", "/Groups/.search"])
        params = search_params(rng, known)
        body = {"schemas": [SEARCH_URN], **params} if rng.random() < 0.8 else _json(rng)
    elif kind < 0.9:
        method, path = "POST", "/Bulk"
        body = bulk_body(rng, known)
    else:
        method = rng.choice(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
        path = rng.choice(
            [
                "/ServiceProviderConfig",
                "/ResourceTypes",
                "/ResourceTypes/User",
                "/Schemas",
                f"/Schemas/{USER_URN}",
                "/Me",
                "/Nope",
                "/Users/x/y",
                "/Schemas/" + "a/" * 30,
            ]
        ) + _query(search_params(rng, known))
        if method in ("POST", "PUT", "PATCH"):
            body = _json(rng)
    raw = None
    if body is not None:
        raw = _encode(rng, body)
        content_type = _content_type(rng) if rng.random() < 0.3 else "application/scim+json"
        if content_type is not None:
            headers["Content-Type"] = content_type
    if rng.random() < 0.05:
        headers["If-Match"] = rng.choice(['W/"1"', "*", _text(rng), 'W/"x"'])
    return FuzzRequest(method, "/scim/v2" + path, _sendable(headers), raw)


def _sendable(headers: dict[str, str]) -> dict[str, str]:
    """Header values an HTTP client can put on the wire at all (no line breaks, no NUL)."""
    return {
        name: value.replace("\r", "").replace("\n", "").replace("\x00", "").strip()
        for name, value in headers.items()
    }


def _events_request(rng: random.Random, known: Known) -> FuzzRequest:
    params: dict[str, Any] = {}
    for name in rng.sample(["after", "limit", "wait"], rng.randint(0, 3)):
        if name == "wait":
            params[name] = rng.choice([0, "0", "-1", "x", 31, 10**20])  # never a real long poll
        else:
            params[name] = rng.choice([_number(rng), _text(rng), "0", "5"])
    if "wait" in params and params["wait"] not in (0, "0"):
        params["wait"] = rng.choice(["-1", "x", 31, 10**20])
    key = rng.choice([known.events_key, known.token, _text(rng), ""])
    headers = _sendable({"Authorization": f"Bearer {key}"})
    return FuzzRequest("GET", "/api/v1/events" + _query(params), headers, None)
