"""The attribute definitions we serve, read once from scim2-models' schemas (RFC 7643 §4, §8.7)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scim2_models import EnterpriseUser, Group, User

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_RESPONSE_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_REQUEST_URN = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"

# Every string attribute has a longest value, in characters (README, "Request limits"). A value
# is read, checked and stored whole on every write, and served in every page of a list: 120
# users with a 950 KB displayName each made one page of 1000 weigh 114 MB.
# The default: names, titles, codes, phone numbers, and the columns indexed as VARCHAR(255)
# (userName, externalId, emails.value; a group's displayName).
MAX_TEXT_LENGTH = 255
# Free text that runs longer: a formatted name or address, a street, and role or entitlement
# values (AWS puts two ARNs in one).
MAX_LONG_TEXT_LENGTH = 1024
# Reference attributes: profileUrl, photos.value, every $ref.
MAX_URL_LENGTH = 2048
# x509Certificates.value: one base64 DER certificate (a 4096-bit one is about 2 KB).
MAX_CERTIFICATE_LENGTH = 16384
_LONG_TEXT = frozenset(
    {
        "name.formatted",
        "addresses.formatted",
        "addresses.streetaddress",
        "roles.value",
        "entitlements.value",
        "password",
    }
)


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    """One attribute's definition, reduced to what validation and filtering need."""

    name: str
    type: str
    multi_valued: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    case_exact: bool = False
    required: bool = False
    sub_attributes: dict[str, AttributeSpec] = field(default_factory=dict)
    max_length: int | None = None  # characters; None for booleans, numbers and complex ones

    def sub(self, name: str) -> AttributeSpec | None:
        return self.sub_attributes.get(name.lower())


def max_length_of(path: str, type_: str) -> int | None:
    """The longest value of an attribute (`path` is lower-cased, "addresses.formatted")."""
    if type_ == "reference":
        return MAX_URL_LENGTH
    if type_ == "binary":
        return MAX_CERTIFICATE_LENGTH
    if type_ != "string":
        return None
    return MAX_LONG_TEXT_LENGTH if path in _LONG_TEXT else MAX_TEXT_LENGTH


def _spec(attribute: Any, parent: str = "") -> AttributeSpec:
    def text(value: Any) -> str:
        return str(getattr(value, "value", value))

    path = f"{parent}{attribute.name}".lower()
    subs = {s.name.lower(): _spec(s, f"{path}.") for s in (attribute.sub_attributes or [])}
    type_ = text(attribute.type)
    return AttributeSpec(
        name=attribute.name,
        type=type_,
        multi_valued=bool(attribute.multi_valued),
        mutability=text(attribute.mutability),
        returned=text(attribute.returned),
        case_exact=bool(getattr(attribute.case_exact, "value", attribute.case_exact)),
        required=bool(getattr(attribute.required, "value", attribute.required)),
        sub_attributes=subs,
        max_length=max_length_of(path, type_),
    )


def _specs(model: Any) -> dict[str, AttributeSpec]:
    return {a.name.lower(): _spec(a) for a in model.to_schema().attributes}


USER_ATTRIBUTES: dict[str, AttributeSpec] = _specs(User)
ENTERPRISE_ATTRIBUTES: dict[str, AttributeSpec] = _specs(EnterpriseUser)
GROUP_ATTRIBUTES: dict[str, AttributeSpec] = _specs(Group)

# Attributes every resource has (RFC 7643 §3.1); the server owns them.
COMMON_ATTRIBUTES: dict[str, AttributeSpec] = {
    "id": AttributeSpec("id", "string", mutability="readOnly", case_exact=True),
    "externalid": AttributeSpec(
        "externalId", "string", case_exact=True, max_length=MAX_TEXT_LENGTH
    ),
    "meta": AttributeSpec(
        "meta",
        "complex",
        mutability="readOnly",
        sub_attributes={
            "resourcetype": AttributeSpec("resourceType", "string", mutability="readOnly"),
            "created": AttributeSpec("created", "dateTime", mutability="readOnly"),
            "lastmodified": AttributeSpec("lastModified", "dateTime", mutability="readOnly"),
            "location": AttributeSpec("location", "reference", mutability="readOnly"),
            "version": AttributeSpec("version", "string", mutability="readOnly", case_exact=True),
        },
    ),
}
