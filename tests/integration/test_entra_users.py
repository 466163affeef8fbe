"""Microsoft Entra ID user provisioning replayed over HTTP, one test per request shape.

Bodies are copied from Microsoft's documentation, cited above each one:
- TUTORIAL: https://learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups
- KNOWN_ISSUES: https://learn.microsoft.com/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility
- OLDER_TUTORIAL: the 2018-2019 revision of TUTORIAL (azure-docs), "Examples 4 and 5"
Each test checks the outcome and that the provisioning log names the quirk Muster absorbed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from muster.db.unit_of_work import UnitOfWork
from tests.factories import ENTERPRISE_URN
from tests.group_factories import scim_error
from tests.integration.entra_replay import ENTRA_HEADERS, logged_quirks

pytestmark = pytest.mark.integration

USERS = "/scim/v2/Users"


@pytest.fixture
def entra(client: TestClient, scim_token: str) -> Iterator[TestClient]:
    """The client as Entra's provisioning service calls: bearer token, SCIM JSON."""
    client.headers.update({**ENTRA_HEADERS, "Authorization": f"Bearer {scim_token}"})
    yield client


# TUTORIAL, "Create User", request body verbatim.
TUTORIAL_CREATE_USER: dict[str, Any] = {
    "schemas": [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
    "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    "userName": "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
    "active": True,
    "emails": [{
        "primary": True,
        "type": "work",
        "value": "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"
    }],
    "meta": {
        "resourceType": "User"
    },
    "name": {
        "formatted": "givenName familyName",
        "familyName": "familyName",
        "givenName": "givenName"
    },
    "roles": []
}  # fmt: skip


def _create(entra: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = entra.post(USERS, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _entra_user_without_mail(entra: TestClient, upn: str) -> dict[str, Any]:
    """A user as Entra creates one whose `mail` is still empty: the UPN, no emails."""
    return _create(
        entra,
        {
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            ],
            "externalId": str(uuid.uuid4()),
            "userName": upn,
            "active": True,
            "meta": {"resourceType": "User"},
            "name": {"formatted": "Test User", "familyName": "User", "givenName": "Test"},
            "roles": [],
        },
    )


def _patch(entra: TestClient, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = entra.patch(f"{USERS}/{user_id}", json=body)
    assert response.status_code == 200, response.text
    patched: dict[str, Any] = response.json()
    return patched


# Create, read, find


def test_entra_create_user_tutorial_body(entra: TestClient, uow: UnitOfWork) -> None:
    created = _create(entra, TUTORIAL_CREATE_USER)

    assert created["userName"] == "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
    assert created["externalId"] == "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"
    assert created["emails"] == TUTORIAL_CREATE_USER["emails"]
    assert created["name"] == TUTORIAL_CREATE_USER["name"]
    assert created["active"] is True
    assert logged_quirks(uow) == set()


def test_entra_test_connection_with_a_random_guid_finds_nobody(
    entra: TestClient, uow: UnitOfWork
) -> None:
    _create(entra, TUTORIAL_CREATE_USER)

    # TUTORIAL, "Test Connection": a filter on the matching attribute with a random GUID.
    response = entra.get(USERS, params={"filter": f'userName eq "{uuid.uuid4()}"'})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert (body["totalResults"], body["Resources"], body["startIndex"]) == (0, [], 1)
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert logged_quirks(uow) == set()


def test_entra_get_user_by_query_tutorial(entra: TestClient) -> None:
    created = _create(entra, TUTORIAL_CREATE_USER)

    # TUTORIAL, "Get User by query", and the default matching on externalId.
    by_name = entra.get(
        USERS, params={"filter": 'userName eq "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"'}
    ).json()
    by_external_id = entra.get(
        USERS, params={"filter": 'externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"'}
    ).json()

    assert [u["id"] for u in by_name["Resources"]] == [created["id"]]
    assert [u["id"] for u in by_external_id["Resources"]] == [created["id"]]


def test_entra_create_user_with_string_booleans(entra: TestClient, uow: UnitOfWork) -> None:
    # TUTORIAL's create body with booleans as Microsoft's reference tests send them
    # ("active": "True", SCIMReferenceCode#21), primary flags included.
    body = {
        **TUTORIAL_CREATE_USER,
        "active": "True",
        "emails": [{
            "primary": "True",
            "type": "work",
            "value": "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"
        }],
        "phoneNumbers": [{"primary": "False", "type": "mobile", "value": "312-320-1707"}],
    }  # fmt: skip

    created = _create(entra, body)

    assert created["active"] is True
    assert created["emails"][0]["primary"] is True
    assert created["phoneNumbers"][0]["primary"] is False
    assert logged_quirks(uow) == {"entra_string_boolean"}


# Disable


def test_entra_disable_user_without_flag(entra: TestClient, uow: UnitOfWork) -> None:
    user = _create(entra, TUTORIAL_CREATE_USER)

    # KNOWN_ISSUES, "Requests made to disable users", without feature flag.
    patched = _patch(entra, user["id"], {
        "schemas": [
            "urn:ietf:params:scim:api:messages:2.0:PatchOp"
        ],
        "Operations": [
            {
                "op": "Replace",
                "path": "active",
                "value": "False"
            }
        ]
    })  # fmt: skip

    assert patched["active"] is False
    assert logged_quirks(uow) == {"entra_capitalised_op", "entra_string_boolean"}
    # Disabled users are still found by Entra's matching filters (TUTORIAL, soft delete).
    found = entra.get(USERS, params={"filter": f'externalId eq "{user["externalId"]}"'}).json()
    assert [u["id"] for u in found["Resources"]] == [user["id"]]


def test_entra_disable_user_with_flag(entra: TestClient, uow: UnitOfWork) -> None:
    user = _create(entra, TUTORIAL_CREATE_USER)

    # KNOWN_ISSUES, "Requests made to disable users", with feature flag: no quirk left.
    patched = _patch(entra, user["id"], {
        "schemas": [
            "urn:ietf:params:scim:api:messages:2.0:PatchOp"
        ],
        "Operations": [
            {
                "op": "replace",
                "path": "active",
                "value": False
            }
        ]
    })  # fmt: skip

    assert patched["active"] is False
    assert logged_quirks(uow) == set()


def test_entra_disable_user_with_add_and_a_lower_case_string(
    entra: TestClient, uow: UnitOfWork
) -> None:
    user = _create(entra, TUTORIAL_CREATE_USER)

    # Reported in rancher#54025 and scimmy#51: deprovisioning as "Add" with "false".
    patched = _patch(
        entra,
        user["id"],
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Add", "path": "active", "value": "false"}],
        },
    )

    assert patched["active"] is False
    assert logged_quirks(uow) == {"entra_capitalised_op", "entra_string_boolean"}


# Single attributes


def test_entra_add_a_single_value_string_attribute_without_flag(
    entra: TestClient, uow: UnitOfWork
) -> None:
    user = _create(entra, TUTORIAL_CREATE_USER)

    # KNOWN_ISSUES, "Requests made to add a single-value string attribute", without flag.
    patched = _patch(entra, user["id"], {
        "schemas": [
            "urn:ietf:params:scim:api:messages:2.0:PatchOp"
        ],
        "Operations": [
          {
            "op": "Add",
            "path": "nickName",
            "value": "Babs"
          }
        ]
    })  # fmt: skip

    assert patched["nickName"] == "Babs"
    assert logged_quirks(uow) == {"entra_capitalised_op"}


def test_entra_add_external_id_and_display_name(entra: TestClient, uow: UnitOfWork) -> None:
    user = _entra_user_without_mail(entra, "ann.lee@contoso.com")

    # Entra's update when mailNickname and displayName gain values (TUTORIAL mapping table).
    patched = _patch(
        entra,
        user["id"],
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "Add", "path": "externalId", "value": "annlee"},
                {"op": "Add", "path": "displayName", "value": "Ann Lee"},
            ],
        },
    )

    assert (patched["externalId"], patched["displayName"]) == ("annlee", "Ann Lee")
    assert logged_quirks(uow) == {"entra_capitalised_op"}
    found = entra.get(USERS, params={"filter": 'externalId eq "annlee"'}).json()
    assert [u["id"] for u in found["Resources"]] == [user["id"]]


