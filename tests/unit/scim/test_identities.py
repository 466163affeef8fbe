"""identities: one key per person however the address is spelled; hidden and look-alike text."""

from __future__ import annotations

import unicodedata

import pytest

from muster.errors import ScimError, ScimType
from muster.scim.identities import check_identity_text, identity_key, mixed_scripts

pytestmark = pytest.mark.unit

NFC = unicodedata.normalize("NFC", "rené@x.com")
NFD = unicodedata.normalize("NFD", "rené@x.com")


def _refused(attribute: str, value: str) -> str:
    with pytest.raises(ScimError) as caught:
        check_identity_text(attribute, value)
    assert (caught.value.status, caught.value.scim_type) == (400, ScimType.INVALID_VALUE)
    return caught.value.detail


@pytest.mark.parametrize(
    "spelling",
    [
        "bob@x.com",
        "BOB@X.COM",
        "\uff42\uff4f\uff42@x.com",  # fullwidth letters
        "bob@x\uff0ecom",  # fullwidth full stop
        "\uff22\uff2f\uff22@\uff38\uff0e\uff43\uff4f\uff4d",  # fullwidth capitals throughout
        "bob\u200b@x.com",  # zero-width space (refused as input; the key ignores it)
        "\u2066bob@x.com\u2069",  # bidi isolates
    ],
)
def test_spellings_of_one_address_share_its_key(spelling: str) -> None:
    assert identity_key(spelling) == "bob@x.com"


def test_nfc_and_nfd_share_a_key() -> None:
    assert NFC != NFD
    assert identity_key(NFC) == identity_key(NFD) == NFC


def test_the_key_folds_case_beyond_lower_casing() -> None:
    assert identity_key("STRASSE@x.com") == identity_key("straße@x.com")
    assert identity_key("ΣΊΣΥΦΟΣ@x.gr") == identity_key("σίσυφος@x.gr")


def test_different_people_keep_different_keys() -> None:
    assert identity_key("bob@x.com") != identity_key("rob@x.com")
    assert identity_key("bob@x.com") != identity_key("b.o.b@x.com")


@pytest.mark.parametrize(
    "value",
    ["bob@x.com", "Ann.Lee@Example.COM", NFD, "\uff42\uff4f\uff42@x.com", "ǅ\u0345x", "㍿@x.com"],
)
def test_a_key_is_its_own_key(value: str) -> None:
    key = identity_key(value)

    assert identity_key(key) == key
    assert identity_key(value.lower()) == key  # what migration 0009 relies on


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("bob\u200b@x.com", "U+200B ZERO WIDTH SPACE"),
        ("\u202emoc.x@bob", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("bob@x.com\u200f", "U+200F RIGHT-TO-LEFT MARK"),
        ("\ufeffbob@x.com", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
        ("bo\u2060b@x.com", "U+2060 WORD JOINER"),
        ("bo\u200db@x.com", "U+200D ZERO WIDTH JOINER"),
        ("bob\u2067@x.com", "U+2067 RIGHT-TO-LEFT ISOLATE"),
        ("bo\u00adb@x.com", "U+00AD SOFT HYPHEN"),
        ("bob\x07@x.com", "U+0007 (a control character)"),
        ("bo\u3164b@x.com", "U+3164 HANGUL FILLER"),
    ],
)
def test_invisible_and_direction_characters_are_refused_by_name(value: str, named: str) -> None:
    detail = _refused("userName", value)

    assert detail.startswith(f"userName contains {named}")


@pytest.mark.parametrize(
    "value",
    [
        "bob@p\u0430ypal.com",  # Cyrillic а in a Latin label
        "bob@\u0440aypal.com",  # Cyrillic р
        "bob@payp\u03b1l.com",  # Greek α
        "bob@xn--pypal-4ve.com",  # the first one, as its A-label
        "bob@mail.p\u0430ypal.com",  # in any label
    ],
)
def test_a_domain_label_mixing_scripts_is_refused(value: str) -> None:
    detail = _refused("emails[0].value", value)

    assert detail.startswith("emails[0].value has the domain label")
    assert "LATIN" in detail


@pytest.mark.parametrize(
    "value",
    [
        "bob@paypal.com",
        "иван@пример.рф",  # Cyrillic throughout (an IDN)
        "bob@пример.рф",  # one script per label is fine
        "bob@xn--e1afmkfd.xn--p1ai",  # the same domain as A-labels
        "taro@日本語テスト.jp",  # Han and Katakana: Japanese
        "bob@한국어漢字.kr",  # Hangul and Han: Korean
        "bob@ex-ample1.com",
        "ann",  # not an address at all
        "Ann Lee",
    ],
)
def test_plain_and_single_script_addresses_pass(value: str) -> None:
    check_identity_text("userName", value)


def test_mixed_scripts_names_the_scripts_of_the_label() -> None:
    assert mixed_scripts("p\u0430ypal") == ["CYRILLIC", "LATIN"]
    assert mixed_scripts("paypal") == []
    assert mixed_scripts("пример") == []
    assert mixed_scripts("abc-123") == []
