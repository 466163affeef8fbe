"""filter_sql: the SQL each dialect gets, compiled without a database."""

from __future__ import annotations

import pytest
from scim2_models import ScimFilter
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from muster.db.filter_sql import (
    group_filter,
    groups,
    indexed_equality,
    user_filter,
    user_name_equality,
    users,
)
from muster.errors import ScimError

DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}


def _sql(text: str, dialect: str, resource: str = "User") -> str:
    node = ScimFilter(text).ast
    if resource == "User":
        statement = select(users.c.id).where(user_filter(node, "tenant-1"))
    else:
        statement = select(groups.c.id).where(group_filter(node, "tenant-1"))
    compiled = statement.compile(dialect=DIALECTS[dialect], compile_kwargs={"literal_binds": True})
    return " ".join(str(compiled).split())


def test_contains_is_case_sensitive_glob_on_sqlite_and_escaped_like_on_postgresql() -> None:
    assert "GLOB '*50%_[*]x[?]y[[]z*'" in _sql('externalId co "50%_*x?y[z"', "sqlite")
    assert "LIKE '%%50/%%/_*x?y[z%%' ESCAPE '/'" in _sql('externalId co "50%_*x?y[z"', "postgresql")


def test_case_insensitive_attributes_lower_both_sides() -> None:
    text = 'name.familyName sw "SMI"'

    assert "lower(" in _sql(text, "sqlite") and "'smi*'" in _sql(text, "sqlite")
    assert "user_name_key = 'ann@x.test'" in _sql('userName eq "Ann@X.test"', "sqlite")


def test_ordering_is_by_code_point_on_postgresql() -> None:
    assert "COLLATE \"C\" > 'b'" in _sql('userName gt "B"', "postgresql")
    assert "COLLATE" not in _sql('userName gt "B"', "sqlite")


def test_not_is_null_safe() -> None:
    assert "NOT coalesce(" in _sql('not (title eq "x")', "postgresql")
    assert "coalesce(" in _sql('not (title eq "x")', "sqlite")


def test_element_filters_read_the_json_arrays_of_each_database() -> None:
    text = 'phoneNumbers[type eq "work" and primary eq true]'

    assert "json_each(users.document, '$.\"phoneNumbers\"')" in _sql(text, "sqlite")
    assert "jsonb_array_elements(" in _sql(text, "postgresql")
    assert "= 'true'" in _sql(text, "postgresql")


def test_indexed_lookups_are_id_in_subqueries_bound_to_the_tenant() -> None:
    emails = _sql('emails.value eq "A@X.test"', "sqlite")
    members = _sql('members.value eq "u-1"', "postgresql", "Group")

    assert "users.id IN (SELECT user_emails.user_id" in emails
    assert "user_emails.tenant_id = 'tenant-1'" in emails
    assert "user_emails.value_key = 'a@x.test'" in emails
    assert "groups.id IN (SELECT memberships.group_id" in members


def test_dates_compare_at_millisecond_precision() -> None:
    sql = _sql('meta.lastModified gt "2026-01-01T00:00:00.123Z"', "sqlite")

    assert "users.last_modified >= '2026-01-01 00:00:00.124000'" in sql


@pytest.mark.parametrize(
    "text", ['meta.version eq "W/\\"1\\""', 'groups.$ref eq "x"', 'members.type eq "User"']
)
def test_attributes_with_no_storage_are_not_filterable(text: str) -> None:
    resource = "Group" if text.startswith("members") else "User"
    with pytest.raises(ScimError, match="not a filterable attribute"):
        _sql(text, "sqlite", resource)


def test_existence_checks_are_recognised_for_the_prebuilt_statements() -> None:
    def node(text: str):  # type: ignore[no-untyped-def]
        return ScimFilter(text).ast

    assert user_name_equality(node('userName eq "Ann"')) == "Ann"
    assert indexed_equality(node('externalId eq "E1"')) == ("externalId", "E1")
    assert indexed_equality(node('emails.value eq "A@X"')) == ("emails", "a@x")
    assert indexed_equality(node('emails eq "A@X"')) == ("emails", "a@x")
    assert indexed_equality(node('emails.type eq "work"')) is None
    assert indexed_equality(node('externalId ne "E1"')) is None
    assert indexed_equality(node('externalId eq "a\\u0000"')) is None