# Filtered paths on emails and addresses


def test_entra_replace_multiple_attributes_without_flag(
    entra: TestClient, uow: UnitOfWork
) -> None:
    # The user's mail was empty at creation; the work email is created by this PATCH, with the
    # same address as the userName, so the person's identity does not change.
    user = _entra_user_without_mail(entra, "TestBcwqnm@test.microsoft.com")

    # KNOWN_ISSUES, "Requests to replace multiple attributes", without feature flag.
    patched = _patch(entra, user["id"], {
        "schemas": [
            "urn:ietf:params:scim:api:messages:2.0:PatchOp"
        ],
        "Operations": [
            {
                "op": "Replace",
                "path": "displayName",
                "value": "Pvlo"
            },
            {
                "op": "Replace",
                "path": "emails[type eq \"work\"].value",
                "value": "TestBcwqnm@test.microsoft.com"
            },
            {
                "op": "Replace",
                "path": "name.givenName",
                "value": "Gtfd"
            },
            {
                "op": "Replace",
                "path": "name.familyName",
                "value": "Pkqf"
            },
            {
                "op": "Replace",
                "path": "externalId",
                "value": "Eqpj"
            },
            {
                "op": "Replace",
                "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
                "value": "Eqpj"
            }
        ]
    })  # fmt: skip

    assert patched["displayName"] == "Pvlo"
    assert patched["emails"] == [{"type": "work", "value": "TestBcwqnm@test.microsoft.com"}]
    assert (patched["name"]["givenName"], patched["name"]["familyName"]) == ("Gtfd", "Pkqf")
    assert patched["externalId"] == "Eqpj"
    assert patched[ENTERPRISE_URN] == {"employeeNumber": "Eqpj"}
    assert ENTERPRISE_URN in patched["schemas"]
    assert logged_quirks(uow) == {"entra_capitalised_op", "entra_filtered_new_item"}


