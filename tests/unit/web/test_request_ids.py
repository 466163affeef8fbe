"""Incoming X-Request-Id: echoed when sane, replaced otherwise."""

from __future__ import annotations

import contextvars

import pytest

from muster.process_logs import request_id_var
from muster.web import request_ids


@pytest.mark.parametrize(
    "incoming",
    [b"2819c223-7f76-453a-919d-413861904646", b"f3a1c0de9b", b"lb-1.req:42_a"],
)
def test_a_sane_incoming_id_is_kept(incoming: bytes) -> None:
    assert request_ids.accept(incoming) == incoming.decode()


@pytest.mark.parametrize(
    "incoming",
    [
        None,
        b"",
        b"x" * 37,  # longer than the provisioning log keeps
        b"abc def",
        b"abc\r\nSet-Cookie: a=b",
        b"<script>",
        b"-leading-dash",
        "caf\u00e9".encode(),
    ],
)
def test_anything_else_gets_a_new_id(incoming: bytes | None) -> None:
    request_id = request_ids.accept(incoming)

    assert request_id != (incoming or b"").decode("utf-8", "replace")
    assert len(request_id) == 16 and int(request_id, 16) >= 0


def test_begin_marks_the_id_for_the_logs() -> None:
    def in_a_request() -> tuple[str, str | None]:
        return request_ids.begin(b"abc-123"), request_id_var.get()

    # Each request runs in its own task, with its own copy of the context.
    assert contextvars.copy_context().run(in_a_request) == ("abc-123", "abc-123")
    assert request_id_var.get() is None
