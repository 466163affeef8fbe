"""etag, require_match and is_not_modified (RFC 7644 §3.14, RFC 9110 §13.1)."""

from __future__ import annotations

import pytest

from muster.errors import ScimError
from muster.scim.versioning import etag, is_not_modified, require_match

pytestmark = pytest.mark.unit


def test_etag_is_a_weak_tag_of_the_version() -> None:
    assert etag(3) == 'W/"3"'


@pytest.mark.parametrize("header", [None, 'W/"3"', '"3"', "*", 'W/"1", W/"3"', ' W/"3" '])
def test_require_match_lets_a_matching_write_through(header: str | None) -> None:
    require_match(3, header)


@pytest.mark.parametrize("header", ['W/"2"', '"4"', 'W/"1", W/"2"', 'W/"33"', "3"])
def test_require_match_refuses_a_stale_version_with_412(header: str) -> None:
    with pytest.raises(ScimError) as caught:
        require_match(3, header)

    assert caught.value.status == 412
    assert 'W/"3"' in caught.value.detail


@pytest.mark.parametrize("header", ['W/"3"', '"3"', "*", 'W/"2", W/"3"'])
def test_is_not_modified_when_the_client_has_the_current_version(header: str) -> None:
    assert is_not_modified(3, header) is True


@pytest.mark.parametrize("header", [None, 'W/"2"', 'W/"30"'])
def test_is_modified_when_the_client_has_another_version_or_none(header: str | None) -> None:
    assert is_not_modified(3, header) is False
