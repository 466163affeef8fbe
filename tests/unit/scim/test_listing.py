"""parse_list_query and list_response: paging numbers and filters (RFC 7644 §3.4.2)."""

from __future__ import annotations

import pytest

from muster.errors import ScimError, ScimType
from muster.scim.cursors import CursorKeys
from muster.scim.listing import (
    MAX_FILTER_LENGTH,
    MAX_FILTER_TERMS,
    MAX_START_INDEX,
    count_terms,
    list_response,
    parse_filter,
    parse_list_query,
)
from muster.scim.schemas import LIST_RESPONSE_URN

pytestmark = pytest.mark.unit

DEFAULT, MAXIMUM = 100, 1000


def _query(**params: str):  # type: ignore[no-untyped-def]
    return parse_list_query(params, default_count=DEFAULT, max_count=MAXIMUM)


def test_list_query_defaults_to_the_first_page_of_default_size() -> None:
    query = _query()

    assert (query.filter, query.start_index, query.count, query.offset) == (None, 1, DEFAULT, 0)


def test_list_query_reads_start_index_and_count() -> None:
    query = _query(startIndex="101", count="100")

    assert (query.start_index, query.count, query.offset) == (101, 100, 100)


@pytest.mark.parametrize("start", ["0", "-5"])
def test_list_query_clamps_a_start_index_below_one_to_one(start: str) -> None:
    assert _query(startIndex=start).start_index == 1


def test_list_query_clamps_a_negative_count_to_zero() -> None:
    assert _query(count="-1").count == 0


def test_list_query_keeps_count_zero() -> None:
    # RFC 7644 §3.4.2.4: count=0 asks only for totalResults.
    assert _query(count="0").count == 0


def test_list_query_clamps_count_to_the_maximum_page_size() -> None:
    assert _query(count="5000").count == MAXIMUM


def test_list_query_treats_empty_numbers_as_absent() -> None:
    query = _query(startIndex="", count="")

    assert (query.start_index, query.count) == (1, DEFAULT)


@pytest.mark.parametrize("name", ["startIndex", "count"])
@pytest.mark.parametrize("raw", ["abc", "1.5", "ten"])
def test_list_query_rejects_non_integer_numbers(name: str, raw: str) -> None:
    with pytest.raises(ScimError) as caught:
        _query(**{name: raw})

    assert caught.value.status == 400
    assert caught.value.scim_type == ScimType.INVALID_VALUE
    assert name in caught.value.detail


def test_list_query_parses_the_filter() -> None:
    query = _query(filter='userName eq "ann@example.com"')

    assert query.filter is not None
    assert query.filter == parse_filter('userName eq "ann@example.com"')


@pytest.mark.parametrize(
    "text",
    ["userName eq", 'userName equals "x"', 'userName eq "x" and', '(userName eq "x"', '"x"'],
)
def test_list_query_rejects_a_bad_filter_as_invalid_filter(text: str) -> None:
    with pytest.raises(ScimError) as caught:
        _query(filter=text)

    assert caught.value.status == 400
    assert caught.value.scim_type == ScimType.INVALID_FILTER


def test_list_response_counts_what_it_returns() -> None:
    body = list_response(250, 101, [{"id": "a"}, {"id": "b"}])

    assert body == {
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": 250,
        "startIndex": 101,
        "itemsPerPage": 2,
        "Resources": [{"id": "a"}, {"id": "b"}],
    }


def test_list_response_of_nothing_is_a_valid_empty_page() -> None:
    body = list_response(0, 1, [])

    assert (body["totalResults"], body["itemsPerPage"], body["Resources"]) == (0, 0, [])


@pytest.mark.parametrize(
    "text",
    [
        'userName eq "a@x.com"',
        'userName Eq "a\\"b@x.com"',
        'emails.value eq "X@Y"',
        '  externalId eq "00u1"  ',
        'name.givenName eq "Ann"',
        'userName eq "caf\\u00e9"',
        'displayName eq "A \\\\ B"',
        'userName eq ""',
    ],
)
def test_simple_equality_filters_read_the_same_as_the_full_parser(text: str) -> None:
    # The fast path for `attr eq "value"` must build exactly scim2-models' tree.
    from scim2_models import ScimFilter

    assert parse_filter(text) == ScimFilter(text).ast


@pytest.mark.parametrize("text", ['not eq "x"', 'userName eq "a" or id eq "b"', 'userName eq "'])
def test_filters_beyond_simple_equality_go_to_the_full_parser(text: str) -> None:
    from scim2_models import ScimFilter

    try:
        expected = ScimFilter(text).ast
    except Exception:
        with pytest.raises(ScimError):
            parse_filter(text)
    else:
        assert parse_filter(text) == expected


def test_parse_filter_refuses_a_filter_longer_than_the_limit() -> None:
    text = 'userName eq "' + "a" * MAX_FILTER_LENGTH + '"'

    with pytest.raises(ScimError) as caught:
        parse_filter(text)

    assert caught.value.status == 400
    assert caught.value.scim_type == ScimType.TOO_MANY
    assert str(MAX_FILTER_LENGTH) in caught.value.detail


