"""Keyset cursor tokens (RFC 9865): round trips, strict decoding, the cursors of a page."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from muster.errors import ScimError
from muster.scim.cursors import Cursor, decode_cursor, encode_cursor, page_cursors, read_cursor
from muster.scim.listing import list_response, parse_list_query

ID = "01890a5d-ac96-774b-bcce-b302099a8057"


@pytest.mark.parametrize(
    "key", ["ann@example.com", "", True, False, 42, datetime(2025, 1, 2, 3, 4, 5, 6789), None]
)
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("backward", [False, True])
def test_a_cursor_round_trips_every_kind_of_sort_key(
    key: Any, descending: bool, backward: bool
) -> None:
    cursor = Cursor("User", "username", descending, key, ID, backward)

    token = encode_cursor(cursor)

    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)  # RFC 3986 unreserved characters only
    assert decode_cursor(token, scope="User", sort_by="userName", descending=descending) == cursor


def _token(**changes: Any) -> str:
    fields: dict[str, Any] = {
        "scope": "User",
        "sort_by": "",
        "descending": False,
        "key": ID,
        "last_id": ID,
    }
    fields.update(changes)
    return encode_cursor(Cursor(**fields))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-3],  # cut short
        lambda t: t[:10] + ("A" if t[10] != "A" else "B") + t[11:],  # one character changed
        lambda t: "not a cursor at all!",
        lambda t: "",  # handled by read_cursor as the first page; decode refuses it
        lambda t: t + "x" * 3000,
    ],
)
def test_an_altered_cursor_is_invalid_cursor(mangle: Any) -> None:
    with pytest.raises(ScimError) as caught:
        decode_cursor(mangle(_token()), scope="User", sort_by=None, descending=False)

    assert caught.value.status == 400
    assert caught.value.scim_type == "invalidCursor"


def test_a_cursor_of_another_listing_or_sort_is_invalid_cursor() -> None:
    users_token = _token()
    sorted_token = _token(sort_by="username")

    for token, scope, sort_by, descending in (
        (users_token, "Group", None, False),
        (sorted_token, "User", "displayName", False),
        (sorted_token, "User", "userName", True),
        (users_token, "User", "userName", False),
    ):
        with pytest.raises(ScimError) as caught:
            decode_cursor(token, scope=scope, sort_by=sort_by, descending=descending)
        assert caught.value.scim_type == "invalidCursor"


def test_an_empty_cursor_asks_for_the_first_page() -> None:
    assert read_cursor("", scope="User", sort_by=None, descending=False) is None
    assert read_cursor(None, scope="User", sort_by=None, descending=False) is None


def test_the_first_page_has_a_next_cursor_only_when_more_rows_follow() -> None:
    common: dict[str, Any] = {"scope": "User", "sort_by": None, "descending": False}

    more, previous = page_cursors(None, **common, first=(ID, ID), last=("b", "b"), has_more=True)
    last_page, none = page_cursors(None, **common, first=(ID, ID), last=("b", "b"), has_more=False)

    assert more is not None and previous is None
    assert last_page is None and none is None
    decoded = decode_cursor(more, scope="User", sort_by=None, descending=False)
    assert (decoded.key, decoded.last_id, decoded.backward) == ("b", "b", False)


def test_a_later_page_points_back_to_its_first_row() -> None:
    request = Cursor("User", "", False, "a", "a")

    _, previous = page_cursors(
        request, scope="User", sort_by=None, descending=False, first=("c", "c"),
        last=("d", "d"), has_more=False,
    )  # fmt: skip

    assert previous is not None
    decoded = decode_cursor(previous, scope="User", sort_by=None, descending=False)
    assert (decoded.key, decoded.backward) == ("c", True)


def test_cursor_and_start_index_together_are_refused() -> None:
    with pytest.raises(ScimError) as caught:
        parse_list_query({"cursor": "", "startIndex": "1"}, default_count=10, max_count=100)

    assert caught.value.scim_type == "invalidValue"
    assert "cursor" in caught.value.detail


def test_a_cursor_query_keeps_the_token_and_clamps_count() -> None:
    query = parse_list_query({"cursor": "", "count": "5000"}, default_count=10, max_count=100)

    assert query.cursor == ""
    assert query.count == 100


def test_a_cursor_page_has_cursors_and_no_start_index() -> None:
    body = list_response(7, None, [{"id": "a"}], next_cursor="n", previous_cursor="p")

    assert "startIndex" not in body
    assert (body["totalResults"], body["itemsPerPage"]) == (7, 1)
    assert (body["nextCursor"], body["previousCursor"]) == ("n", "p")


def test_a_cursor_carries_the_total_of_the_walk() -> None:
    cursor = Cursor("Group", "", False, ID, ID, total=1_000_000)

    decoded = decode_cursor(encode_cursor(cursor), scope="Group", sort_by=None, descending=False)

    assert decoded.total == 1_000_000


@pytest.mark.parametrize(
    "fields",
    [
        [1, "User", "", 0, "s", ID, ID, -1],  # a negative total
        [1, "User", "", 0, "s", ID, ID, True],  # a total that is not a number
        [1, "User", "", 9, "s", ID, ID, None],  # unknown flags
        [1, "User", "", 0, "t", "not a date", ID, None],
        [1, "User", "", 0, "s", ID, "id with spaces", None],
        [2, "User", "", 0, "s", ID, ID, None],  # another version
        {"not": "a list"},
    ],
)
def test_a_well_formed_token_with_impossible_fields_is_invalid_cursor(fields: Any) -> None:
    import orjson

    from muster.scim import cursors

    payload = orjson.dumps(fields)
    token = cursors._b64(payload + cursors._check(payload))

    with pytest.raises(ScimError) as caught:
        decode_cursor(token, scope="User", sort_by=None, descending=False)

    assert caught.value.scim_type == "invalidCursor"
