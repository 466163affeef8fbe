"""Filter tree -> FilterExpr tree resolved against the schema; unknown attribute -> invalidFilter.

scim2-models parses the RFC 7644 §3.4.2.2 grammar; this module gives each attribute path its
schema definition (type, caseExact, multi-valued), checks each operator and value against it,
and normalises the shapes that mean the same thing, so db/filter_sql.py translates one small
tree. Semantics (documented in the README):

- a comparison with an absent attribute is false, `ne` included; `not (...)` is its complement;
- on a multi-valued attribute a comparison matches when any one element matches
  (`emails.type eq "work"` is `emails[type eq "work"]`, `emails eq "x"` is `emails.value eq`);
- `attr eq null` is `not (attr pr)` and `attr ne null` is `attr pr`;
- `pr` on a string needs a non-empty value, on a multi-valued attribute at least one element.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

from muster.errors import ScimError
from muster.scim import client_quirks
from muster.scim.schemas import (
    COMMON_ATTRIBUTES,
    ENTERPRISE_ATTRIBUTES,
    ENTERPRISE_URN,
    GROUP_ATTRIBUTES,
    GROUP_URN,
    USER_ATTRIBUTES,
    USER_URN,
    AttributeSpec,
)

Op = CompareOperator
Value = str | bool | int | float | datetime

_ORDERING = frozenset({Op.gt, Op.ge, Op.lt, Op.le})
_TEXT_MATCH = frozenset({Op.co, Op.sw, Op.ew})
_EARLIEST, _LATEST = datetime(1, 1, 2), datetime(9999, 12, 30)  # room for time zones and ms


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute path, resolved: its schema, canonical names and leaf definition."""

    schema: str  # the URN of the schema that declares it
    name: str  # canonical top-level name: "emails", "name", "meta", "manager"
    sub: str | None  # canonical sub-attribute name: "value", "familyName"
    type: str  # the leaf's type: string, boolean, dateTime, reference, binary, complex, ...
    case_exact: bool
    multi_valued: bool  # the top-level attribute is multi-valued
    sub_names: tuple[str, ...] = ()  # a complex leaf's sub-attributes (for `name pr`)

    def __str__(self) -> str:
        dotted = self.name if self.sub is None else f"{self.name}.{self.sub}"
        return dotted if self.schema != ENTERPRISE_URN else f"{ENTERPRISE_URN}:{dotted}"


@dataclass(frozen=True, slots=True)
class Compare:
    """`attribute op value`; the value already has the attribute's type (dateTime: naive UTC)."""

    attribute: Attribute
    op: CompareOperator
    value: Value


@dataclass(frozen=True, slots=True)
class Has:
    """`attribute pr`."""

    attribute: Attribute


