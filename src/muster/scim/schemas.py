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

    def sub(self, name: str) -> AttributeSpec | None:
        return self.sub_attributes.get(name.lower())


def _spec(attribute: Any) -> AttributeSpec:
    def text(value: Any) -> str:
        return str(getattr(value, "value", value))

    subs = {s.name.lower(): _spec(s) for s in (attribute.sub_attributes or [])}
    return AttributeSpec(
        name=attribute.name,
        type=text(attribute.type),
        multi_valued=bool(attribute.multi_valued),
        mutability=text(attribute.mutability),
        returned=text(attribute.returned),
        case_exact=bool(getattr(attribute.case_exact, "value", attribute.case_exact)),
        required=bool(getattr(attribute.required, "value", attribute.required)),
        sub_attributes=subs,
    )


def _specs(model: Any) -> dict[str, AttributeSpec]:
    return {a.name.lower(): _spec(a) for a in model.to_schema().attributes}


USER_ATTRIBUTES: dict[str, AttributeSpec] = _specs(User)
ENTERPRISE_ATTRIBUTES: dict[str, AttributeSpec] = _specs(EnterpriseUser)
GROUP_ATTRIBUTES: dict[str, AttributeSpec] = _specs(Group)

# Attributes every resource has (RFC 7643 §3.1); the server owns them.
COMMON_ATTRIBUTES: dict[str, AttributeSpec] = {
    "id": AttributeSpec("id", "string", mutability="readOnly", case_exact=True),
    "externalid": AttributeSpec("externalId", "string", case_exact=True),
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
