"""The console's pages under /console: sign-in, Identity Providers, users, groups and the log.

Every page resolves the admin's session from its cookie; the tenant comes from that session
and never from the URL or a form. Every POST carries the session's CSRF token (or, before
sign-in, a double-submit cookie) and is refused without it. Services run in the thread pool:
they are synchronous, and argon2 takes tens of milliseconds on purpose (web/blocking.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from muster.errors import ScimError
from muster.scim.resources import identity_email
from muster.services import (
    admin_sessions,
    admins,
    api_tokens,
    groups,
    identity_providers,
    provisioning_log,
    sign_in_log,
    users,
)
from muster.services.admin_sessions import AdminSession
from muster.services.database import UnitOfWork
from muster.web.console.forms import FormTooLarge, UserForm, read_form
from muster.web.templates import template_environment, with_retry_after
from muster.web.wiring import Wiring

HERE = Path(__file__).parent
ROOT = "/console"
SESSION_COOKIE = "muster_console"
# Before sign-in there is no session to hold a CSRF token: a double-submit cookie does.
PRE_SESSION_COOKIE = "muster_console_csrf"
IDP_PAGE = f"{ROOT}/settings/identity-providers"
SCIM_PAGE = f"{IDP_PAGE}/scim"
ACCESS_PAGE = f"{IDP_PAGE}/access-groups"
SAML_PAGE = f"{IDP_PAGE}/saml"
EVENTS_API_PAGE = f"{ROOT}/settings/events-api"

# Feedback after a redirect: a fixed key in the URL, never free text a link could inject.
NOTICES = {
    "signed_out": "You have signed out.",
    "password_set": "Your password is set. Sign in with it now.",
    "scim_on": "SCIM provisioning is on.",
    "scim_on_no_token": "SCIM provisioning is on. Open Settings and generate a token for Okta.",
    "scim_off": "SCIM provisioning is off. Okta's requests are refused until you turn it on.",
    "token_closed": "The token is hidden for good. If it is lost, generate a new one.",
    "access_added": "Access group added. Only members of the access groups may sign in.",
    "access_removed": "Access group removed.",
    "access_cleared": "No access groups: everyone in this account may sign in.",
    "saml_saved": "SAML settings saved.",
    "saml_removed": "SAML settings removed.",
    "saml_attributes_saved": "Attribute names saved; the next sign-in reads them.",
    "events_key_closed": "The key is hidden for good. If it is lost, generate a new one.",
    "events_key_revoked": "The events API key is revoked; requests with it are refused.",
    "events_key_none": "There was no events API key to revoke.",
    "webhook_secret_closed": "The signing secret is hidden for good. If it is lost, remove the "
    "endpoint and add a new one.",
    "webhook_paused": "Endpoint paused: nothing is sent to it; its events wait until it is "
    "enabled again.",
    "webhook_enabled": "Endpoint enabled: it catches up on the events since it was paused.",
    "webhook_removed": "Endpoint removed, with its delivery log.",
    "webhook_redelivered": "The event is queued to be sent again.",
    "webhook_dead_redelivered": "Every dead delivery is queued to be sent again.",
    "webhook_no_dead": "There were no dead deliveries to send again.",
    "user_created": "Local user created.",
    "user_deleted": "User deleted; their seat is free.",
    "member_added": "Added to the group by hand. An Okta push will never remove this membership.",
    "member_removed": "Removed from the group.",
}
# Security headers on every console page. No inline script or style: the CSP allows only ours.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # set-password tokens travel in URLs
    "Cache-Control": "no-store",  # pages show tokens and people's data
}

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Page:
    """One console request: the admin's session, the submitted form, and how to answer."""

    request: Request
    console: Console
    session: AdminSession
    form: dict[str, str] = field(default_factory=dict)

    @property
    def uow(self) -> UnitOfWork:
        """The signed-in admin's tenant's unit of work (the only tenant they can reach)."""
        return self.console.wiring.uow_factory(self.session.tenant_id)

    def render(self, template: str, *, status: int = 200, **context: Any) -> Response:
        return self.console.render(
            self.request, template, status=status, session=self.session, **context
        )

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a service call in the blocking pool, counted in this tenant's share."""
        return await self.console.wiring.blocking.run_for(
            self.session.tenant_id, fn, *args, **kwargs
        )

    def param(self, name: str) -> str:
        return self.request.query_params.get(name, "")

    def page_number(self) -> int:
        value = self.param("page")
        return int(value) if value.isdigit() and 0 < len(value) < 8 else 1


