"""Refusal codes of a sign-in: why a SAML response or a person was turned away."""

from __future__ import annotations

from enum import StrEnum


class Refusal(StrEnum):
    """A sign-in refusal; the code is shown to the person and kept in the sign-in log."""

    # The SAML response itself (saml/assertions.py)
    SAML_NOT_CONFIGURED = "SAML_NOT_CONFIGURED"
    RESPONSE_TOO_LARGE = "RESPONSE_TOO_LARGE"
    MALFORMED_RESPONSE = "MALFORMED_RESPONSE"
    DOCTYPE_REFUSED = "DOCTYPE_REFUSED"
    UNSIGNED = "UNSIGNED"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    WEAK_ALGORITHM = "WEAK_ALGORITHM"
    WRONG_ISSUER = "WRONG_ISSUER"
    WRONG_AUDIENCE = "WRONG_AUDIENCE"
    WRONG_RECIPIENT = "WRONG_RECIPIENT"
    EXPIRED = "EXPIRED"
    NOT_YET_VALID = "NOT_YET_VALID"
    IDP_ERROR = "IDP_ERROR"
    MISSING_EMAIL = "MISSING_EMAIL"
    # Application state checked by services/sign_in.py
    UNKNOWN_REQUEST = "UNKNOWN_REQUEST"
    REPLAYED = "REPLAYED"
    # The decision about the person (services/sign_in.py)
    LICENSE_LIMIT = "LICENSE_LIMIT"
    USER_DEACTIVATED = "USER_DEACTIVATED"
    NOT_IN_ACCESS_GROUPS = "NOT_IN_ACCESS_GROUPS"
    IDENTITY_CONFLICT = "IDENTITY_CONFLICT"


class SamlRefusal(Exception):
    """A sign-in refused with a code; `detail` is for the sign-in log, never a raw assertion."""

    def __init__(self, code: Refusal, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else str(code))
        self.code, self.detail = code, detail
