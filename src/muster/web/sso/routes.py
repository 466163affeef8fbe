"""/sso/{tenant}/login, /acs, /metadata; the signed-in person's session and refusal pages.

The tenant comes from the URL slug; its SP entity ID and ACS URL name the same slug, so an
assertion Okta issued for one tenant fails the audience check at another. The session cookie is
an unguessable secret whose SHA-256 names a database row (like the console's); every request
re-checks that row's user, so a deactivation or deletion ends the session at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from muster.errors import ScimError
from muster.saml import service_provider
from muster.saml.assertions import MAX_RESPONSE_BYTES
from muster.saml.refusals import Refusal, SamlRefusal
from muster.services import sign_in, sign_in_log
from muster.services.clock import utcnow
from muster.services.sign_in import SsoTenant
from muster.web.console.forms import FormTooLarge, read_form
from muster.web.templates import template_environment, with_retry_after
from muster.web.wiring import Wiring

P = ParamSpec("P")
R = TypeVar("R")

HERE = Path(__file__).parent
ROOT = "/sso"
SESSION_COOKIE = "muster_sso"
# A url-encoded base64 field grows a little ('+', '/' and '=' become %XX); the field itself is
# capped at MAX_RESPONSE_BYTES by saml/assertions.py, this caps the body before it is read.
MAX_ACS_BODY = 2 * MAX_RESPONSE_BYTES
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
ADMIN_LOG = "Console → Sign-in log shows this attempt with its time and email address."


@dataclass(frozen=True, slots=True)
class Explanation:
    """What a refusal code means to the person, and what their administrator should do."""

    title: str
    meaning: str
    action: str


def _bad_response(meaning: str) -> Explanation:
    return Explanation(
        "Sign-in refused",
        meaning,
        "Check the Okta application's SAML settings against Console → Settings → Identity "
        f"Providers → SAML. {ADMIN_LOG}",
    )


EXPLANATIONS: dict[Refusal, Explanation] = {
    Refusal.NOT_IN_ACCESS_GROUPS: Explanation(
        "You are not in an access group",
        "This account lets only members of its access groups sign in, and you are in none of "
        "them (neither in Muster's groups nor in the groups Okta sent).",
        "In the console: Settings → Identity Providers → the lock icon (Access groups) → add a "
        "group you belong to, or clear the list so that everyone may sign in.",
    ),
    Refusal.LICENSE_LIMIT: Explanation(
        "No seat is free",
        "You would be a new user, but every seat of this account is in use.",
        "Deactivate a user who no longer needs access (in Okta, or Console → Users), or buy "
        "more seats; then sign in again.",
    ),
    Refusal.USER_DEACTIVATED: Explanation(
        "Your user is deactivated",
        "Muster knows your email address, but your user is deactivated.",
        "Reactivate the user: assign the Okta application to the person again (Okta pushes "
        "active=true), or delete the user in Console → Users to let them sign in afresh.",
    ),
    Refusal.IDENTITY_CONFLICT: Explanation(
        "Your identity is already taken",
        "Another user already holds your email address or user name.",
        "Find that user in Console → Users; delete it if it is an old record of this person.",
    ),
    Refusal.MISSING_EMAIL: _bad_response(
        "Okta's answer carried no usable email address (Name ID or the email attribute)."
    ),
    Refusal.SAML_NOT_CONFIGURED: Explanation(
        "Single sign-on is not set up",
        "This account has no identity provider configured yet.",
        "In the console: Settings → Identity Providers → SAML → paste Okta's IdP metadata.",
    ),
    Refusal.RESPONSE_TOO_LARGE: _bad_response("Okta's answer was larger than Muster accepts."),
    Refusal.MALFORMED_RESPONSE: _bad_response(
        "Okta's answer was not the single signed SAML assertion Muster expects."
    ),
    Refusal.DOCTYPE_REFUSED: _bad_response("Okta's answer contained a DOCTYPE, which is refused."),
    Refusal.UNSIGNED: _bad_response("Okta's answer was not signed."),
    Refusal.BAD_SIGNATURE: Explanation(
        "Sign-in refused",
        "The signature on Okta's answer does not match the identity provider's certificate.",
        "If Okta's signing certificate changed, paste the new IdP metadata in Console → "
        f"Settings → Identity Providers → SAML. {ADMIN_LOG}",
    ),
    Refusal.WEAK_ALGORITHM: _bad_response(
        "Okta's answer was signed with SHA-1, which is refused; Okta signs with SHA-256 by default."
    ),
    Refusal.WRONG_ISSUER: _bad_response("Okta's answer came from another identity provider."),
    Refusal.WRONG_AUDIENCE: _bad_response(
        "Okta's answer was not meant for this account (the Audience URI differs or is missing)."
    ),
    Refusal.WRONG_RECIPIENT: _bad_response(
        "Okta's answer was addressed to another URL (its Single sign-on URL differs)."
    ),
    Refusal.EXPIRED: Explanation(
        "Sign-in expired",
        "Okta's answer arrived too late (or the clocks differ by more than two minutes).",
        f"Try again. If it repeats, check the server's clock. {ADMIN_LOG}",
    ),
    Refusal.NOT_YET_VALID: Explanation(
        "Sign-in not valid yet",
        "Okta's answer is dated in the future by more than two minutes.",
        f"Check the server's clock (NTP). {ADMIN_LOG}",
    ),
    Refusal.IDP_ERROR: Explanation(
        "Okta did not sign you in",
        "Okta answered with an error instead of an assertion.",
        "Check the application's assignment and sign-on policy in Okta.",
    ),
    Refusal.UNKNOWN_REQUEST: Explanation(
        "Sign-in expired",
        "Okta answered a sign-in request Muster does not know, or one that was already used.",
        "Start again from the sign-in page; the request is valid for 10 minutes and only once.",
    ),
    Refusal.REPLAYED: Explanation(
        "Sign-in already used",
        "This answer from Okta was already used once and cannot be used again.",
        f"Start again from the sign-in page. {ADMIN_LOG}",
    ),
}
STATUS = {
    Refusal.SAML_NOT_CONFIGURED: 404,
    Refusal.RESPONSE_TOO_LARGE: 413,
    Refusal.MALFORMED_RESPONSE: 400,
    Refusal.DOCTYPE_REFUSED: 400,
}


class SsoPages:
    """The SSO pages' templates and their handle on the services."""

    def __init__(self, wiring: Wiring) -> None:
        self.wiring = wiring
        self.env = template_environment(HERE / "templates")

    def base_url(self, request: Request) -> str:
        """MUSTER_PUBLIC_URL, else the request's own: the SP entity ID and ACS URL build on it."""
        configured = self.wiring.settings.public_url
        if configured:
            return configured.rstrip("/")
        return f"{request.url.scheme}://{request.url.netloc}"

    def render(
        self, template: str, tenant: SsoTenant | None, *, status: int = 200, **context: Any
    ) -> Response:
        base = f"{ROOT}/{tenant.slug}" if tenant else ROOT
        html = self.env.get_template(template).render(tenant=tenant, base=base, **context)
        headers = with_retry_after(SECURITY_HEADERS, status)
        return HTMLResponse(html, status_code=status, headers=headers)

    def refused(self, tenant: SsoTenant | None, code: Refusal) -> Response:
        return self.render(
            "refused.html",
            tenant,
            status=STATUS.get(code, 403),
            code=code.value,
            explanation=EXPLANATIONS[code],
        )

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a service call (a SAML check, a database call) in the blocking pool."""
        return await self.wiring.blocking.run(fn, *args, **kwargs)

    async def tenant(self, request: Request) -> SsoTenant | None:
        try:
            return await self.run(
                sign_in.sso_tenant,
                self.wiring.uow_factory(None),
                request.path_params["tenant"],
                self.base_url(request),
            )
        except ScimError as error:
            if error.status != 404:
                raise  # the database is down (503): not an unknown account
            return None


def _pages(request: Request) -> SsoPages:
    pages: SsoPages = request.app.state.sso
    return pages


def _no_tenant(pages: SsoPages) -> Response:
    return pages.render(
        "refused.html",
        None,
        status=404,
        code="UNKNOWN_ACCOUNT",
        explanation=Explanation(
            "Unknown account",
            "No account has this sign-in address.",
            "Check the address of the Okta application's Single sign-on URL.",
        ),
    )


def _set_session(request: Request, response: Response, tenant: SsoTenant, secret: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        path=f"{ROOT}/{tenant.slug}",
        httponly=True,  # never readable by a script, so an XSS cannot steal it
        samesite="lax",  # not sent on cross-site POSTs
        secure=_pages(request).base_url(request).startswith("https://"),
        max_age=int(sign_in.SESSION_LIFETIME.total_seconds()),
    )


async def metadata(request: Request) -> Response:
    """GET /sso/{tenant}/metadata: the SP metadata XML to give Okta."""
    pages = _pages(request)
    tenant = await pages.tenant(request)
    if tenant is None:
        return _no_tenant(pages)
    xml = service_provider.metadata_xml(tenant.sp)
    return Response(xml, media_type="application/samlmetadata+xml")


async def home(request: Request) -> Response:
    """GET /sso/{tenant}/: the signed-in page, or the "Sign in with Okta" button."""
    pages = _pages(request)
    tenant = await pages.tenant(request)
    if tenant is None:
        return _no_tenant(pages)
    person = await pages.run(
        sign_in.current_person,
        pages.wiring.uow_factory(tenant.tenant_id),
        request.cookies.get(SESSION_COOKIE),
    )
    if person is None:
        response = pages.render("start.html", tenant, status=200)
        if request.cookies.get(SESSION_COOKIE):
            response.delete_cookie(SESSION_COOKIE, path=f"{ROOT}/{tenant.slug}")
        return response
    return pages.render("signed_in.html", tenant, person=person)


async def login(request: Request) -> Response:
    """GET /sso/{tenant}/login: SP-initiated sign-in, an AuthnRequest by HTTP-Redirect."""
    pages = _pages(request)
    tenant = await pages.tenant(request)
    if tenant is None:
        return _no_tenant(pages)
    try:
        url = await pages.run(
            sign_in.start_sign_in, pages.wiring.uow_factory(tenant.tenant_id), tenant
        )
    except SamlRefusal as refusal:
        return pages.refused(tenant, refusal.code)
    return RedirectResponse(url, status_code=302)


async def acs(request: Request) -> Response:
    """POST /sso/{tenant}/acs: the SAMLResponse (HTTP-POST binding), SP- or IdP-initiated."""
    pages = _pages(request)
    tenant = await pages.tenant(request)
    if tenant is None:
        return _no_tenant(pages)
    uow = pages.wiring.uow_factory(tenant.tenant_id)
    try:
        form = await read_form(request, max_bytes=MAX_ACS_BODY)
    except FormTooLarge:
        await pages.run(
            sign_in_log.record_attempt,
            uow,
            at=utcnow(),
            email=None,
            code=Refusal.RESPONSE_TOO_LARGE,
            detail="the form body is over the cap",
            flow="idp",
        )
        return pages.refused(tenant, Refusal.RESPONSE_TOO_LARGE)
    try:
        admitted = await pages.run(
            sign_in.sign_in_with_response, uow, tenant, form.get("SAMLResponse", "")
        )
    except SamlRefusal as refusal:
        return pages.refused(tenant, refusal.code)
    # RelayState is ignored on purpose: redirecting to it would be an open redirect.
    response = RedirectResponse(f"{ROOT}/{tenant.slug}/", status_code=303)
    _set_session(request, response, tenant, admitted.secret)
    return response


async def sign_out(request: Request) -> Response:
    """POST /sso/{tenant}/sign-out: end the session."""
    pages = _pages(request)
    tenant = await pages.tenant(request)
    if tenant is None:
        return _no_tenant(pages)
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        await pages.run(sign_in.sign_out, pages.wiring.uow_factory(tenant.tenant_id), secret)
    response = pages.render("signed_out.html", tenant)
    response.delete_cookie(SESSION_COOKIE, path=f"{ROOT}/{tenant.slug}")
    return response


def sso_routes() -> list[BaseRoute]:
    """The /sso routes; the app sets `state.sso` (see attach_sso)."""
    return [
        Mount(
            ROOT,
            routes=[
                Route("/{tenant}/", home, methods=["GET"]),
                Route("/{tenant}/metadata", metadata, methods=["GET"]),
                Route("/{tenant}/login", login, methods=["GET"]),
                Route("/{tenant}/acs", acs, methods=["POST"]),
                Route("/{tenant}/sign-out", sign_out, methods=["POST"]),
            ],
        )
    ]


def attach_sso(state: Any, wiring: Wiring) -> None:
    """Give the SSO handlers their templates and services (app.state.sso)."""
    state.sso = SsoPages(wiring)
