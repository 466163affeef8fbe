"""The `muster` command: serve, worker, db, tenant, scim-token, scim-off, log, webhook, ...

Thin calls into services."""

from __future__ import annotations

import asyncio
import contextlib
import logging.config
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any

import click

from muster.config import DEFAULT_BASE_URL, Settings
from muster.errors import ScimError
from muster.process_logs import logging_config
from muster.services import (
    admins,
    api_tokens,
    event_log,
    groups,
    provisioning_log,
    tenants,
    users,
    webhook_delivery,
    webhooks,
)
from muster.services.clock import utcnow
from muster.services.database import Database, UnitOfWork
from muster.services.tenants import PLANS


class Context:
    """Settings and a lazily opened database, shared by the subcommands of one invocation."""

    def __init__(self) -> None:
        self.settings = Settings()
        self._database: Database | None = None

    @property
    def database(self) -> Database:
        if self._database is None:
            self._database = Database(self.settings)
        return self._database

    def uow(self, tenant_id: str | None = None) -> UnitOfWork:
        return self.database.uow(tenant_id)


pass_context = click.make_pass_decorator(Context, ensure=True)


def _fails_cleanly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Show a ScimError as a one-line message and exit 1, never as a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ScimError as error:
            click.echo(f"error: {error.detail}", err=True)
            sys.exit(1)

    return wrapper


def _this_command() -> str:
    """How to run this command again from here (scripts/serve.sh puts .venv/bin on PATH only
    for itself, so name the executable by its path)."""
    invoked = sys.argv[0]
    if os.path.basename(invoked) != "muster":
        return "muster"
    relative = os.path.relpath(invoked)
    return relative if not relative.startswith("..") else invoked


@click.group()
def main() -> None:
    """Muster: SCIM 2.0 provisioning and SAML sign-in for every tenant of the platform.

    Settings come from MUSTER_* environment variables (see the README); the database is
    MUSTER_DATABASE_URL, a SQLite file in the current folder by default.
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(1, 64),
    help="Worker processes sharing the port; each builds its own app from MUSTER_* settings. "
    "[default: one per CPU core this process may use]",
)
@click.option(
    "--worker/--no-worker",
    "with_worker",
    default=None,
    help="Start one webhook delivery worker as a child process (default: MUSTER_SERVE_WORKER, on).",
)
@pass_context
def serve(
    ctx: Context, host: str, port: int, workers: int | None, with_worker: bool | None
) -> None:
    """Migrate the database, then serve SCIM at http://HOST:PORT/scim/v2."""
    if workers is None:
        workers = default_workers()
    from muster.web.http_protocol import CoalescingHttpToolsProtocol

    ctx.database.upgrade()
    if ctx.settings.create_demo_tenant and tenants.is_empty(ctx.uow()):
        tenants.create_tenant(ctx.uow(), "demo", name="Demo", plan="enterprise", seats=25)
        click.echo(
            "Created the tenant `demo` (Enterprise plan, 25 seats). Get its SCIM token with:"
        )
        click.echo(f"    {_this_command()} scim-token demo")
    click.echo(f"SCIM base URL: http://{host}:{port}/scim/v2")
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "access_log": False,  # the provisioning log records every SCIM request
        "loop": "auto",
        # httptools, writing each answer's headers and body with one system call
        "http": CoalescingHttpToolsProtocol,
        "server_header": False,
        "timeout_graceful_shutdown": 30,  # SIGTERM: finish in-flight requests, then exit
        # Process logs as JSON lines (or text) on stderr, uvicorn's own included.
        "log_config": logging_config(ctx.settings.log_format, ctx.settings.log_level),
        # A spawned worker must answer the parent's ping within this; uvicorn's 5 s default
        # killed and respawned workers forever on a busy host, where importing takes longer.
        "timeout_worker_healthcheck": 30,
    }
    if with_worker is None:
        with_worker = ctx.settings.serve_worker
    worker_process = _delivery_worker(ctx.settings.webhook_timeout_seconds)
    with worker_process if with_worker else contextlib.nullcontext():
        _run_uvicorn(ctx, workers, options)