@dataclass(frozen=True, slots=True)
class AllOf:
    terms: tuple[FilterExpr, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    terms: tuple[FilterExpr, ...]


@dataclass(frozen=True, slots=True)
class Negate:
    expr: FilterExpr


@dataclass(frozen=True, slots=True)
class AnyElement:
    """Some element of a multi-valued attribute satisfies `condition` (RFC 7644 §3.4.2.2)."""

    attribute: Attribute  # the multi-valued attribute itself (sub is None)
    condition: FilterExpr  # over sub-attributes of that attribute only


FilterExpr = Compare | Has | AllOf | AnyOf | Negate | AnyElement


def resolve(node: FilterNode, resource: str) -> FilterExpr:
    """Resolve a parsed filter over "User" or "Group"; unknown attribute -> invalidFilter."""
    return _Resolver(resource).expr(node, None)


def attributes_of(expr: FilterExpr) -> list[Attribute]:
    """Every attribute a resolved filter compares or tests, in order."""
    match expr:
        case Compare(attribute=a) | Has(attribute=a):
            return [a]
        case AllOf(terms=terms) | AnyOf(terms=terms):
            return [a for term in terms for a in attributes_of(term)]
        case Negate(expr=inner):
            return attributes_of(inner)
        case AnyElement(condition=inner):
            return attributes_of(inner)
    raise AssertionError(expr)


def parse_date_time(text: str) -> datetime:
    """Read an RFC 3339 date-time as naive UTC (how the database keeps them)."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    if not _EARLIEST <= moment <= _LATEST:
        raise ValueError(text)
    return moment


class _Resolver:
    def __init__(self, resource: str) -> None:
        self.resource = resource
        if resource == "User":
            self.core_urn = USER_URN
            self.core = {**USER_ATTRIBUTES, **COMMON_ATTRIBUTES}
            self.extensions = {ENTERPRISE_URN.lower(): (ENTERPRISE_URN, ENTERPRISE_ATTRIBUTES)}
        else:
            self.core_urn = GROUP_URN
            self.core = {**GROUP_ATTRIBUTES, **COMMON_ATTRIBUTES}
            self.extensions = {}

    def expr(self, node: FilterNode, parent: Attribute | None) -> FilterExpr:
        if isinstance(node, LogicalExpr):
            terms = tuple(self.expr(term, parent) for term in node.terms)
            return AllOf(terms) if node.op == LogicalOperator.and_ else AnyOf(terms)
        if isinstance(node, Not):
            return Negate(self.expr(node.expr, parent))
        if isinstance(node, ValuePath):
            return self.value_path(node, parent)
        if isinstance(node, Present):
            return self.present(self.attribute(node.attr_path, parent), parent)
        if isinstance(node, Comparison):
            return self.compare(node, parent)
        raise ScimError.invalid_filter(f"unsupported filter expression {node}")

    def value_path(self, node: ValuePath, parent: Attribute | None) -> FilterExpr:
        if parent is not None:
            raise ScimError.invalid_filter(f"{node}: a value filter cannot nest another one")
        if node.sub_attr is not None:
            raise ScimError.invalid_filter(f"{node}: a filter cannot select a sub-attribute")
        attribute = self.attribute(node.attr_path, None)
        if not attribute.multi_valued or attribute.sub is not None:
            raise ScimError.invalid_filter(
                f"{node.attr_path} is not multi-valued: filter it as {node.attr_path}.<sub> "
                "instead of with [...]"
            )
        return AnyElement(attribute, self.expr(node.val_filter, attribute))

    def attribute(self, path: AttrPath, parent: Attribute | None) -> Attribute:
        if parent is not None:  # inside emails[...]: names are sub-attributes of emails
            if path.uri is not None or path.sub_attr is not None:
                raise ScimError.invalid_filter(
                    f"{path} inside {parent.name}[...] must be a sub-attribute of {parent.name}"
                )
            spec = self._top(parent)
            sub = spec.sub(path.attr)
            if sub is None:
                raise ScimError.invalid_filter(
                    f"{parent.name}.{path.attr} is not an attribute of {self.resource}"
                )
            return self._leaf(parent.schema, spec, sub)
        schema, spec = self._declared(path)
        if spec.returned == "never":
            raise ScimError.invalid_filter(f"{path} is never returned and cannot be filtered")
        if path.sub_attr is None:
            return self._leaf(schema, spec, None)
        sub = spec.sub(path.sub_attr)
        if sub is None:
            raise ScimError.invalid_filter(f"{path} is not an attribute of {self.resource}")
        return self._leaf(schema, spec, sub)

    def _declared(self, path: AttrPath) -> tuple[str, AttributeSpec]:
        name = path.attr.lower()
        uri = path.uri.lower() if path.uri is not None else None
        if uri is None or uri == self.core_urn.lower():
            spec = self.core.get(name)
            if spec is not None:
                return self.core_urn, spec
            if uri is None:
                # Entra filters on enterprise attributes by their bare name: `manager eq "<id>"`
                # (older Entra docs: `filter=id eq "…" and manager eq "…"`). Core names win.
                for urn, catalogue in self.extensions.values():
                    if name in catalogue:
                        return urn, catalogue[name]
            raise ScimError.invalid_filter(f"{path} is not an attribute of {self.resource}")
        extension = self.extensions.get(uri)
        if extension is None:
            raise ScimError.invalid_filter(f"{path.uri!r} is not a schema of {self.resource}")
        urn, catalogue = extension
        spec = catalogue.get(name)
        if spec is None:
            raise ScimError.invalid_filter(f"{path} is not an attribute of {self.resource}")
        return urn, spec

    def _top(self, attribute: Attribute) -> AttributeSpec:
        if attribute.schema == self.core_urn:
            return self.core[attribute.name.lower()]
        return self.extensions[attribute.schema.lower()][1][attribute.name.lower()]

    @staticmethod
    def _leaf(schema: str, spec: AttributeSpec, sub: AttributeSpec | None) -> Attribute:
        leaf = sub if sub is not None else spec
        return Attribute(
            schema=schema,
            name=spec.name,
            sub=None if sub is None else sub.name,
            type=leaf.type,
            case_exact=leaf.case_exact,
            multi_valued=spec.multi_valued,
            sub_names=tuple(s.name for s in leaf.sub_attributes.values()),
        )

    def _by_value(self, attribute: Attribute, written: str) -> Attribute:
        """`emails eq "x"` or `manager eq "id"`: a complex attribute compares by its value."""
        spec = self._top(attribute)
        value = spec.sub("value")
        if value is None:
            example = f"{attribute.name}.{attribute.sub_names[0]}" if attribute.sub_names else ""
            raise ScimError.invalid_filter(
                f"{written} is complex: compare one of its sub-attributes, e.g. {example}"
            )
        return self._leaf(attribute.schema, spec, value)

    def present(self, attribute: Attribute, parent: Attribute | None) -> FilterExpr:
        if parent is None and attribute.multi_valued and attribute.sub is not None:
            return AnyElement(self._container(attribute), Has(attribute))
        return Has(attribute)

    def _container(self, attribute: Attribute) -> Attribute:
        spec = self._top(attribute)
        return self._leaf(attribute.schema, spec, None)

    def compare(self, node: Comparison, parent: Attribute | None) -> FilterExpr:
        attribute = self.attribute(node.attr_path, parent)
        if attribute.type == "complex":
            attribute = self._by_value(attribute, str(node.attr_path))
        if node.value is None:
            if node.op not in (Op.eq, Op.ne):
                raise ScimError.invalid_filter(
                    f"{node.attr_path} {node.op.value} null is not valid: use eq or ne"
                )
            has = self.present(attribute, parent)
            return has if node.op == Op.ne else Negate(has)
        leaf = Compare(attribute, node.op, self._value(attribute, node))
        if parent is None and attribute.multi_valued:
            return AnyElement(self._container(attribute), leaf)
        return leaf

    @staticmethod
    def _value(attribute: Attribute, node: Comparison) -> Value:
        op, value, kind = node.op, node.value, attribute.type
        if kind == "boolean":
            flag = value if isinstance(value, bool) else client_quirks.entra_string_boolean(value)
            if flag is None or op not in (Op.eq, Op.ne):
                raise ScimError.invalid_filter(
                    f"{node.attr_path} is a boolean: compare it with eq or ne to true or false"
                )
            return flag
        if kind == "dateTime":
            if op in _TEXT_MATCH:
                raise ScimError.invalid_filter(
                    f"{op.value} does not apply to the dateTime {node.attr_path}"
                )
            try:
                return parse_date_time(value) if isinstance(value, str) else _no_date()
            except (ValueError, OverflowError):
                raise ScimError.invalid_filter(
                    f"{node.attr_path} needs an RFC 3339 date-time, got {value!r}"
                ) from None
        if kind in ("integer", "decimal"):
            if isinstance(value, bool) or not isinstance(value, int | float) or op in _TEXT_MATCH:
                raise ScimError.invalid_filter(f"{node.attr_path} needs a number")
            return value
        if not isinstance(value, str):  # string, reference, binary
            raise ScimError.invalid_filter(
                f"{node.attr_path} is a string: compare it with a quoted value, got {value!r}"
            )
        if "\x00" in value:  # no stored value holds one, and PostgreSQL text cannot
            raise ScimError.invalid_filter(f"{node.attr_path}: a value cannot contain NUL")
        if kind == "binary" and op in _ORDERING:
            raise ScimError.invalid_filter(f"{op.value} does not apply to binary {node.attr_path}")
        return value


def _no_date() -> datetime:
    raise ValueError
