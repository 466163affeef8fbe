"""DeliveryWorker: the loop that sends queued webhook deliveries, several at a time.

HTTP runs on an asyncio loop (httpx2, `worker_concurrency` requests in flight); the database
steps of services/webhook_delivery.py run one at a time on a thread of their own, so a slow
lock never stalls the requests in flight. An idle worker polls every `worker_poll_seconds`
with two small reads. Delivery is at least once: a worker that dies mid-request leaves its
claim to run out its lease, and another worker sends it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx2

from muster.config import Settings
from muster.db.unit_of_work import UnitOfWork
from muster.db.webhook_repositories import DEAD
from muster.services import event_log, security_events, webhook_delivery
from muster.services.clock import utcnow
from muster.services.webhook_delivery import Claim, Outcome, RetryPolicy

logger = logging.getLogger("muster.webhooks")
T = TypeVar("T")
MAINTENANCE_SECONDS = 60.0
ANALYZE_AFTER_EVENTS = 2000  # events fanned out by this worker between two statistics refreshes
DESTINATION_CHECK_SECONDS = 10.0  # how long a webhook host's address check is reused
ERROR_PAUSE_SECONDS = 1.0  # after a database error (a restart, a failover) before trying again
UowFactory = Callable[[str | None], UnitOfWork]  # a tenant's unit of work, or (None) the platform's
MaintenanceTask = Callable[[], object]


def maintenance_tasks(uow_factory: UowFactory, settings: Settings) -> list[MaintenanceTask]:
    """The housekeeping a worker runs every MAINTENANCE_SECONDS; add periodic jobs here."""
    retention = timedelta(days=settings.webhook_retention_days)

    def prune_delivered() -> int:
        return webhook_delivery.prune_delivered(uow_factory(None), older_than=retention)

    def prune_events() -> int:
        return event_log.prune_events(
            uow_factory, now=utcnow(), retention_days=settings.event_retention_days
        )

    return [prune_delivered, prune_events]


class DeliveryWorker:
    """Fans out new events, claims due deliveries and sends them until stopped."""

    def __init__(
        self,
        uow_factory: UowFactory,
        settings: Settings,
        *,
        maintenance: list[MaintenanceTask] | None = None,
        parent_pid: int | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._settings = settings
        self.maintenance = (
            maintenance_tasks(uow_factory, settings) if maintenance is None else maintenance
        )
        self._parent_pid = parent_pid
        self._issuer = security_events.issuer(settings.public_url)
        self._policy = RetryPolicy(
            settings.webhook_max_attempts,
            settings.webhook_backoff_base_seconds,
            settings.webhook_backoff_max_seconds,
        )
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="muster-webhooks-db")
        self._in_flight: dict[asyncio.Task[None], Claim] = {}
        self._outcomes: list[tuple[Outcome, asyncio.Future[str]]] = []
        self._queued_since_analyze = 0
        self._destinations: dict[tuple[str, int], tuple[float, str | None]] = {}
        self._recorder: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

    async def _in_db(self, step: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._db, lambda: step(self._uow_factory(None), *args, **kwargs)
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set, then let the requests in flight finish (or give them
        back to the queue when they outlast the timeout)."""
        self._wake = asyncio.Event()
        settings = self._settings
        timeout = settings.webhook_timeout_seconds
        logger.info(
            "webhook worker started",
            extra={
                "concurrency": settings.worker_concurrency,
                "poll_seconds": settings.worker_poll_seconds,
            },
        )
        limits = httpx2.Limits(max_connections=settings.worker_concurrency)
        try:
            async with httpx2.AsyncClient(
                timeout=httpx2.Timeout(timeout), limits=limits, follow_redirects=False
            ) as client:
                try:
                    await self._loop(client, stop)
                finally:
                    await self._finish(timeout)
        finally:
            self._db.shutdown(wait=True)
        logger.info("webhook worker stopped")

    def _parent_is_gone(self) -> bool:
        # Started by `muster serve`: a worker whose server died (SIGKILL) must not live on.
        return self._parent_pid is not None and os.getppid() != self._parent_pid

    async def _loop(self, client: httpx2.AsyncClient, stop: asyncio.Event) -> None:
        assert self._wake is not None
        settings = self._settings
        next_maintenance = time.monotonic()
        while not stop.is_set() and not self._parent_is_gone():
            # Cleared before looking, so a delivery that ends meanwhile cuts the next wait short.
            self._wake.clear()
            try:
                if time.monotonic() >= next_maintenance:
                    next_maintenance = time.monotonic() + MAINTENANCE_SECONDS
                    await self._maintain()
                free = settings.worker_concurrency - len(self._in_flight)
                # Idle workers only read: SQLite's write lock is taken when there is work.
                work = await self._in_db(webhook_delivery.find_work) if free > 0 else None
                if work is None or work.is_idle:
                    await _wait_any(stop, self._wake, settings.worker_poll_seconds)
                    continue
                fanned = 0
                if work.behind:
                    fanned = await self._in_db(webhook_delivery.fan_out, behind=work.behind)
                self._queued_since_analyze += fanned
                if self._queued_since_analyze >= ANALYZE_AFTER_EVENTS:
                    self._queued_since_analyze = 0
                    await self._in_db(webhook_delivery.refresh_statistics)
                free = settings.worker_concurrency - len(self._in_flight)
                claims: list[Claim] = []
                if free > 0 and (work.due or fanned):
                    claims = await self._in_db(
                        webhook_delivery.claim,
                        limit=free,
                        lease_seconds=settings.webhook_lease_seconds,
                    )
            except Exception:
                logger.exception("webhook worker: database step failed; retrying")
                await _wait(stop, ERROR_PAUSE_SECONDS)
                continue
            for claim in claims:
                task = asyncio.create_task(self._deliver(client, claim))
                self._in_flight[task] = claim
                task.add_done_callback(self._done)
            if fanned or (claims and len(claims) == free):
                continue  # more may be waiting right now
            await _wait_any(stop, self._wake, settings.worker_poll_seconds)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        if self._wake is not None:
            self._wake.set()  # a finished delivery may unblock the next of its resource

    async def _maintain(self) -> None:
        for task in self.maintenance:
            try:
                await asyncio.get_running_loop().run_in_executor(self._db, task)
            except Exception:
                logger.exception("webhook worker: maintenance task failed")

    async def _deliver(self, client: httpx2.AsyncClient, claim: Claim) -> None:
        """Send one delivery and record how it went."""
        if claim.event is None:
            outcome = Outcome(claim, None, webhook_delivery.EVENT_GONE, give_up=True)
        else:
            outcome = await self._send(client, claim)
        try:
            state = await self._record(outcome)
        except Exception:
            # Unrecorded: the claim's lease runs out and it is sent again (at least once).
            logger.exception("webhook worker: could not record a delivery's outcome")
            return
        if state == DEAD:
            logger.warning(
                "webhook delivery gave up",
                extra={
                    "tenant_id": claim.tenant_id,
                    "endpoint_id": claim.endpoint_id,
                    "event_seq": claim.event_seq,
                    "attempts": claim.attempts + 1,
                },
            )

    async def _send(self, client: httpx2.AsyncClient, claim: Claim) -> Outcome:
        refusal = await self._refused_destination(claim.url)
        if refusal is not None:
            return Outcome(claim, None, refusal)
        now = int(time.time())
        body = claim.body(self._issuer, now)
        try:
            # A total deadline too: httpx's timeout is per read, and a receiver trickling
            # bytes would otherwise hold the delivery for ever.
            async with asyncio.timeout(self._settings.webhook_timeout_seconds):
                request = client.build_request(
                    "POST", claim.url, content=body, headers=claim.headers(body, now)
                )
                # The answer's body is never read: only its status counts.
                response = await client.send(request, stream=True)
                await response.aclose()
        except TimeoutError:
            return Outcome(
                claim, None, f"no answer within {self._settings.webhook_timeout_seconds:g} s"
            )
        except Exception as failure:  # connection refused, DNS, TLS, a bad URL...
            error = (
                f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__
            )
            return Outcome(claim, None, error)
        return Outcome(claim, response.status_code)

    async def _refused_destination(self, url: str) -> str | None:
        """Why a URL may not be sent to: it resolves to a non-public address (or not at all).

        Tenants choose their URLs; without this, one could aim the worker at the platform's
        own internal services. (The address is checked, then resolved again by the HTTP client:
        a DNS answer that changes in between is not caught.)
        """
        if self._settings.webhook_allow_private_networks:
            return None
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        # The client keeps its connections to a host open; resolving again for each of the
        # hundreds of deliveries a second to that host would only load the resolver.
        checked = self._destinations.get((host, port))
        if checked is not None and checked[0] > time.monotonic():
            return checked[1]
        verdict = await self._resolve_and_check(host, port)
        self._destinations[(host, port)] = (time.monotonic() + DESTINATION_CHECK_SECONDS, verdict)
        return verdict

    async def _resolve_and_check(self, host: str, port: int) -> str | None:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as error:
            return f"cannot resolve {host}: {error}"
        for *_, address in found:
            ip = ipaddress.ip_address(address[0])
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            if not ip.is_global:
                return (
                    f"refused: {host} resolves to {ip}, which is not a public address "
                    "(MUSTER_WEBHOOK_ALLOW_PRIVATE_NETWORKS)"
                )
        return None

    async def _record(self, outcome: Outcome) -> str:
        """Queue an outcome for the next batch write and wait for it; return the new state."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._outcomes.append((outcome, future))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._write_outcomes())
        return await future

    async def _write_outcomes(self) -> None:
        # Outcomes that end while a batch is being written wait for the next one: under load
        # one transaction records many deliveries.
        while self._outcomes:
            batch, self._outcomes = self._outcomes, []
            try:
                states = await self._in_db(
                    webhook_delivery.record_outcomes, [o for o, _ in batch], self._policy
                )
            except Exception as error:
                for _, future in batch:
                    future.set_exception(error)
                continue
            for (_, future), state in zip(batch, states, strict=True):
                future.set_result(state)

    async def _finish(self, grace_seconds: float) -> None:
        """Let the requests in flight end; give back to the queue those still running after."""
        if not self._in_flight:
            return
        _done, pending = await asyncio.wait(set(self._in_flight), timeout=grace_seconds + 1)
        unfinished = [self._in_flight[task] for task in pending if task in self._in_flight]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if unfinished:
            try:
                await self._in_db(webhook_delivery.release, unfinished)
            except Exception:
                logger.exception("webhook worker: could not give back unfinished deliveries")


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    """Sleep until stop or wake is set, or for `seconds`."""
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