def default_workers() -> int:
    """One worker process per CPU core this process may run on (its affinity, e.g. a container's
    cpuset), on SQLite as on PostgreSQL: a request's blocking work runs in threads, and the
    Python code of its parsing and rendering needs a core of its own per process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _run_uvicorn(ctx: Context, workers: int, options: dict[str, Any]) -> None:
    import uvicorn

    from muster.app import create_app
    from muster.cpu_affinity import pin_to_a_free_cpu

    if workers == 1:
        # uvicorn drains on SIGTERM, then raises the signal again under the handler it found:
        # make that a clean exit (0) rather than death by signal (143), which orchestrators
        # report as a failure.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        if ctx.settings.pin_cpu:
            pin_to_a_free_cpu()  # after the delivery worker started: it keeps every CPU
        uvicorn.run(create_app(ctx.settings, database=ctx.database), **options)
    else:
        # Each worker process imports the factory and reads the same MUSTER_* environment.
        ctx.database.dispose()
        with _metrics_directory():
            uvicorn.run("muster.app:create_served_app", factory=True, workers=workers, **options)


@contextlib.contextmanager
def _delivery_worker(timeout_seconds: float) -> Iterator[None]:
    """`muster worker` as a child process for as long as the server runs."""
    # It exits by itself if this process dies without stopping it (SIGKILL, OOM).
    child = subprocess.Popen(
        [sys.executable, "-m", "muster", "worker", "--parent-pid", str(os.getpid())]
    )
    try:
        yield
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            # It lets its requests in flight finish (each ends within the webhook timeout).
            child.wait(timeout=timeout_seconds + 10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@main.command()
@click.option("--parent-pid", type=int, default=None, hidden=True)
@pass_context
def worker(ctx: Context, parent_pid: int | None) -> None:
    """Deliver webhooks until SIGTERM or SIGINT (`muster serve` starts one by itself)."""
    from muster.services.webhook_worker import DeliveryWorker

    settings = ctx.settings
    logging.config.dictConfig(logging_config(settings.log_format, settings.log_level))
    if not ctx.database.is_current():
        click.echo("error: the database schema is not current; run `muster db upgrade`", err=True)
        sys.exit(1)

    async def deliver_until_signalled() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await DeliveryWorker(ctx.uow, settings, parent_pid=parent_pid).run(stop)

    try:
        asyncio.run(deliver_until_signalled())
    finally:
        ctx.database.dispose()


@contextlib.contextmanager
def _metrics_directory() -> Iterator[None]:
    """A fresh directory where the workers keep their metrics (prometheus_client's
    multiprocess mode), removed at exit; one set by the operator is left alone."""
    from muster.web.metrics import MULTIPROCESS_DIR_ENV

    if os.environ.get(MULTIPROCESS_DIR_ENV):
        yield
        return
    # Fresh for each run: values left by an earlier run's processes would be added in.
    directory = tempfile.mkdtemp(prefix="muster-metrics-")
    os.environ[MULTIPROCESS_DIR_ENV] = directory  # the workers inherit it and read it at import
    try:
        yield
    finally:
        os.environ.pop(MULTIPROCESS_DIR_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_context
def db_upgrade(ctx: Context) -> None:
    """Apply every pending migration."""
    ctx.database.upgrade()
    click.echo(f"database at revision {ctx.database.current_revision()}")


@db.command("current")
@pass_context
def db_current(ctx: Context) -> None:
    """Print the database's migration revision."""
    click.echo(ctx.database.current_revision() or "(empty)")


@main.group()
def tenant() -> None:
    """Customer accounts."""


def _describe(t: Any) -> str:
    scim = "on" if t.scim_enabled else "off"
    return f"{t.slug}\t{t.name}\tplan={t.plan}\tseats={t.seats_used}/{t.seat_limit}\tscim={scim}"


@tenant.command("create")
@click.argument("slug")
@click.option("--name", default=None, help="Display name (default: the slug).")
@click.option("--plan", type=click.Choice(PLANS), default="free", show_default=True)
@click.option("--seats", type=int, default=tenants.DEFAULT_SEATS, show_default=True)
@pass_context
@_fails_cleanly
def tenant_create(ctx: Context, slug: str, name: str | None, plan: str, seats: int) -> None:
    """Create a tenant."""
    created = tenants.create_tenant(ctx.uow(), slug, name=name, plan=plan, seats=seats)
    click.echo(_describe(created))


@tenant.command("list")
@pass_context
def tenant_list(ctx: Context) -> None:
    """List tenants."""
    for t in tenants.list_tenants(ctx.uow()):
        click.echo(_describe(t))


@tenant.command("set")
@click.argument("slug")
@click.option("--plan", type=click.Choice(PLANS), default=None)
@click.option("--seats", type=int, default=None)
@pass_context
@_fails_cleanly
def tenant_set(ctx: Context, slug: str, plan: str | None, seats: int | None) -> None:
    """Change a tenant's plan or seat limit."""
    click.echo(_describe(tenants.set_tenant(ctx.uow(), slug, plan=plan, seats=seats)))


