"""Receiver, a real HTTP server on 127.0.0.1 (a thread) that takes webhook deliveries,
running_worker, a DeliveryWorker on a thread of its own, and settle_deliveries, the worker's
steps run by hand to leave deliveries delivered, dead or waiting.

It checks every request's signature with the endpoint's secret, the way docs/webhooks.md tells
receivers to, and records what arrived. A Security Event Token (Content-Type
application/secevent+jwt) is verified with PyJWT too: HS256 signature, `typ`, `aud` and `iss`.
It can be told to fail (answer 500) or to hang (hold each request open until released), as a
receiver in trouble would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

from muster.config import Settings
from muster.db.unit_of_work import UnitOfWork
from muster.services import security_events, webhook_delivery, webhook_signing
from muster.services.webhook_delivery import RetryPolicy
from muster.services.webhook_worker import DeliveryWorker

# Small numbers, so retries, leases and polls happen within a test's second or two.
FAST = {
    "webhook_max_attempts": 3,
    "webhook_backoff_base_seconds": 0.05,
    "webhook_backoff_max_seconds": 0.2,
    "webhook_timeout_seconds": 1.0,
    "webhook_lease_seconds": 2.0,
    "worker_poll_seconds": 0.02,
    "worker_concurrency": 4,
    "webhook_allow_private_networks": True,  # the receivers listen on 127.0.0.1
}


def fast_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=database_url, create_demo_tenant=False, **{**FAST, **overrides})


@dataclass(frozen=True)
class Received:
    """One request the receiver accepted (answered 2xx): a JSON event, or a SET's claims."""

    path: str
    event: dict[str, Any]  # the public event, or the verified claims of a SET
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival

    @property
    def seq(self) -> int:
        return int(self.event["sequence"])

    @property
    def resource_id(self) -> str:
        return str(self.event["resource"]["id"])


class Receiver:
    """Takes POST /<name>; each name has the secret of the endpoint registered at that URL."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.issuer = security_events.issuer(None)  # the `iss` a SET must carry
        self.received: list[Received] = []
        self.refused: list[str] = []  # requests with a bad signature: must stay empty
        self.arrivals = 0  # requests seen, answered or not
        self.status = 200  # what to answer; set to 500 to fail
        self.hanging = threading.Event()  # set: hold requests until `release` is set
        self.release = threading.Event()
        self._lock = threading.RLock()  # wait_for's condition may read through events_of
        self._changed = threading.Condition(self._lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{name}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                receiver._take(self)

        return Handler

    def _take(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length", "0")))
        name = request.path.lstrip("/")
        with self._lock:
            self.arrivals += 1
            self._changed.notify_all()
        if self.hanging.is_set():
            self.release.wait(timeout=30)
        secret = self.secrets.get(name, "")
        signature = request.headers.get(webhook_signing.SIGNATURE_HEADER, "")
        if not webhook_signing.verify(secret, body, signature, now=int(time.time())):
            with self._lock:
                self.refused.append(f"{name}: {signature}")
            self._answer(request, 400)
            return
        status = self.status
        if 200 <= status < 300:
            try:
                event = self._event(request, name, body)
            except jwt.InvalidTokenError as error:
                with self._lock:
                    self.refused.append(f"{name}: {error!r}")
                self._answer(request, 400)
                return
            received = Received(name, event, dict(request.headers.items()), time.monotonic())
            with self._lock:
                self.received.append(received)
                self._changed.notify_all()
        self._answer(request, status)

    def _event(self, request: BaseHTTPRequestHandler, name: str, body: bytes) -> dict[str, Any]:
        """The JSON event, or a SET's claims once verified as docs/webhooks.md says."""
        if request.headers.get("Content-Type") != security_events.MEDIA_TYPE:
            return dict(json.loads(body))
        token = body.decode()
        if jwt.get_unverified_header(token).get("typ") != "secevent+jwt":
            raise jwt.InvalidTokenError("the JWT's typ is not secevent+jwt")
        claims: dict[str, Any] = jwt.decode(
            token,
            self.secrets.get(name, ""),
            algorithms=["HS256"],
            audience=self.url(name),
            issuer=self.issuer,
            options={"require": ["iss", "aud", "iat", "jti"]},
        )
        if claims["jti"] != request.headers.get(webhook_signing.EVENT_ID_HEADER):
            raise jwt.InvalidTokenError("jti is not the Muster-Event-Id")
        return claims

    @staticmethod
    def _answer(request: BaseHTTPRequestHandler, status: int) -> None:
        try:
            request.send_response(status)
            request.send_header("Content-Length", "2")
            request.end_headers()
            request.wfile.write(b"ok")
        except OSError:
            pass  # the worker went away (killed, or gave up on a hanging request)

    def wait_for(self, condition: Callable[[Receiver], bool], timeout: float = 20) -> None:
        """Wait until `condition(self)` holds; fail the test with what arrived otherwise."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not condition(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(r.path, r.event.get("type") or r.event["jti"]) for r in self.received]
                    raise AssertionError(f"timed out; arrivals={self.arrivals} received={seen}")
                self._changed.wait(min(left, 0.1))

    def events_of(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r.event for r in self.received if r.path == name]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def running_worker(
    uow_factory: Callable[[str | None], UnitOfWork],
    settings: Settings,
    maintenance: list[Callable[[], object]] | None = None,
) -> Iterator[DeliveryWorker]:
    """A delivery worker on its own thread and event loop, stopped (as by SIGTERM) at exit."""
    worker = DeliveryWorker(uow_factory, settings, maintenance=maintenance or [])
    started = threading.Event()
    handles: dict[str, Any] = {}

    async def run() -> None:
        handles["loop"], handles["stop"] = asyncio.get_running_loop(), asyncio.Event()
        started.set()
        await worker.run(handles["stop"])

    thread = threading.Thread(target=lambda: asyncio.run(run()), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield worker
    finally:
        handles["loop"].call_soon_threadsafe(handles["stop"].set)
        thread.join(timeout=20)
        assert not thread.is_alive(), "the worker did not stop"


def settle_deliveries(
    uow_factory: Callable[[str | None], UnitOfWork], outcomes: Sequence[str]
) -> None:
    """Queue every new event, then settle the due deliveries, oldest first, one outcome each:
    "delivered" (answered 200), "dead" (503 on the last attempt) or "pending" (a connection
    error, retried in an hour), recorded as the worker records them. Deliveries beyond the
    outcomes (and those of a resource waiting behind an earlier one) are left due."""
    while webhook_delivery.fan_out(uow_factory(None)):
        pass
    claims = webhook_delivery.claim(uow_factory(None), limit=1000, lease_seconds=60)
    claims.sort(key=lambda c: (c.event_seq, c.endpoint_id))
    for claim, outcome in zip(claims, outcomes, strict=False):
        if outcome == "delivered":
            webhook_delivery.record_delivered(uow_factory(None), claim, 200)
        elif outcome == "dead":
            last = RetryPolicy(max_attempts=claim.attempts + 1, base_seconds=1, max_seconds=1)
            webhook_delivery.record_failed(
                uow_factory(None), claim, last, status=503, error="the receiver answered 503"
            )
        else:
            later = RetryPolicy(max_attempts=30, base_seconds=3600, max_seconds=3600)
            webhook_delivery.record_failed(
                uow_factory(None),
                claim,
                later,
                status=None,
                error="ConnectError: All connection attempts failed",
            )
    webhook_delivery.release(uow_factory(None), claims[len(outcomes) :])
