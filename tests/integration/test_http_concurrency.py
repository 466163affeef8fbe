"""Concurrency guarantees from the outside: parallel clients against a real `muster serve`.

Each request handler runs its database work synchronously on its worker's event loop, so one
worker process never overlaps two transactions. The server here runs four workers on one port:
requests land on different processes and their transactions really race in the database, as
they do behind a load balancer. (Group PATCH races over HTTP are covered by
test_group_concurrency.py; the two-instance test adds them across processes.)
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from tests.factories import build_user, patch_op, suffix
from tests.integration.served import MusterServer, Served, fresh_database, in_parallel

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORKERS = 4


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, MusterServer]]:
    """One migrated database and one 4-worker server for the whole module; tenants per test."""
    tmp = tmp_path_factory.mktemp("http-concurrency")
    with fresh_database(tmp) as url:
        database = Served(url).migrate()
        server = MusterServer(url, tmp, workers=WORKERS).start()
        try:
            yield database, server
        finally:
            server.stop()
            database.close()
        # A 500 would have left a traceback here; the tests assert on statuses too.
        assert "Traceback" not in server.log(), server.log()


def _outcome(response: httpx2.Response) -> tuple[int, str | None, str | None]:
    if response.status_code < 300:
        return response.status_code, None, None
    body: dict[str, Any] = response.json()
    return response.status_code, body.get("scimType"), body.get("detail")


def test_twenty_simultaneous_creates_of_one_user_name_make_one_user(
    served: tuple[Served, MusterServer],
) -> None:
    database, server = served
    tenant, token = database.tenant(seats=50)
    email = f"same.{suffix()}@example.com"
    # Spellings differ in case only: userName is unique ignoring case.
    spellings = [email, email.upper(), email.title()]

    def create(i: int) -> tuple[int, str | None, str | None]:
        with server.client(token) as http:
            body = build_user(email=spellings[i % len(spellings)])
            return _outcome(http.post("/Users", json=body))

    outcomes = in_parallel(20, create)

    statuses = Counter(status for status, _, _ in outcomes)
    assert statuses == {201: 1, 409: 19}, outcomes
    assert {scim_type for status, scim_type, _ in outcomes if status == 409} == {"uniqueness"}
    assert (
        database.scalar("SELECT count(*) FROM users WHERE tenant_id = :t", t=tenant.tenant_id) == 1
    )
    assert database.scalar("SELECT seats_used FROM tenants WHERE id = :t", t=tenant.tenant_id) == 1


def test_simultaneous_creates_never_exceed_the_seat_limit(
    served: tuple[Served, MusterServer],
) -> None:
    database, server = served
    tenant, token = database.tenant(seats=10)

    def create(i: int) -> tuple[int, str | None, str | None]:
        with server.client(token) as http:
            return _outcome(http.post("/Users", json=build_user()))

    outcomes = in_parallel(30, create)

    assert Counter(status for status, _, _ in outcomes) == {201: 10, 403: 20}, outcomes
    refusals = {detail for status, _, detail in outcomes if status == 403}
    assert all(d and d.startswith("licence limit reached: 10 of 10 seats in use") for d in refusals)
    active = database.scalar(
        "SELECT count(*) FROM users WHERE tenant_id = :t AND active", t=tenant.tenant_id
    )
    used = database.scalar("SELECT seats_used FROM tenants WHERE id = :t", t=tenant.tenant_id)
    assert active == used == 10


def test_simultaneous_reactivations_never_exceed_the_seat_limit(
    served: tuple[Served, MusterServer],
) -> None:
    """The other way into a seat: 12 deactivated users reactivated at once with 5 free."""
    database, server = served
    tenant, token = database.tenant(seats=5)
    with server.client(token) as http:
        ids = []
        for _ in range(12):
            created = http.post("/Users", json=build_user(active=False))
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])

    def reactivate(i: int) -> int:
        operation = {"op": "replace", "value": {"active": True}}
        with server.client(token) as http:
            return http.patch(f"/Users/{ids[i]}", json=patch_op(operation)).status_code

    assert Counter(in_parallel(12, reactivate)) == {200: 5, 403: 7}
    assert (
        database.scalar(
            "SELECT count(*) FROM users WHERE tenant_id = :t AND active", t=tenant.tenant_id
        )
        == 5
    )


def _given_user(server: MusterServer, token: str) -> dict[str, Any]:
    with server.client(token) as http:
        created = http.post("/Users", json=build_user())
    assert created.status_code == 201, created.text
    return dict(created.json())


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_if_match_lets_exactly_one_of_simultaneous_writers_win(
    served: tuple[Served, MusterServer], method: str
) -> None:
    database, server = served
    _, token = database.tenant()
    user = _given_user(server, token)
    etag = user["meta"]["version"]
    writers = 12

    def write(i: int) -> tuple[int, str]:
        headers = {"If-Match": etag}
        with server.client(token) as http:
            if method == "PUT":
                body = {**user, "name": {"givenName": f"Writer{i}", "familyName": "Lee"}}
                response = http.put(f"/Users/{user['id']}", json=body, headers=headers)
            else:
                operation = {"op": "replace", "path": "name.givenName", "value": f"Writer{i}"}
                response = http.patch(
                    f"/Users/{user['id']}", json=patch_op(operation), headers=headers
                )
        return response.status_code, response.text

    outcomes = in_parallel(writers, write)

    statuses = Counter(status for status, _ in outcomes)
    assert statuses == {200: 1, 412: writers - 1}, outcomes
    winner = next(body for status, body in outcomes if status == 200)
    with server.client(token) as http:
        stored = http.get(f"/Users/{user['id']}").json()
    # The stored user is the winner's write, and only one version step was taken.
    assert stored["name"]["givenName"] == json.loads(winner)["name"]["givenName"]
    assert stored["meta"]["version"] != etag


def test_if_match_on_a_group_patch_lets_one_writer_win(
    served: tuple[Served, MusterServer],
) -> None:
    database, server = served
    _, token = database.tenant()
    user_ids = [_given_user(server, token)["id"] for _ in range(8)]
    with server.client(token) as http:
        group = http.post(
            "/Groups",
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": f"Race {suffix()}",
            },
        ).json()

    def add(i: int) -> int:
        operation = {"op": "add", "path": "members", "value": [{"value": user_ids[i]}]}
        with server.client(token) as http:
            return http.patch(
                f"/Groups/{group['id']}",
                json=patch_op(operation),
                headers={"If-Match": group["meta"]["version"]},
            ).status_code

    statuses = in_parallel(len(user_ids), add)

    assert Counter(statuses) == {204: 1, 412: len(user_ids) - 1}
    winner = user_ids[statuses.index(204)]
    assert {
        r[0]
        for r in database.rows("SELECT user_id FROM memberships WHERE group_id = :g", g=group["id"])
    } == {winner}


def test_simultaneous_deletes_of_one_user_free_one_seat(
    served: tuple[Served, MusterServer],
) -> None:
    database, server = served
    tenant, token = database.tenant(seats=3)
    user = _given_user(server, token)
    _given_user(server, token)

    def delete(i: int) -> int:
        with server.client(token) as http:
            return http.delete(f"/Users/{user['id']}").status_code

    assert Counter(in_parallel(10, delete)) == {204: 1, 404: 9}
    assert database.scalar("SELECT seats_used FROM tenants WHERE id = :t", t=tenant.tenant_id) == 1


def test_no_request_in_these_races_was_answered_500(
    served: tuple[Served, MusterServer],
) -> None:
    """Every race above is in the provisioning log; none of them ended in a 500."""
    database, _ = served
    time.sleep(0.5)  # the last log batch (log_flush_seconds)
    assert database.scalar("SELECT count(*) FROM provisioning_log WHERE status >= 500") == 0
    assert database.scalar("SELECT count(*) FROM provisioning_log") > 100