def test_entra_replace_multiple_attributes_with_flag(entra: TestClient, uow: UnitOfWork) -> None:
    user = _entra_user_without_mail(entra, "TestMhvaes@test.microsoft.com")

    # KNOWN_ISSUES, "Requests to replace multiple attributes", with feature flag: a no-path
    # replace whose keys are paths, dotted and by extension URN.
    patched = _patch(entra, user["id"], {
        "schemas": [
            "urn:ietf:params:scim:api:messages:2.0:PatchOp"
        ],
        "Operations": [
            {
                "op": "replace",
                "path": "emails[type eq \"work\"].value",
                "value": "TestMhvaes@test.microsoft.com"
            },
            {
                "op": "replace",
                "value": {
                    "displayName": "Bjfe",
                    "name.givenName": "Kkom",
                    "name.familyName": "Unua",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"  # noqa: E501
                }
            }
        ]
    })  # fmt: skip

    assert patched["displayName"] == "Bjfe"
    assert patched["emails"] == [{"type": "work", "value": "TestMhvaes@test.microsoft.com"}]
    assert patched["name"] == {"formatted": "Test User", "givenName": "Kkom", "familyName": "Unua"}
    assert patched[ENTERPRISE_URN] == {"employeeNumber": "Aklq"}
    # The keys were read as paths: no attribute literally named "name.givenName" is stored.
    assert "name.givenName" not in patched
    assert logged_quirks(uow) == {"entra_filtered_new_item", "entra_dotted_key", "entra_urn_key"}
    assert entra.get(f"{USERS}/{user['id']}").json() == patched


def test_entra_update_user_multi_valued_tutorial(entra: TestClient, uow: UnitOfWork) -> None:
    user = _entra_user_without_mail(entra, "updatedEmail@microsoft.com")

    # TUTORIAL, "Update User [Multi-valued properties]", request body verbatim.
    patched = _patch(entra, user["id"], {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
                {
                "op": "Replace",
                "path": "emails[type eq \"work\"].value",
                "value": "updatedEmail@microsoft.com"
                },
                {
                "op": "Replace",
                "path": "name.familyName",
                "value": "updatedFamilyName"
                }
        ]
    })  # fmt: skip

    assert patched["emails"] == [{"type": "work", "value": "updatedEmail@microsoft.com"}]
    assert patched["name"]["familyName"] == "updatedFamilyName"
    assert logged_quirks(uow) == {"entra_capitalised_op", "entra_filtered_new_item"}

    # Sent again, the work email now exists and is replaced in place: no new element.
    again = _patch(entra, user["id"], {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
                {
                "op": "Replace",
                "path": "emails[type eq \"work\"].value",
                "value": "updatedEmail@microsoft.com"
                },
                {
                "op": "Replace",
                "path": "name.familyName",
                "value": "updatedFamilyName"
                }
        ]
    })  # fmt: skip
    assert again["emails"] == [{"type": "work", "value": "updatedEmail@microsoft.com"}]
    assert logged_quirks(uow) == {"entra_capitalised_op"}


