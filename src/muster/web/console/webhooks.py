"""The console's webhook pages: endpoints (secret shown once), pause, remove, the delivery log.

They call services/webhooks.py only. Every endpoint id is looked up in the signed-in admin's
tenant, so another tenant's id answers 404 like one that never existed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from muster.errors import ScimError
from muster.services import events, webhook_delivery, webhooks
from muster.web.console.routes import ROOT, Page, redirect, signed_in

WEBHOOKS_PAGE = f"{ROOT}/settings/webhooks"
# One checkbox per event type: the form reader keeps one value per field name.
TYPE_FIELD = "event."
# The delivery log's tabs: "all" is no filter. `sending` is accepted in the URL, not a tab.
STATE_TABS = ("all", "pending", "delivered", "dead")


def _endpoint_id(page: Page) -> str:
    return str(page.request.path_params["endpoint_id"])


def _endpoint_page(endpoint_id: str) -> str:
    return f"{WEBHOOKS_PAGE}/{endpoint_id}"


def _state_filter(value: str) -> str | None:
    return None if value in ("", "all") else value


# -- the list and the "Add endpoint" form -----------------------------------------------------


async def _render_list(page: Page, *, status: int = 200, **context: Any) -> Response:
    context.setdefault(
        "form",
        {"url": "", "description": "", "event_types": [], "format": webhook_delivery.JSON},
    )
    found = await page.run(webhooks.list_endpoints, page.uow)
    return page.render(
        "webhooks/list.html",
        status=status,
        endpoints=found,
        event_types=events.EVENT_TYPES,
        formats=webhook_delivery.FORMATS,
        type_field=TYPE_FIELD,
        **context,
    )


@signed_in
async def webhooks_page(page: Page) -> Response:
    return await _render_list(page)


@signed_in
async def add_endpoint(page: Page) -> Response:
    url, description = page.form.get("url", ""), page.form.get("description", "")
    chosen = [name.removeprefix(TYPE_FIELD) for name in page.form if name.startswith(TYPE_FIELD)]
    format_ = page.form.get("format", "") or webhook_delivery.JSON
    try:
        created = await page.run(
            webhooks.create_endpoint,
            page.uow,
            url,
            description=description,
            event_types=chosen,
            format=format_,
        )
    except ScimError as error:
        form = {
            "url": url,
            "description": description,
            "event_types": chosen,
            "format": format_,
        }
        return await _render_list(page, status=400, error=error.detail, form=form)
    # Rendered into this response only: no page or API shows the secret again.
    return await _render_list(page, created=created)


# -- one endpoint: settings, pause, remove, the delivery log ----------------------------------


async def _render_detail(page: Page, *, status: int = 200, **context: Any) -> Response:
    endpoint_id = _endpoint_id(page)
    endpoint = await page.run(webhooks.get_endpoint, page.uow, endpoint_id)
    state = page.param("state") or "all"
    found = await page.run(
        webhooks.deliveries_page,
        page.uow,
        endpoint_id,
        state=_state_filter(state),
        page=page.page_number(),
    )
    return page.render(
        "webhooks/detail.html",
        status=status,
        endpoint=endpoint,
        found=found,
        state=state,
        tabs=STATE_TABS,
        query=urlencode({"state": state} if state != "all" else {}),
        **context,
    )


@signed_in
async def endpoint_page(page: Page) -> Response:
    return await _render_detail(page)


@signed_in
async def pause_endpoint(page: Page) -> Response:
    endpoint_id = _endpoint_id(page)
    await page.run(webhooks.set_endpoint_enabled, page.uow, endpoint_id, False)
    return redirect(_endpoint_page(endpoint_id), "webhook_paused")


@signed_in
async def enable_endpoint(page: Page) -> Response:
    endpoint_id = _endpoint_id(page)
    await page.run(webhooks.set_endpoint_enabled, page.uow, endpoint_id, True)
    return redirect(_endpoint_page(endpoint_id), "webhook_enabled")


@signed_in
async def remove_endpoint(page: Page) -> Response:
    if page.form.get("confirm") != "yes":
        # Its delivery log goes with it and the receiver stops hearing: say so before doing it.
        return await _render_detail(page, confirm_remove=True)
    await page.run(webhooks.remove_endpoint, page.uow, _endpoint_id(page))
    return redirect(WEBHOOKS_PAGE, "webhook_removed")


def _back_to_log(page: Page) -> str:
    """The delivery log as the admin was looking at it (tab and page) when they pressed."""
    query: dict[str, str] = {}
    state = page.form.get("state", "")
    if state in webhooks.STATES:
        query["state"] = state
    number = page.form.get("page", "")
    if number.isdigit() and 0 < len(number) < 8 and number != "1":
        query["page"] = number
    path = _endpoint_page(_endpoint_id(page))
    return f"{path}?{urlencode(query)}" if query else path


@signed_in
async def redeliver(page: Page) -> Response:
    seq: int = page.request.path_params["event_seq"]
    await page.run(webhooks.redeliver, page.uow, _endpoint_id(page), seq)
    return redirect(_back_to_log(page), "webhook_redelivered")


@signed_in
async def redeliver_dead(page: Page) -> Response:
    count = await page.run(webhooks.redeliver_dead, page.uow, _endpoint_id(page))
    return redirect(_back_to_log(page), "webhook_dead_redelivered" if count else "webhook_no_dead")


def webhook_routes() -> list[BaseRoute]:
    """The webhook pages, relative to the console's mount."""
    get, post = ["GET"], ["POST"]
    one = "/settings/webhooks/{endpoint_id}"
    return [
        Route("/settings/webhooks", webhooks_page, methods=get),
        Route("/settings/webhooks/add", add_endpoint, methods=post),
        Route(one, endpoint_page, methods=get),
        Route(f"{one}/pause", pause_endpoint, methods=post),
        Route(f"{one}/enable", enable_endpoint, methods=post),
        Route(f"{one}/remove", remove_endpoint, methods=post),
        Route(f"{one}/redeliver-dead", redeliver_dead, methods=post),
        Route(f"{one}/deliveries/{{event_seq:int}}/redeliver", redeliver, methods=post),
    ]
