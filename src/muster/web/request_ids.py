"""Request ids: accept a sane incoming X-Request-Id or make one, and mark it for the logs."""

from __future__ import annotations

import os
import random
import re
import secrets

from starlette.types import Message, Send

from muster.process_logs import request_id_var

HEADER = b"x-request-id"
# What a load balancer or IdP may hand us and we will echo: a UUID (36), nginx's $request_id
# (32 hex) and the like. Anything longer or with other characters is replaced, never echoed:
# it would land in logs, response headers and the provisioning log (request_id is 36 wide).
MAX_LENGTH = 36
_SANE = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:-]{0,%d}" % (MAX_LENGTH - 1))


class _Ids:
    """Random ids without a system call each: a request id names a request, it guards nothing.

    secrets.token_hex() reads the kernel's random source on every call, and that read lets
    another thread take Python's lock in the middle of a request. Seeded from it once per
    process (a forked child makes a new seed).
    """

    def __init__(self) -> None:
        self._pid = -1
        self._random = random.Random()

    def new(self) -> str:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._random.seed(secrets.token_bytes(16))
        return f"{self._random.getrandbits(64):016x}"


_ids = _Ids()


def new_request_id() -> str:
    return _ids.new()


def accept(incoming: bytes | None) -> str:
    """The incoming id when it is sane, a new one otherwise."""
    if incoming is not None and _SANE.fullmatch(incoming):
        return incoming.decode("ascii")
    return new_request_id()


def begin(incoming: bytes | None) -> str:
    """Fix the id of the request now starting (its log lines carry it too) and return it."""
    request_id = accept(incoming)
    request_id_var.set(request_id)
    return request_id


class TaggedSend:
    """An ASGI send that adds X-Request-Id to the response and remembers its status."""

    __slots__ = ("_header", "_send", "status")

    def __init__(self, send: Send, request_id: str, *, status: int) -> None:
        self._send = send
        self._header = (HEADER, request_id.encode())
        self.status = status  # until the response starts

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            message["headers"] = [*message.get("headers", []), self._header]
        await self._send(message)