class Console:
    """The console's templates and its handle on the services."""

    def __init__(self, wiring: Wiring) -> None:
        self.wiring = wiring
        self.env = template_environment(HERE / "templates")
        self.env.filters["when"] = _when
        self.env.filters["email_of"] = _email_of
        self.env.filters["name_of"] = _name_of

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a service call (or argon2) in the blocking pool, never on the event loop."""
        return await self.wiring.blocking.run(fn, *args, **kwargs)

    def base_url(self, request: Request) -> str:
        """The URL admins and Okta reach Muster at: MUSTER_PUBLIC_URL, else the request's."""
        configured = self.wiring.settings.public_url
        if configured:
            return configured.rstrip("/")
        return f"{request.url.scheme}://{request.url.netloc}"

    def is_https(self, request: Request) -> bool:
        return request.url.scheme == "https" or self.base_url(request).startswith("https://")

    def render(
        self,
        request: Request,
        template: str,
        *,
        status: int = 200,
        session: AdminSession | None = None,
        **context: Any,
    ) -> Response:
        notice = NOTICES.get(request.query_params.get("notice", ""))
        html = self.env.get_template(template).render(
            request=request,
            session=session,
            csrf_token=session.csrf_token if session else context.pop("pre_csrf", ""),
            notice=notice,
            path=request.url.path,
            root=ROOT,
            **context,
        )
        headers = with_retry_after(SECURITY_HEADERS, status)
        return HTMLResponse(html, status_code=status, headers=headers)

    def set_cookie(self, request: Request, response: Response, name: str, value: str) -> None:
        response.set_cookie(
            name,
            value,
            path=ROOT,
            httponly=True,  # never readable by a script, so an XSS cannot steal it
            samesite="lax",  # not sent on cross-site POSTs; CSRF tokens guard the rest
            secure=self.is_https(request),
        )


def _when(value: Any) -> str:
    if value is None:
        return "never"
    return f"{value:%Y-%m-%d %H:%M} UTC"


def _email_of(document: dict[str, Any]) -> str:
    return identity_email(document) or str(document.get("userName", ""))


def _name_of(document: dict[str, Any]) -> str:
    name = document.get("name") or {}
    full = " ".join(p for p in (name.get("givenName"), name.get("familyName")) if p)
    return str(document.get("displayName") or full or document.get("userName", ""))


def redirect(path: str, notice: str | None = None) -> RedirectResponse:
    if notice:
        path += ("&" if "?" in path else "?") + urlencode({"notice": notice})
    return RedirectResponse(path, status_code=303)