def test_entra_work_email_change_is_refused_by_the_product_rule(
    entra: TestClient, uow: UnitOfWork
) -> None:
    user = _create(entra, TUTORIAL_CREATE_USER)

    # TUTORIAL, "Update User [Multi-valued properties]": the work email is this user's identity,
    # and Muster does not let provisioning change a person's email (README, "Connect Okta").
    response = entra.patch(f"{USERS}/{user['id']}", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
                {
                "op": "Replace",
                "path": "emails[type eq \"work\"].value",
                "value": "updatedEmail@microsoft.com"
                },
                {
                "op": "Replace",
                "path": "name.familyName",
                "value": "updatedFamilyName"
                }
        ]
    })  # fmt: skip

    error = scim_error(response, 400, "mutability")
    assert "email" in error["detail"]
    assert entra.get(f"{USERS}/{user['id']}").json()["name"]["familyName"] == "familyName"


@pytest.mark.parametrize(
    ("sub_attribute", "value"),
    [
        ("streetAddress", "1 Microsoft Way"),
        ("locality", "Redmond"),
        ("region", "WA"),
        ("postalCode", "98052"),
        ("country", "US"),
        ("formatted", "1 Microsoft Way\nRedmond, WA 98052"),
    ],
)
def test_entra_address_sub_attribute_creates_the_work_address(
    entra: TestClient, uow: UnitOfWork, sub_attribute: str, value: str
) -> None:
    user = _create(entra, TUTORIAL_CREATE_USER)

    # TUTORIAL mapping table: streetAddress -> addresses[type eq "work"].streetAddress,
    # postalCode -> addresses[type eq "work"].postalCode, and so on.
    patched = _patch(
        entra,
        user["id"],
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {
                    "op": "Add",
                    "path": f'addresses[type eq "work"].{sub_attribute}',
                    "value": value,
                }
            ],
        },
    )

    assert patched["addresses"] == [{"type": "work", sub_attribute: value}]
    assert logged_quirks(uow) == {"entra_capitalised_op", "entra_filtered_new_item"}


def test_entra_address_attributes_fill_one_work_address(entra: TestClient, uow: UnitOfWork) -> None:
    user = _create(entra, TUTORIAL_CREATE_USER)
    operations = [
        {"op": "Add", "path": f'addresses[type eq "work"].{name}', "value": value}
        for name, value in (
            ("streetAddress", "1 Microsoft Way"),
            ("locality", "Redmond"),
            ("region", "WA"),
            ("postalCode", "98052"),
            ("country", "US"),
        )
    ]
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations}

    _patch(entra, user["id"], body)
    moved = _patch(
        entra,
        user["id"],
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "Replace", "path": 'addresses[type eq "work"].postalCode', "value": "98053"}
            ],
        },
    )

    assert moved["addresses"] == [
        {
            "type": "work",
            "streetAddress": "1 Microsoft Way",
            "locality": "Redmond",
            "region": "WA",
            "postalCode": "98053",
            "country": "US",
        }
    ]
    assert logged_quirks(uow) == {"entra_capitalised_op"}


def test_entra_filtered_path_as_a_filter_finds_the_user(
    entra: TestClient, uow: UnitOfWork
) -> None:
    user = _create(entra, TUTORIAL_CREATE_USER)

    # TUTORIAL, "/Users": attributes used for uniqueness must be filterable, e.g.
    # emails[type eq "work"].value eq "user@contoso.com".
    address = "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"
    response = entra.get(USERS, params={"filter": f'emails[type eq "work"].value eq "{address}"'})

    assert response.status_code == 200, response.text
    assert [u["id"] for u in response.json()["Resources"]] == [user["id"]]
    assert logged_quirks(uow) == {"entra_path_filter"}


def test_entra_filtered_path_as_a_filter_is_logged_even_when_refused(
    entra: TestClient, uow: UnitOfWork
) -> None:
    entra.get(USERS, params={"filter": 'emails[type eq "work"].value eq "x@contoso.com"'})

    assert "entra_path_filter" in logged_quirks(uow)


# Enterprise extension and manager

MANAGER_ID = "2819c223-7f76-453a-919d-413861904646"


def test_entra_enterprise_attributes_are_stored_and_returned(
    entra: TestClient, uow: UnitOfWork
) -> None:
    extension = {
        "employeeNumber": "701984",
        "costCenter": "4130",
        "organization": "Contoso",
        "division": "Theme Parks",
        "department": "Tour Operations",
        "manager": {"value": MANAGER_ID},
    }
    created = _create(entra, {**TUTORIAL_CREATE_USER, ENTERPRISE_URN: extension})

    read = entra.get(f"{USERS}/{created['id']}").json()

    assert created[ENTERPRISE_URN] == read[ENTERPRISE_URN] == extension
    assert read["schemas"] == [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        ENTERPRISE_URN,
    ]
    by_urn = entra.get(
        USERS, params={"filter": f'{ENTERPRISE_URN}:department eq "Tour Operations"'}
    ).json()
    assert [u["id"] for u in by_urn["Resources"]] == [created["id"]]


