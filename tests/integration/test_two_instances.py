"""Two `muster serve` processes on different ports over one database behave as one service.

Nothing that must be shared lives in a process: users, groups, versions, seats, tokens and the
provisioning log are all rows, so a load balancer may send each request to either instance.
Runs on PostgreSQL and on SQLite alike (two processes on one WAL file work; they share the
file's single write lock, so it is for a spare instance, not for scaling writes).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from muster.services import api_tokens
from tests.factories import build_user, patch_op, suffix
from tests.integration.served import MUSTER, MusterServer, Served, fresh_database, in_parallel

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[tuple[Served, MusterServer, MusterServer]]:
    """Both instances started at once on an empty database: each migrates it on start-up,
    so the migration itself must be safe to run twice at the same time."""
    with fresh_database(tmp_path) as url:
        first = MusterServer(url, tmp_path)
        second = MusterServer(url, tmp_path)
        first.start(wait=False)
        second.start(wait=False)
        database = Served(url)
        try:
            first.wait_ready()
            second.wait_ready()
            yield database, first, second
        finally:
            first.stop()
            second.stop()
            database.close()
        for server in (first, second):
            assert "Traceback" not in server.log(), server.log()


def test_requests_interleaved_across_two_instances_see_one_service(
    instances: tuple[Served, MusterServer, MusterServer],
) -> None:
    database, a, b = instances
    tenant, token = database.tenant(seats=40)
    request_ids: dict[str, set[str]] = {"a": set(), "b": set()}

    with a.client(token) as on_a, b.client(token) as on_b:

        def seen(name: str, response: object) -> object:
            request_ids[name].add(response.headers["x-request-id"])  # type: ignore[attr-defined]
            return response

        # Created on A, read, found and changed on B, read back on A.
        body = build_user()
        created = seen("a", on_a.post("/Users", json=body))
        assert created.status_code == 201, created.text
        user = created.json()
        fetched = seen("b", on_b.get(f"/Users/{user['id']}"))
        assert fetched.status_code == 200 and fetched.json()["userName"] == body["userName"]
        found = seen(
            "b", on_b.get("/Users", params={"filter": f'userName eq "{body["userName"]}"'})
        )
        assert found.json()["totalResults"] == 1

        # A userName taken through A is taken through B.
        duplicate = seen("b", on_b.post("/Users", json=build_user(email=body["userName"].upper())))
        assert duplicate.status_code == 409 and duplicate.json()["scimType"] == "uniqueness"

        # An ETag from A is a valid If-Match on B; once B has written, A's old one is stale.
        rename = patch_op({"op": "replace", "path": "name.givenName", "value": "Bea"})
        patched = seen(
            "b",
            on_b.patch(
                f"/Users/{user['id']}", json=rename, headers={"If-Match": user["meta"]["version"]}
            ),
        )
        assert patched.status_code == 200, patched.text
        stale = seen(
            "a",
            on_a.patch(
                f"/Users/{user['id']}", json=rename, headers={"If-Match": user["meta"]["version"]}
            ),
        )
        assert stale.status_code == 412
        assert seen("a", on_a.get(f"/Users/{user['id']}")).json()["name"]["givenName"] == "Bea"

        # Seats are counted once, whichever instance takes them.
        extra = [
            seen("ab"[i % 2], (on_a, on_b)[i % 2].post("/Users", json=build_user()))
            for i in range(6)
        ]
        assert all(r.status_code == 201 for r in extra)
        assert (
            database.scalar("SELECT seats_used FROM tenants WHERE id = :t", t=tenant.tenant_id) == 7
        )

        # Deleted on A: gone on B.
        gone = extra.pop().json()["id"]
        assert seen("a", on_a.delete(f"/Users/{gone}")).status_code == 204
        assert seen("b", on_b.get(f"/Users/{gone}")).status_code == 404

        group = seen(
            "b",
            on_b.post("/Groups", json={"schemas": [GROUP_URN], "displayName": f"Both {suffix()}"}),
        )
        assert group.status_code == 201, group.text
        group_id = group.json()["id"]

    # Membership changed from both instances at once: each thread adds its user, then removes
    # it again if it is odd; the final set is the even threads' users.
    members = [user["id"]] + [r.json()["id"] for r in extra]

    def change(i: int) -> list[int]:
        server = (a, b)[i % 2]
        statuses = []
        with server.client(token) as http:
            add = {"op": "add", "path": "members", "value": [{"value": members[i]}]}
            statuses.append(http.patch(f"/Groups/{group_id}", json=patch_op(add)).status_code)
            if i % 2:
                remove = {"op": "remove", "path": f'members[value eq "{members[i]}"]'}
                statuses.append(
                    http.patch(f"/Groups/{group_id}", json=patch_op(remove)).status_code
                )
        return statuses

    assert all(s == 204 for statuses in in_parallel(len(members), change) for s in statuses)
    expected = {m for i, m in enumerate(members) if i % 2 == 0}
    for server in (a, b):
        with server.client(token) as http:
            listed = http.get(f"/Groups/{group_id}").json()
        assert {m["value"] for m in listed.get("members", [])} == expected

    # A new token issued while both run: the old one stops working on both at once.
    new_token = api_tokens.issue_scim_token(database.database.uow(), tenant.slug).secret
    for server in (a, b):
        with server.client(token) as http:
            refused = http.get("/Users", params={"count": 1})
        assert refused.status_code == 401
        with server.client(new_token) as http:
            assert http.get("/Users", params={"count": 1}).status_code == 200

    # Both instances wrote the provisioning log (in batches: wait for the last one).
    deadline = time.monotonic() + 5
    while True:
        logged = {
            row[0]
            for row in database.rows(
                "SELECT request_id FROM provisioning_log WHERE tenant_id = :t", t=tenant.tenant_id
            )
        }
        if request_ids["a"] | request_ids["b"] <= logged or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert request_ids["a"] <= logged
    assert request_ids["b"] <= logged


def test_instances_migrating_an_empty_database_at_once_all_succeed(tmp_path: Path) -> None:
    """Instances started together each run the migrations; one does them, the others wait."""
    with fresh_database(tmp_path) as url:
        env = {**os.environ, "MUSTER_DATABASE_URL": url}
        upgrades = [
            subprocess.Popen(
                [*MUSTER, "db", "upgrade"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(3)
        ]
        outputs = [u.communicate(timeout=60)[0].decode() for u in upgrades]
        assert [u.returncode for u in upgrades] == [0] * 3, outputs
        database = Served(url)
        try:
            assert database.database.is_current()
        finally:
            database.close()
