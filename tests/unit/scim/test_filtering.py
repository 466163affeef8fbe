"""resolve(): attribute paths against the schema, operator and value checks, normal forms."""

from __future__ import annotations

from datetime import datetime

import pytest
from scim2_models import ScimFilter

from muster.errors import ScimError
from muster.scim.filtering import (
    AllOf,
    AnyElement,
    Compare,
    Has,
    Negate,
    attributes_of,
    resolve,
)
from muster.scim.schemas import ENTERPRISE_URN

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _user(text: str):  # type: ignore[no-untyped-def]
    return resolve(ScimFilter(text).ast, "User")


def _group(text: str):  # type: ignore[no-untyped-def]
    return resolve(ScimFilter(text).ast, "Group")


def test_names_resolve_to_their_canonical_spelling_and_case_rule() -> None:
    expr = _user('USERNAME eq "a"')

    assert isinstance(expr, Compare)
    assert (expr.attribute.name, expr.attribute.case_exact) == ("userName", False)
    external = _user('externalid eq "a"')
    assert isinstance(external, Compare)
    assert (external.attribute.name, external.attribute.case_exact) == ("externalId", True)


def test_a_dotted_multi_valued_attribute_means_any_element() -> None:
    expr = _user('emails.type eq "work"')

    assert isinstance(expr, AnyElement)
    assert expr.attribute.name == "emails"
    assert isinstance(expr.condition, Compare)
    assert expr.condition.attribute.sub == "type"


def test_a_complex_attribute_without_sub_attribute_compares_by_value() -> None:
    emails = _user('emails eq "a@x.test"')
    manager = _user('manager eq "boss"')

    assert isinstance(emails, AnyElement)
    assert isinstance(emails.condition, Compare)
    assert emails.condition.attribute.sub == "value"
    assert isinstance(manager, Compare)
    assert (manager.attribute.schema, manager.attribute.sub) == (ENTERPRISE_URN, "value")


def test_a_value_filter_keeps_its_inner_expression() -> None:
    expr = _user('emails[type eq "work" and value co "@x"]')

    assert isinstance(expr, AnyElement)
    assert isinstance(expr.condition, AllOf)
    assert [a.sub for a in attributes_of(expr)] == ["type", "value"]


def test_entra_value_path_with_sub_attribute_reads_as_a_value_filter() -> None:
    expr = _user('emails[type eq "work"].value eq "a@x.test"')

    assert isinstance(expr, AnyElement)
    assert [a.sub for a in attributes_of(expr)] == ["type", "value"]


@pytest.mark.parametrize(
    "text",
    [
        f'{ENTERPRISE}:employeeNumber eq "7"',
        f'{ENTERPRISE}:manager.value eq "m"',
        'employeeNumber eq "7"',  # Entra's bare name
        'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a"',
    ],
)
def test_extension_and_qualified_names_resolve(text: str) -> None:
    expr = _user(text)

    assert isinstance(expr, Compare)


def test_null_compares_as_presence() -> None:
    assert _user("title eq null") == Negate(_user("title pr"))
    assert _user("title ne null") == _user("title pr")


def test_dates_are_read_as_naive_utc() -> None:
    expr = _user('meta.lastModified gt "2026-01-01T02:00:00+02:00"')

    assert isinstance(expr, Compare)
    assert expr.value == datetime(2026, 1, 1, 0, 0, 0)


def test_entra_string_booleans_are_read() -> None:
    expr = _user('active eq "False"')

    assert isinstance(expr, Compare)
    assert expr.value is False


def test_presence_of_a_multi_valued_attribute_stays_presence() -> None:
    expr = _user("emails pr")

    assert isinstance(expr, Has)
    assert expr.attribute.multi_valued


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('nickname2 eq "x"', "nickname2"),
        ('name.surname eq "x"', "name.surname"),
        ('emails[kind eq "work"]', "emails.kind"),
        ('urn:example:ext:1.0:User:foo eq "x"', "urn:example:ext:1.0:User"),
        (f'{ENTERPRISE}:userName eq "x"', "userName"),
        ('password eq "x"', "password"),
        ("active gt true", "active"),
        ('active eq "maybe"', "active"),
        ("userName eq 5", "userName"),
        ('meta.created co "2026"', "meta.created"),
        ('meta.created gt "yesterday"', "meta.created"),
        ('name eq "x"', "name"),
        ('addresses eq "x"', "addresses"),
        ('title[value eq "x"]', "title"),
        ("title gt null", "title"),
        ('x509Certificates.value gt "a"', "x509Certificates.value"),
    ],
)
def test_unknown_attributes_and_wrong_comparisons_are_invalid_filter(text: str, named: str) -> None:
    with pytest.raises(ScimError) as raised:
        _user(text)

    assert raised.value.status == 400
    assert str(raised.value.scim_type) == "invalidFilter"
    assert named in raised.value.detail


def test_group_attributes_are_their_own() -> None:
    assert isinstance(_group('displayName eq "x"'), Compare)
    assert isinstance(_group('members[value eq "u"]'), AnyElement)
    with pytest.raises(ScimError, match="userName"):
        _group('userName eq "x"')