def test_entra_replace_enterprise_attributes_by_urn_keys(
    entra: TestClient, uow: UnitOfWork
) -> None:
    user = _create(entra, TUTORIAL_CREATE_USER)

    # The no-path replace of KNOWN_ISSUES (with flag) carrying department and a manager given
    # as a plain id, as directory-scimple#1242 reports it.
    patched = _patch(
        entra,
        user["id"],
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {
                    "op": "Replace",
                    "value": {
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Sales",  # noqa: E501
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": MANAGER_ID,  # noqa: E501
                    },
                }
            ],
        },
    )  # fmt: skip

    assert patched[ENTERPRISE_URN] == {"department": "Sales", "manager": {"value": MANAGER_ID}}
    assert logged_quirks(uow) == {
        "entra_capitalised_op",
        "entra_urn_key",
        "entra_manager_as_string",
    }


def test_entra_add_manager_by_unqualified_path(entra: TestClient, uow: UnitOfWork) -> None:
    user = _create(entra, TUTORIAL_CREATE_USER)

    # OLDER_TUTORIAL, example 5: the manager by the bare path "manager", in an array.
    patched = _patch(entra, user["id"], {
       "schemas":
       [
         "urn:ietf:params:scim:api:messages:2.0:PatchOp"],
       "Operations":
       [
         {
           "op":"Add",
           "path":"manager",
           "value":
             [
               {
                 "$ref":"http://.../scim/Users/2819c223-7f76-453a-919d-413861904646",
                 "value":"2819c223-7f76-453a-919d-413861904646"}]}]})  # fmt: skip

    assert patched[ENTERPRISE_URN]["manager"] == {
        "$ref": "http://.../scim/Users/2819c223-7f76-453a-919d-413861904646",
        "value": MANAGER_ID,
    }
    assert "manager" not in patched
    assert logged_quirks(uow) == {
        "entra_capitalised_op",
        "entra_unqualified_path",
        "entra_manager_as_list",
    }
    assert entra.get(f"{USERS}/{user['id']}").json() == patched


def test_entra_replace_manager_as_a_plain_string_at_its_urn_path(
    entra: TestClient, uow: UnitOfWork
) -> None:
    user = _create(entra, TUTORIAL_CREATE_USER)

    # directory-scimple#1242: the manager's id alone, at the full URN path.
    patched = _patch(
        entra,
        user["id"],
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {
                    "op": "Replace",
                    "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                    "value": MANAGER_ID,
                }
            ],
        },
    )

    assert patched[ENTERPRISE_URN] == {"manager": {"value": MANAGER_ID}}
    assert logged_quirks(uow) == {"entra_capitalised_op", "entra_manager_as_string"}


def test_entra_manager_check_filters_by_id_and_bare_manager(
    entra: TestClient, uow: UnitOfWork
) -> None:
    managed = {ENTERPRISE_URN: {"manager": {"value": MANAGER_ID}}}
    user = _create(entra, {**TUTORIAL_CREATE_USER, **managed})
    other = _create(
        entra,
        {
            **TUTORIAL_CREATE_USER,
            "userName": "other@testuser.com",
            "externalId": "other",
            "emails": [{"primary": True, "type": "work", "value": "other@testuser.com"}],
            **managed,
        },
    )

    # OLDER_TUTORIAL, example 4 (as idp-requests.md quotes it): does the manager still match?
    matching = entra.get(
        USERS,
        params={
            "filter": f'id eq "{user["id"]}" and manager eq "{MANAGER_ID}"',
            "attributes": "id",
        },
    )
    assert matching.status_code == 200, matching.text
    assert logged_quirks(uow) == {"entra_unqualified_filter"}
    stale_filter = f'id eq "{user["id"]}" and manager eq "{uuid.uuid4()}"'
    stale = entra.get(USERS, params={"filter": stale_filter, "attributes": "id"}).json()

    assert [r["id"] for r in matching.json()["Resources"]] == [user["id"]]
    assert set(matching.json()["Resources"][0]) <= {"id", "schemas"}
    assert stale["totalResults"] == 0
    assert other["id"] != user["id"]