def test_parse_filter_refuses_deep_parentheses_by_length_before_parsing() -> None:
    depth = MAX_FILTER_LENGTH  # ~9 µs a level to parse: 1 MiB of them took 9 s
    with pytest.raises(ScimError) as caught:
        parse_filter("(" * depth + "title pr" + ")" * depth)

    assert caught.value.scim_type == ScimType.TOO_MANY


def test_parse_filter_refuses_more_terms_than_the_limit() -> None:
    text = " or ".join(f'title eq "t{i}"' for i in range(MAX_FILTER_TERMS + 1))

    with pytest.raises(ScimError) as caught:
        parse_filter(text)

    assert caught.value.scim_type == ScimType.TOO_MANY
    assert f"{MAX_FILTER_TERMS + 1} comparisons" in caught.value.detail


def test_parse_filter_accepts_terms_up_to_the_limit() -> None:
    text = " or ".join(f'title eq "t{i}"' for i in range(MAX_FILTER_TERMS))

    assert count_terms(parse_filter(text)) == MAX_FILTER_TERMS


def test_terms_inside_value_filters_and_negations_count() -> None:
    node = parse_filter('emails[type eq "work" and value pr] or not (title pr) or active eq true')

    assert count_terms(node) == 4


@pytest.mark.parametrize(
    "raw", ["99999999999999999999", "9223372036854775808", str(2**31), "1" * 5000]
)
def test_list_query_refuses_a_start_index_past_the_largest_as_invalid_value(raw: str) -> None:
    with pytest.raises(ScimError) as caught:
        _query(startIndex=raw, count="0")

    assert caught.value.scim_type == ScimType.INVALID_VALUE
    assert "startIndex" in caught.value.detail
    assert str(MAX_START_INDEX) in caught.value.detail
    assert len(caught.value.detail) < 200  # the raw value is shortened, not echoed whole


def test_list_query_reads_the_largest_start_index() -> None:
    assert _query(startIndex=str(MAX_START_INDEX)).start_index == MAX_START_INDEX


@pytest.mark.parametrize("raw", ["-99999999999999999999", "-" + "9" * 5000])
def test_list_query_reads_any_start_index_below_one_as_one(raw: str) -> None:
    assert _query(startIndex=raw).start_index == 1


@pytest.mark.parametrize(
    ("raw", "count"),
    [("99999999999999999999", MAXIMUM), ("9" * 5000, MAXIMUM), ("-99999999999999999999", 0),
     (" 7 ", 7), ("+7", 7), ("0007", 7)],
)  # fmt: skip
def test_list_query_clamps_any_count_into_the_page_size(raw: str, count: int) -> None:
    assert _query(count=raw).count == count


@pytest.mark.parametrize("raw", ["１２", "١٢", "1e3", "0x10", "1_000"])
def test_list_query_reads_only_ascii_decimal_numbers(raw: str) -> None:
    with pytest.raises(ScimError) as caught:
        _query(count=raw)

    assert caught.value.scim_type == ScimType.INVALID_VALUE


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('usérName eq "x"', "usérName"),  # the fast path for Okta's existence checks
        ('usérName sw "x"', "usérName"),
        ('userName.é eq "x"', "userName.é"),
        ('émails[type eq "work"]', "émails"),
        ('userName eq "x" or displäyName eq "y"', "displäyName"),
    ],
)
def test_a_non_ascii_attribute_name_is_invalid_filter_naming_it(text: str, named: str) -> None:
    with pytest.raises(ScimError) as caught:
        parse_filter(text)

    assert caught.value.scim_type == ScimType.INVALID_FILTER
    assert repr(named) in caught.value.detail


def test_non_ascii_values_are_still_read() -> None:
    node = parse_filter('displayName eq "Ødegård" and title sw "é"')

    assert count_terms(node) == 2


@pytest.mark.parametrize(
    "text",
    [
        'userName eq "\\ud800"',  # half a surrogate pair, on the fast path and the full one
        'userName sw "a\\udfff"',
        'emails[value eq "\\ud83d"]',
        'userName eq "\\u0000"',
        'userName eq "a\x00"',
        "userName\x00 pr",
    ],
)
def test_a_value_no_database_can_compare_is_invalid_filter(text: str) -> None:
    with pytest.raises(ScimError) as caught:
        parse_filter(text)

    assert caught.value.scim_type == ScimType.INVALID_FILTER


def test_a_whole_surrogate_pair_is_one_character() -> None:
    node = parse_filter('displayName eq "\\ud83d\\ude00"')

    assert node == parse_filter('displayName eq "😀"')


def test_a_list_query_keeps_the_filter_text_and_cursor_binding() -> None:
    keys = CursorKeys((b"k" * 32,))

    query = parse_list_query(
        {"filter": ' userName sw "a" ', "cursor": ""},
        default_count=DEFAULT,
        max_count=MAXIMUM,
        cursor_keys=keys,
        tenant_id="t1",
    )

    assert (query.filter_text, query.cursor_keys, query.tenant_id) == (
        'userName sw "a"',
        keys,
        "t1",
    )