@main.command("scim-token")
@click.argument("slug")
@pass_context
@_fails_cleanly
def scim_token(ctx: Context, slug: str) -> None:
    """Turn SCIM on for SLUG and issue a new token (printed once, on the last line)."""
    issued = api_tokens.issue_scim_token(ctx.uow(), slug)
    click.echo(f"SCIM is on for {slug}. Any previous token has stopped working.", err=True)
    click.echo(
        "Paste this token into your identity provider now; it will not be shown again:", err=True
    )
    click.echo(issued.secret)


@main.command("scim-off")
@click.argument("slug")
@pass_context
@_fails_cleanly
def scim_off(ctx: Context, slug: str) -> None:
    """Turn SCIM off for SLUG; its token stops working."""
    api_tokens.turn_scim_off(ctx.uow(), slug)
    click.echo(f"SCIM is off for {slug}; its token is refused until `muster scim-token {slug}`.")


@main.command("events-key")
@click.argument("slug")
@click.option("--revoke", is_flag=True, help="Revoke the key instead; none replaces it.")
@pass_context
@_fails_cleanly
def events_key(ctx: Context, slug: str, revoke: bool) -> None:
    """Issue SLUG's events API key (printed once, on the last line), replacing any previous one."""
    if revoke:
        revoked = api_tokens.revoke_events_key(ctx.uow(), slug)
        if revoked is None:
            click.echo(f"{slug} has no events API key; nothing to revoke.")
        else:
            click.echo(f"Revoked {slug}'s events API key {revoked}; it no longer works.")
        return
    issued = api_tokens.issue_events_key(ctx.uow(), slug)
    if issued.replaced:
        click.echo(
            f"Replaced {slug}'s events API key {issued.replaced}; it no longer works.", err=True
        )
    else:
        click.echo(f"{slug} had no events API key.", err=True)
    click.echo(
        "Use this key as `Authorization: Bearer <key>` on GET /api/v1/events; "
        "it will not be shown again:",
        err=True,
    )
    click.echo(issued.secret)


@main.group()
def events() -> None:
    """Change events (the outbox behind GET /api/v1/events and webhooks)."""


@events.command("prune")
@pass_context
def events_prune(ctx: Context) -> None:
    """Remove every tenant's events older than MUSTER_EVENT_RETENTION_DAYS now."""
    days = ctx.settings.event_retention_days
    removed = event_log.prune_events(ctx.uow, now=utcnow(), retention_days=days)
    click.echo(f"removed {removed} events older than {days} days")