def signed_in(
    handler: Callable[[Page], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Resolve the session (or send to sign-in) and check the CSRF token of every POST."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        console: Console = request.app.state.console
        secret = request.cookies.get(SESSION_COOKIE)
        session = await console.run(
            admin_sessions.current_session, console.wiring.uow_factory(None), secret
        )
        if session is None:
            if request.method == "POST":
                return console.render(
                    request,
                    "error.html",
                    status=401,
                    title="Signed out",
                    message="Your session has ended. Sign in again and repeat the action.",
                )
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return redirect(f"{ROOT}/sign-in?next={quote(target)}")
        form: dict[str, str] = {}
        if request.method == "POST":
            try:
                form = await read_form(request)
            except FormTooLarge:
                return console.render(
                    request,
                    "error.html",
                    status=413,
                    session=session,
                    title="Too large",
                    message="The form was larger than the console accepts (1 MiB).",
                )
            if not admin_sessions.csrf_is_valid(session, form.get("csrf_token")):
                return console.render(
                    request,
                    "error.html",
                    status=403,
                    session=session,
                    title="Refused",
                    message="The form's security token is missing or out of date. Reload the "
                    "page and try again.",
                )
        page = Page(request, console, session, form)
        try:
            return await handler(page)
        except ScimError as error:
            if error.status == 503:
                raise  # the database cannot serve now: the site's own page says so (app.py)
            # A refusal the handler did not place next to a form: its own page, its status.
            title = "Not found" if error.status == 404 else "Not done"
            return page.render("error.html", status=error.status, title=title, message=error.detail)

    return endpoint


def _safe_next(value: str) -> str:
    # Only a path inside the console: never an open redirect to another site.
    if value.startswith(f"{ROOT}/") and not value.startswith("//") and "\\" not in value:
        return value
    return IDP_PAGE


# -- sign-in, set-password, sign-out ----------------------------------------------------------


def _pre_session_form(
    console: Console, request: Request, template: str, *, status: int = 200, **context: Any
) -> Response:
    token = request.cookies.get(PRE_SESSION_COOKIE) or secrets.token_urlsafe(32)
    response = console.render(request, template, status=status, pre_csrf=token, **context)
    console.set_cookie(request, response, PRE_SESSION_COOKIE, token)
    return response


async def _pre_session_post(request: Request) -> dict[str, str] | None:
    """The submitted form when its CSRF field matches the double-submit cookie, else None."""
    try:
        form = await read_form(request, max_bytes=16 * 1024)
    except FormTooLarge:
        return None
    cookie = request.cookies.get(PRE_SESSION_COOKIE, "")
    submitted = form.get("csrf_token", "")
    if not cookie or not secrets.compare_digest(cookie, submitted):
        return None
    return form


async def sign_in_page(request: Request) -> Response:
    console: Console = request.app.state.console
    next_path = _safe_next(request.query_params.get("next", ""))
    if request.method == "GET":
        return _pre_session_form(console, request, "sign_in.html", next_path=next_path, email="")
    form = await _pre_session_post(request)
    if form is None:
        return _pre_session_form(
            console,
            request,
            "sign_in.html",
            status=403,
            next_path=next_path,
            email="",
            error="The form's security token is missing or out of date. Try again.",
        )
    email = form.get("email", "")
    next_path = _safe_next(form.get("next", ""))
    try:
        opened = await console.run(
            admin_sessions.sign_in,
            console.wiring.uow_factory(None),
            email,
            form.get("password", ""),
        )
    except ScimError as error:
        return _pre_session_form(
            console,
            request,
            "sign_in.html",
            status=error.status,
            next_path=next_path,
            email=email,
            error=error.detail[0].upper() + error.detail[1:] + ".",
        )
    response = redirect(next_path)
    console.set_cookie(request, response, SESSION_COOKIE, opened.secret)
    response.delete_cookie(PRE_SESSION_COOKIE, path=ROOT)
    return response


async def set_password_page(request: Request) -> Response:
    console: Console = request.app.state.console
    uow = console.wiring.uow_factory(None)
    if request.method == "GET":
        token = request.query_params.get("token", "")
        try:
            email = await console.run(admins.setup_account, uow, token)
        except ScimError as error:
            return console.render(
                request, "error.html", status=404, title="Link not valid", message=error.detail
            )
        return _pre_session_form(console, request, "set_password.html", token=token, email=email)
    form = await _pre_session_post(request)
    token = (form or {}).get("token", "")
    if form is None:
        return console.render(
            request,
            "error.html",
            status=403,
            title="Refused",
            message="The form's security token is missing or out of date. Open the link again.",
        )
    try:
        await console.run(
            admins.set_password, uow, token, form.get("password", ""), form.get("confirm", "")
        )
    except ScimError as error:
        if error.status == 404:
            return console.render(
                request, "error.html", status=404, title="Link not valid", message=error.detail
            )
        email = await console.run(admins.setup_account, uow, token)
        return _pre_session_form(
            console,
            request,
            "set_password.html",
            status=400,
            token=token,
            email=email,
            error=error.detail[0].upper() + error.detail[1:] + ".",
        )
    response = redirect(f"{ROOT}/sign-in", "password_set")
    response.delete_cookie(PRE_SESSION_COOKIE, path=ROOT)
    return response


@signed_in
async def sign_out(page: Page) -> Response:
    secret = page.request.cookies.get(SESSION_COOKIE, "")
    await page.run(admin_sessions.sign_out, page.console.wiring.uow_factory(None), secret)
    response = redirect(f"{ROOT}/sign-in", "signed_out")
    response.delete_cookie(SESSION_COOKIE, path=ROOT)
    return response


async def home(request: Request) -> Response:
    return redirect(IDP_PAGE)


# -- Settings → Platform events API -----------------------------------------------------------


async def _render_events_api(page: Page, *, status: int = 200, **context: Any) -> Response:
    key = await page.run(api_tokens.current_events_key, page.uow)
    base = page.console.base_url(page.request)
    return page.render(
        "settings/events_api.html",
        status=status,
        key=key,
        events_url=f"{base}/api/v1/events",
        **context,
    )


@signed_in
async def events_api_page(page: Page) -> Response:
    return await _render_events_api(page)


@signed_in
async def generate_events_key(page: Page) -> Response:
    current = await page.run(api_tokens.current_events_key, page.uow)
    if current is not None and page.form.get("confirm") != "yes":
        # The old key stops working the moment a new one exists: say so before doing it.
        return await _render_events_api(page, confirm_regenerate=True)
    issued = await page.run(api_tokens.issue_events_key, page.uow, page.session.tenant_slug)
    # Rendered straight into this response and never stored: the only time it is shown.
    return await _render_events_api(page, issued=issued)


@signed_in
async def revoke_events_key(page: Page) -> Response:
    revoked = await page.run(api_tokens.revoke_events_key, page.uow, page.session.tenant_slug)
    return redirect(EVENTS_API_PAGE, "events_key_revoked" if revoked else "events_key_none")


# -- Settings → Identity Providers ------------------------------------------------------------


def _sp_urls(page: Page) -> dict[str, str]:
    base = page.console.base_url(page.request)
    slug = page.session.tenant_slug
    return {
        "scim_base_url": f"{base}/scim/v2",
        "acs_url": f"{base}/sso/{slug}/acs",
        "sp_entity_id": f"{base}/sso/{slug}/metadata",
        "sp_metadata_url": f"{base}/sso/{slug}/metadata",
        "sso_sign_in_url": f"{base}/sso/{slug}/",
    }


async def _render_idp(page: Page, template: str, *, status: int = 200, **context: Any) -> Response:
    settings = await page.run(identity_providers.identity_provider_settings, page.uow)
    return page.render(template, status=status, settings=settings, **_sp_urls(page), **context)


@signed_in
async def identity_providers_page(page: Page) -> Response:
    return await _render_idp(page, "settings/identity_providers.html")


@signed_in
async def scim_on(page: Page) -> Response:
    try:
        token = await page.run(api_tokens.turn_scim_on, page.uow, page.session.tenant_slug)
    except ScimError as error:
        return await _render_idp(
            page, "settings/identity_providers.html", status=error.status, error=error.detail
        )
    return redirect(IDP_PAGE, "scim_on" if token else "scim_on_no_token")


@signed_in
async def scim_off(page: Page) -> Response:
    await page.run(api_tokens.turn_scim_off, page.uow, page.session.tenant_slug)
    return redirect(IDP_PAGE, "scim_off")


@signed_in
async def scim_settings_page(page: Page) -> Response:
    return await _render_idp(page, "settings/scim.html")


@signed_in
async def generate_token(page: Page) -> Response:
    current = await page.run(api_tokens.current_token, page.uow)
    if current is not None and page.form.get("confirm") != "yes":
        # The old token stops working the moment a new one exists: say so before doing it.
        return await _render_idp(page, "settings/scim.html", confirm_regenerate=True)
    try:
        issued = await page.run(api_tokens.issue_scim_token, page.uow, page.session.tenant_slug)
    except ScimError as error:
        return await _render_idp(
            page, "settings/scim.html", status=error.status, error=error.detail
        )
    # Rendered straight into this response and never stored: the only time it is shown.
    return await _render_idp(page, "settings/scim.html", issued=issued)


@signed_in
async def access_groups_page(page: Page) -> Response:
    return await _render_idp(page, "settings/access_groups.html")


@signed_in
async def add_access_group(page: Page) -> Response:
    name = page.form.get("group", "")
    try:
        await page.run(identity_providers.add_access_group, page.uow, name)
    except ScimError as error:
        return await _render_idp(
            page, "settings/access_groups.html", status=400, error=error.detail, group=name
        )
    return redirect(ACCESS_PAGE, "access_added")


@signed_in
async def remove_access_group(page: Page) -> Response:
    await page.run(
        identity_providers.remove_access_group, page.uow, page.request.path_params["group_id"]
    )
    return redirect(ACCESS_PAGE, "access_removed")


@signed_in
async def clear_access_groups(page: Page) -> Response:
    await page.run(identity_providers.clear_access_groups, page.uow)
    return redirect(ACCESS_PAGE, "access_cleared")


@signed_in
async def saml_page(page: Page) -> Response:
    return await _render_idp(page, "settings/saml.html")


@signed_in
async def save_saml(page: Page) -> Response:
    xml = page.form.get("metadata", "")
    try:
        await page.run(identity_providers.save_saml_metadata, page.uow, xml)
    except ScimError as error:
        return await _render_idp(
            page, "settings/saml.html", status=400, error=error.detail, metadata=xml
        )
    return redirect(SAML_PAGE, "saml_saved")


@signed_in
async def save_saml_attributes(page: Page) -> Response:
    try:
        await page.run(
            identity_providers.save_attribute_names,
            page.uow,
            given_name=page.form.get("given_name", ""),
            family_name=page.form.get("family_name", ""),
            email=page.form.get("email", ""),
            groups=page.form.get("groups", ""),
        )
    except ScimError as error:
        return await _render_idp(
            page, "settings/saml.html", status=error.status, error=error.detail
        )
    return redirect(SAML_PAGE, "saml_attributes_saved")


@signed_in
async def remove_saml(page: Page) -> Response:
    await page.run(identity_providers.remove_saml_settings, page.uow)
    return redirect(SAML_PAGE, "saml_removed")


# -- users ------------------------------------------------------------------------------------


async def _seats(page: Page) -> Any:
    settings = await page.run(identity_providers.identity_provider_settings, page.uow)
    return settings.tenant


@signed_in
async def users_page(page: Page) -> Response:
    text, source, status = page.param("q"), page.param("source"), page.param("status")
    error = None
    try:
        found = await page.run(
            users.search_users,
            page.uow,
            text=text,
            source=source,
            status=status,
            page=page.page_number(),
        )
    except ScimError as failure:
        error, found = failure.detail, None
    query = {k: v for k, v in (("q", text), ("source", source), ("status", status)) if v}
    return page.render(
        "users/list.html",
        status=400 if error else 200,
        found=found,
        q=text,
        source=source,
        status_filter=status,
        query=urlencode(query),
        tenant=await _seats(page),
        error=error,
    )


@signed_in
async def new_user_page(page: Page) -> Response:
    if page.request.method == "GET":
        return page.render("users/new.html", form=UserForm(), tenant=await _seats(page))
    form = UserForm.read(page.form)
    if not form.errors:
        try:
            created = await page.run(
                users.create_local_user,
                page.uow,
                form.email,
                given_name=form.given_name,
                family_name=form.family_name,
            )
        except ScimError as error:
            form.place(error)
        else:
            return redirect(f"{ROOT}/users/{created.user_id}", "user_created")
    return page.render("users/new.html", status=400, form=form, tenant=await _seats(page))


async def _render_user(page: Page, *, status: int = 200, **context: Any) -> Response:
    user_id = page.request.path_params["user_id"]
    detail = await page.run(users.user_detail, page.uow, user_id, log_page=page.page_number())
    choices = await page.run(groups.group_choices, page.uow)
    return page.render(
        "users/detail.html", status=status, detail=detail, choices=choices, **context
    )


@signed_in
async def user_page(page: Page) -> Response:
    return await _render_user(page)


@signed_in
async def delete_user(page: Page) -> Response:
    await page.run(users.delete_user, page.uow, page.request.path_params["user_id"])
    return redirect(f"{ROOT}/users", "user_deleted")


async def _user_email(page: Page) -> str:
    user = await page.run(users.get_user, page.uow, page.request.path_params["user_id"])
    return _email_of(user.document)


@signed_in
async def add_membership(page: Page) -> Response:
    email = await _user_email(page)
    name = page.form.get("group", "")
    try:
        await page.run(groups.add_manual_member, page.uow, name, email)
    except ScimError as error:
        return await _render_user(page, status=400, error=error.detail, group=name)
    return redirect(f"{ROOT}/users/{page.request.path_params['user_id']}", "member_added")


@signed_in
async def remove_membership(page: Page) -> Response:
    email = await _user_email(page)
    group = await page.run(groups.get_group, page.uow, page.request.path_params["group_id"])
    await page.run(groups.remove_manual_member, page.uow, group.document["displayName"], email)
    return redirect(f"{ROOT}/users/{page.request.path_params['user_id']}", "member_removed")


# -- groups and the log -----------------------------------------------------------------------


@signed_in
async def groups_page(page: Page) -> Response:
    text = page.param("q")
    found = await page.run(groups.groups_page, page.uow, text=text, page=page.page_number())
    return page.render("groups/list.html", found=found, q=text, query=urlencode({"q": text}))


@signed_in
async def group_page(page: Page) -> Response:
    detail = await page.run(
        groups.group_detail,
        page.uow,
        page.request.path_params["group_id"],
        page=page.page_number(),
    )
    return page.render("groups/detail.html", detail=detail)


@signed_in
async def log_page(page: Page) -> Response:
    failed_only = page.param("failed") == "1"
    found = await page.run(
        provisioning_log.entries_page, page.uow, failed_only=failed_only, page=page.page_number()
    )
    return page.render(
        "log/list.html",
        found=found,
        failed_only=failed_only,
        query=urlencode({"failed": "1"} if failed_only else {}),
    )


@signed_in
async def sign_in_log_page(page: Page) -> Response:
    refused_only = page.param("refused") == "1"
    found = await page.run(
        sign_in_log.attempts_page, page.uow, refused_only=refused_only, page=page.page_number()
    )
    return page.render(
        "log/sign_ins.html",
        found=found,
        refused_only=refused_only,
        query=urlencode({"refused": "1"} if refused_only else {}),
    )


def console_routes() -> list[BaseRoute]:
    """The /console routes; the app sets `state.console` (see attach_console)."""
    # Imported here: the webhook pages are built on this module's Page and signed_in.
    from muster.web.console.webhooks import webhook_routes

    get, post, both = ["GET"], ["POST"], ["GET", "POST"]
    idp = "/settings/identity-providers"
    routes: list[BaseRoute] = [
        Route("/", home, methods=get),
        Route("/sign-in", sign_in_page, methods=both),
        Route("/set-password", set_password_page, methods=both),
        Route("/sign-out", sign_out, methods=post),
        Route(idp, identity_providers_page, methods=get),
        Route(f"{idp}/scim", scim_settings_page, methods=get),
        Route(f"{idp}/scim/on", scim_on, methods=post),
        Route(f"{idp}/scim/off", scim_off, methods=post),
        Route(f"{idp}/scim/token", generate_token, methods=post),
        Route(f"{idp}/access-groups", access_groups_page, methods=get),
        Route(f"{idp}/access-groups/add", add_access_group, methods=post),
        Route(f"{idp}/access-groups/clear", clear_access_groups, methods=post),
        Route(f"{idp}/access-groups/{{group_id}}/remove", remove_access_group, methods=post),
        Route(f"{idp}/saml", saml_page, methods=get),
        Route(f"{idp}/saml/save", save_saml, methods=post),
        Route(f"{idp}/saml/remove", remove_saml, methods=post),
        Route(f"{idp}/saml/attributes", save_saml_attributes, methods=post),
        Route("/settings/events-api", events_api_page, methods=get),
        Route("/settings/events-api/key", generate_events_key, methods=post),
        Route("/settings/events-api/key/revoke", revoke_events_key, methods=post),
        Route("/users", users_page, methods=get),
        Route("/users/new", new_user_page, methods=both),
        Route("/users/{user_id}", user_page, methods=get),
        Route("/users/{user_id}/delete", delete_user, methods=post),
        Route("/users/{user_id}/groups/add", add_membership, methods=post),
        Route("/users/{user_id}/groups/{group_id}/remove", remove_membership, methods=post),
        Route("/groups", groups_page, methods=get),
        Route("/groups/{group_id}", group_page, methods=get),
        Route("/log", log_page, methods=get),
        Route("/sign-in-log", sign_in_log_page, methods=get),
        *webhook_routes(),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="console-static"),
    ]
    return [Mount(ROOT, routes=routes)]


def attach_console(state: Any, wiring: Wiring) -> None:
    """Give the console's handlers their templates and services (app.state.console)."""
    state.console = Console(wiring)
