"""Form fields -> service arguments: a size-capped url-encoded body, and field checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.requests import Request

from muster.errors import ScimError

# The largest form is pasted SAML metadata (capped at 256 KiB once decoded); url-encoding can
# triple it. Anything larger is refused before it is read into memory.
MAX_FORM_BYTES = 1024 * 1024
MAX_FIELDS = 50


class FormTooLarge(Exception):
    """The body is larger than MAX_FORM_BYTES."""


async def read_form(request: Request, max_bytes: int = MAX_FORM_BYTES) -> dict[str, str]:
    """Read an application/x-www-form-urlencoded body; the last value of a repeated field wins."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FormTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise FormTooLarge
        chunks.append(chunk)
    body = b"".join(chunks).decode("utf-8", errors="replace")
    try:
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError as error:  # too many fields
        raise FormTooLarge from error
    return dict(pairs)


@dataclass
class UserForm:
    """The "Create a local user" form."""

    email: str = ""
    given_name: str = ""
    family_name: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, form: dict[str, str]) -> UserForm:
        made = cls(
            email=form.get("email", "").strip(),
            given_name=form.get("given_name", "").strip(),
            family_name=form.get("family_name", "").strip(),
        )
        local, at, domain = made.email.rpartition("@")
        if not made.email:
            made.errors["email"] = "Enter the person's email address."
        elif not (at and local and "." in domain) or " " in made.email:
            made.errors["email"] = "Enter an email address like name@example.com."
        if not made.given_name:
            made.errors["given_name"] = "Enter a first name."
        if not made.family_name:
            made.errors["family_name"] = "Enter a last name."
        return made

    def place(self, error: ScimError) -> None:
        """Put a service's refusal next to the field it names, or at the top of the form."""
        detail = error.detail
        if detail.startswith("name.givenName"):
            self.errors["given_name"] = detail
        elif detail.startswith("name.familyName"):
            self.errors["family_name"] = detail
        elif "email" in detail or "userName" in detail:
            self.errors["email"] = detail
        else:
            self.errors["form"] = detail