@main.command("log")
@click.argument("slug")
@click.option("--failed", is_flag=True, help="Only requests that failed (status 400 and up).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@pass_context
@_fails_cleanly
def log(ctx: Context, slug: str, failed: bool, limit: int) -> None:
    """Print SLUG's provisioning log, newest first."""
    found = tenants.get_tenant(ctx.uow(), slug)
    entries = provisioning_log.list_entries(
        ctx.uow(found.tenant_id), failed_only=failed, limit=limit
    )
    for e in entries:
        line = (
            f"{e.at.isoformat(timespec='seconds')}Z  {e.status}  {e.method:6} {e.path}"
            f"  {e.duration_ms:.1f}ms"
        )
        if e.scim_type or e.detail:
            line += f"\n    {e.scim_type or '-'}: {e.detail}"
        if e.client_quirks:
            line += f"\n    absorbed: {e.client_quirks}"
        if e.user_agent:
            line += f"\n    client: {e.user_agent}"
        click.echo(line)
    if not entries:
        click.echo("no entries" + (" (failed only)" if failed else ""))


def _tenant_uow(ctx: Context, slug: str) -> UnitOfWork:
    return ctx.uow(tenants.get_tenant(ctx.uow(), slug).tenant_id)


@main.group()
def user() -> None:
    """People created by hand (local users)."""


@user.command("create")
@click.argument("slug")
@click.argument("email")
@click.option("--given-name", default="")
@click.option("--family-name", default="")
@pass_context
@_fails_cleanly
def user_create(ctx: Context, slug: str, email: str, given_name: str, family_name: str) -> None:
    """Create a local user in SLUG; it takes a seat like any active user."""
    created = users.create_local_user(
        _tenant_uow(ctx, slug), email, given_name=given_name, family_name=family_name
    )
    click.echo(f"{created.user_id}\t{email}\tlocal")


@user.command("duplicates")
@click.argument("slug", required=False)
@pass_context
@_fails_cleanly
def user_duplicates(ctx: Context, slug: str | None) -> None:
    """List identities several users hold (every tenant, or SLUG's); changes nothing.

    One line per identity: tenant, email or userName, its key, then each user's id, userName
    and state. Since migration 0009 no write can add one; these were stored before it.
    """
    found_any = False
    chosen = [tenants.get_tenant(ctx.uow(), slug)] if slug else tenants.list_tenants(ctx.uow())
    for t in chosen:
        for shared in users.find_shared_identities(ctx.uow(t.tenant_id)):
            found_any = True
            holders = ", ".join(
                f"{user_id} {user_name} {'active' if active else 'deactivated'}"
                for user_id, user_name, active in shared.users
            )
            click.echo(f"{t.slug}\t{shared.kind}\t{shared.key}\t{holders}")
    if not found_any:
        click.echo("no identity is held by more than one user")


@main.group()
def group() -> None:
    """Manual group memberships (never removed by an IdP push)."""


@group.command("add-member")
@click.argument("slug")
@click.argument("group_name", metavar="GROUP")
@click.argument("email")
@pass_context
@_fails_cleanly
def group_add_member(ctx: Context, slug: str, group_name: str, email: str) -> None:
    """Add the user with EMAIL to GROUP (by displayName) by hand."""
    groups.add_manual_member(_tenant_uow(ctx, slug), group_name, email)
    click.echo(f"{email} is a manual member of {group_name}")


@group.command("remove-member")
@click.argument("slug")
@click.argument("group_name", metavar="GROUP")
@click.argument("email")
@pass_context
@_fails_cleanly
def group_remove_member(ctx: Context, slug: str, group_name: str, email: str) -> None:
    """Take the user with EMAIL out of GROUP by hand."""
    groups.remove_manual_member(_tenant_uow(ctx, slug), group_name, email)
    click.echo(f"{email} is no longer a member of {group_name}")


@main.group()
def webhook() -> None:
    """Webhook endpoints that receive a tenant's events (docs/webhooks.md)."""


def _describe_endpoint(e: webhooks.Endpoint) -> str:
    types = ",".join(e.event_types) if e.event_types else "all"
    state = "enabled" if e.is_enabled else "disabled"
    line = (
        f"{e.endpoint_id}\t{e.url}\t{state}\tevents={types}\tformat={e.format}"
        f"\tpending={e.pending}\tdead={e.dead}"
    )
    return line + (f"\t{e.description}" if e.description else "")


@webhook.command("add")
@click.argument("slug")
@click.argument("url")
@click.option("--description", default="", help="A note for whoever reads the list.")
@click.option(
    "--event",
    "event_types",
    multiple=True,
    metavar="TYPE",
    help="Send only this event type (repeatable; default: every type).",
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(webhook_delivery.FORMATS),
    default=webhook_delivery.JSON,
    show_default=True,
    help="json: the event as JSON; set: a Security Event Token (RFC 9967), docs/webhooks.md.",
)
@pass_context
@_fails_cleanly
def webhook_add(
    ctx: Context,
    slug: str,
    url: str,
    description: str,
    event_types: tuple[str, ...],
    format_: str,
) -> None:
    """Add an endpoint to SLUG; prints its id, then its signing secret alone on the last line."""
    created = webhooks.create_endpoint(
        _tenant_uow(ctx, slug),
        url,
        description=description,
        event_types=event_types or None,
        format=format_,
    )
    click.echo(created.endpoint.endpoint_id)
    click.echo(
        "Give this signing secret to the receiver now; it will not be shown again:", err=True
    )
    click.echo(created.secret)


@webhook.command("list")
@click.argument("slug")
@pass_context
@_fails_cleanly
def webhook_list(ctx: Context, slug: str) -> None:
    """List SLUG's endpoints: id, URL, state, event types, pending and dead deliveries."""
    found = webhooks.list_endpoints(_tenant_uow(ctx, slug))
    for e in found:
        click.echo(_describe_endpoint(e))
    if not found:
        click.echo("no webhook endpoints")


@webhook.command("remove")
@click.argument("slug")
@click.argument("endpoint_id")
@pass_context
@_fails_cleanly
def webhook_remove(ctx: Context, slug: str, endpoint_id: str) -> None:
    """Remove an endpoint and its deliveries."""
    webhooks.remove_endpoint(_tenant_uow(ctx, slug), endpoint_id)
    click.echo(f"removed {endpoint_id}")


@webhook.command("enable")
@click.argument("slug")
@click.argument("endpoint_id")
@pass_context
@_fails_cleanly
def webhook_enable(ctx: Context, slug: str, endpoint_id: str) -> None:
    """Resume an endpoint: it catches up on the events since it was disabled."""
    changed = webhooks.set_endpoint_enabled(_tenant_uow(ctx, slug), endpoint_id, True)
    click.echo(_describe_endpoint(changed))


@webhook.command("disable")
@click.argument("slug")
@click.argument("endpoint_id")
@pass_context
@_fails_cleanly
def webhook_disable(ctx: Context, slug: str, endpoint_id: str) -> None:
    """Pause an endpoint: nothing is sent until it is enabled again."""
    changed = webhooks.set_endpoint_enabled(_tenant_uow(ctx, slug), endpoint_id, False)
    click.echo(_describe_endpoint(changed))


def _describe_delivery(d: webhooks.Delivery) -> str:
    line = f"{d.event_seq}\t{d.event_type or '(event removed)'}\t{d.state}\tattempts={d.attempts}"
    if d.state == "delivered" and d.delivered_at is not None:
        line += f"\tdelivered={d.delivered_at.isoformat(timespec='seconds')}Z"
    elif d.state == "pending":
        line += f"\tnext={d.next_attempt_at.isoformat(timespec='seconds')}Z"
    if d.last_status is not None or d.last_error:
        line += f"\n    last: {d.last_status or '-'} {d.last_error or ''}".rstrip()
    return line


@webhook.command("deliveries")
@click.argument("slug")
@click.argument("endpoint_id")
@click.option("--dead", is_flag=True, help="Only deliveries that gave up.")
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@pass_context
@_fails_cleanly
def webhook_deliveries(ctx: Context, slug: str, endpoint_id: str, dead: bool, page: int) -> None:
    """Print an endpoint's deliveries, newest event first."""
    found = webhooks.deliveries_page(
        _tenant_uow(ctx, slug), endpoint_id, state="dead" if dead else None, page=page
    )
    for d in found.items:
        click.echo(_describe_delivery(d))
    if not found.items:
        click.echo("no deliveries" + (" (dead only)" if dead else ""))
    elif found.pages > 1:
        click.echo(f"page {found.number} of {found.pages} ({found.total} deliveries)", err=True)


@webhook.command("redeliver")
@click.argument("slug")
@click.argument("endpoint_id")
@click.argument("seq", type=int, required=False)
@click.option("--dead", is_flag=True, help="Every dead delivery of the endpoint.")
@pass_context
@_fails_cleanly
def webhook_redeliver(
    ctx: Context, slug: str, endpoint_id: str, seq: int | None, dead: bool
) -> None:
    """Send the event numbered SEQ again, or with --dead every delivery that gave up."""
    if (seq is None) == (not dead):
        raise click.UsageError("give either SEQ or --dead")
    uow = _tenant_uow(ctx, slug)
    if dead:
        click.echo(f"{webhooks.redeliver_dead(uow, endpoint_id)} dead deliveries queued again")
    else:
        assert seq is not None
        webhooks.redeliver(uow, endpoint_id, seq)
        click.echo(f"event {seq} queued again")


@main.group()
def admin() -> None:
    """Console admins (sign in at /console)."""


def _print_setup_link(ctx: Context, link: admins.SetupLink) -> None:
    base = (ctx.settings.public_url or DEFAULT_BASE_URL).rstrip("/")
    click.echo(
        f"Send this link to {link.email} ({link.tenant_slug}); it sets their console password, "
        f"works once and expires at {link.expires_at:%Y-%m-%d %H:%M} UTC:",
        err=True,
    )
    click.echo(f"{base}/console/set-password?token={link.token}")


@admin.command("create")
@click.argument("slug")
@click.argument("email")
@pass_context
@_fails_cleanly
def admin_create(ctx: Context, slug: str, email: str) -> None:
    """Create a console admin of SLUG and print a one-time set-password link (24 h)."""
    _print_setup_link(ctx, admins.create_admin(ctx.uow(), slug, email))


@admin.command("reset")
@click.argument("email")
@pass_context
@_fails_cleanly
def admin_reset(ctx: Context, email: str) -> None:
    """Print a new set-password link for EMAIL; the old password and sessions stop working."""
    _print_setup_link(ctx, admins.reset_admin(ctx.uow(), email))


if __name__ == "__main__":
    main()
