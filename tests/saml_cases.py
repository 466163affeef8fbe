"""The refusal matrix: each case builds one bad SAMLResponse for an SP and names its code.

Shared by the unit tests (saml/assertions.py alone) and the ACS tests over HTTP, so both
layers see the same attacks. XSW cases start from an assertion-only signature (where nothing
signs the Response around it), which is the shape wrapping attacks need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from muster.saml.assertions import MAX_RESPONSE_BYTES
from muster.saml.refusals import Refusal
from muster.saml.service_provider import ServiceProvider
from tests import saml_idp as idp

EVIL = "eve@evil.example"


def spec_for(sp: ServiceProvider, **overrides: object) -> idp.ResponseSpec:
    values: dict[str, object] = {"acs_url": sp.acs_url, "audience": sp.entity_id}
    values.update(overrides)
    return idp.ResponseSpec(**values)  # type: ignore[arg-type]


def signed(sp: ServiceProvider, **overrides: object) -> bytes:
    return idp.sign(idp.response_xml(spec_for(sp, **overrides)))


def assertion_signed(sp: ServiceProvider, **overrides: object) -> bytes:
    return idp.sign(idp.response_xml(spec_for(sp, **overrides)), response=False)


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[ServiceProvider], str]  # the SAMLResponse form field
    code: Refusal


def _b64(build: Callable[[ServiceProvider], bytes]) -> Callable[[ServiceProvider], str]:
    return lambda sp: idp.encode(build(sp))


REFUSALS = [
    Case("unsigned", _b64(lambda sp: idp.response_xml(spec_for(sp)).encode()), Refusal.UNSIGNED),
    Case(
        "signatures stripped",
        _b64(lambda sp: idp.strip_signatures(signed(sp))),
        Refusal.UNSIGNED,
    ),
    Case(
        "signed by another key",
        _b64(lambda sp: idp.sign(idp.response_xml(spec_for(sp)), idp.attacker_key())),
        Refusal.BAD_SIGNATURE,
    ),
    Case(
        "attribute tampered after signing",
        _b64(lambda sp: idp.tamper_text(assertion_signed(sp), ">Ann<", ">Eve<")),
        Refusal.BAD_SIGNATURE,
    ),
    Case(
        "email tampered after signing (response and assertion signed)",
        _b64(lambda sp: idp.tamper_text(signed(sp), "ann.lee@example.com", EVIL)),
        Refusal.BAD_SIGNATURE,
    ),
    Case(
        "XSW3 evil assertion before the signed one",
        _b64(lambda sp: idp.xsw_evil_assertion_before(assertion_signed(sp), EVIL)),
        Refusal.MALFORMED_RESPONSE,
    ),
    Case(
        "XSW3 evil assertion with the same ID",
        _b64(lambda sp: idp.xsw_evil_assertion_before(assertion_signed(sp), EVIL, new_id=False)),
        Refusal.MALFORMED_RESPONSE,
    ),
    Case(
        "XSW4 evil assertion wrapping the signed one",
        _b64(lambda sp: idp.xsw_evil_assertion_wrapping(assertion_signed(sp), EVIL)),
        Refusal.MALFORMED_RESPONSE,
    ),
    Case(
        "XSW7 signed assertion hidden in Extensions",
        _b64(lambda sp: idp.xsw_signed_assertion_in_extensions(assertion_signed(sp), EVIL)),
        Refusal.MALFORMED_RESPONSE,
    ),
    Case(
        "XSW8 signature moved, original inside ds:Object",
        _b64(lambda sp: idp.xsw_signature_moved_to_evil_copy(assertion_signed(sp), EVIL)),
        Refusal.MALFORMED_RESPONSE,
    ),
    Case(
        "signature copied onto an evil assertion with the same ID",
        _b64(lambda sp: idp.xsw_signature_copied_onto_evil_assertion(assertion_signed(sp), EVIL)),
        Refusal.BAD_SIGNATURE,
    ),
    Case(
        "XSW1 evil response wrapping the signed one",
        _b64(
            lambda sp: idp.xsw_response_wrapping(
                idp.sign(idp.response_xml(spec_for(sp)), assertion=False), EVIL
            )
        ),
        Refusal.MALFORMED_RESPONSE,
    ),
    Case(
        "wrong audience",
        _b64(lambda sp: signed(sp, audience="https://other.example/sp")),
        Refusal.WRONG_AUDIENCE,
    ),
    Case("missing audience", _b64(lambda sp: signed(sp, audience=None)), Refusal.WRONG_AUDIENCE),
    Case(
        "wrong recipient",
        _b64(lambda sp: signed(sp, recipient="https://evil.example/acs")),
        Refusal.WRONG_RECIPIENT,
    ),
    Case(
        "recipient is the ACS URL plus a suffix",
        _b64(lambda sp: signed(sp, recipient=sp.acs_url + "/x")),
        Refusal.WRONG_RECIPIENT,
    ),
    Case(
        "wrong destination",
        _b64(lambda sp: signed(sp, destination="https://evil.example/acs")),
        Refusal.WRONG_RECIPIENT,
    ),
    Case(
        "wrong issuer, right key",
        _b64(lambda sp: signed(sp, issuer="http://www.okta.com/exkOTHER")),
        Refusal.WRONG_ISSUER,
    ),
    Case(
        "expired beyond the skew",
        _b64(lambda sp: signed(sp, not_on_or_after=timedelta(minutes=-3))),
        Refusal.EXPIRED,
    ),
    Case(
        "not yet valid beyond the skew",
        _b64(lambda sp: signed(sp, not_before=timedelta(minutes=3))),
        Refusal.NOT_YET_VALID,
    ),
    Case(
        "RSA-SHA1 signature",
        _b64(lambda sp: idp.sign(idp.response_xml(spec_for(sp)), sha1=True)),
        Refusal.WEAK_ALGORITHM,
    ),
    Case(
        "DOCTYPE with an entity",
        _b64(lambda sp: idp.with_doctype(signed(sp))),
        Refusal.DOCTYPE_REFUSED,
    ),
    Case("oversized", lambda sp: "A" * (MAX_RESPONSE_BYTES + 1), Refusal.RESPONSE_TOO_LARGE),
    Case("not base64 XML", lambda sp: "bm90IHhtbA==", Refusal.MALFORMED_RESPONSE),
]
