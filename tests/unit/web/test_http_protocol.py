"""CoalescingTransport: one write per event-loop step, bounded by FLUSH_BYTES."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from muster.web.http_protocol import FLUSH_BYTES, CoalescingTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> Any:
        return f"info:{name}"


class StepLoop:
    """The part of an event loop the transport uses: call_soon, run at the end of the step."""

    def __init__(self) -> None:
        self.soon: list[Callable[[], None]] = []

    def call_soon(self, callback: Callable[[], None]) -> None:
        self.soon.append(callback)

    def end_step(self) -> None:
        callbacks, self.soon = self.soon, []
        for callback in callbacks:
            callback()

    def close(self) -> None:
        assert not self.soon


def _coalescing() -> tuple[CoalescingTransport, RecordingTransport, StepLoop]:
    loop = StepLoop()
    real = RecordingTransport()
    return CoalescingTransport(real, loop), real, loop  # type: ignore[arg-type]


def test_headers_and_body_written_in_one_step_leave_as_one_write() -> None:
    transport, real, loop = _coalescing()
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"{}")
    assert real.writes == []  # nothing until the loop step ends
    loop.end_step()
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
    loop.close()


def test_a_big_response_is_written_as_soon_as_it_reaches_the_flush_size() -> None:
    transport, real, loop = _coalescing()
    chunk = b"x" * (FLUSH_BYTES // 2)
    transport.write(chunk)
    transport.write(chunk)
    assert real.writes == [chunk + chunk]
    transport.write(b"tail")
    loop.end_step()
    assert real.writes == [chunk + chunk, b"tail"]
    loop.close()


def test_close_writes_what_is_pending_first_and_other_calls_pass_through() -> None:
    transport, real, loop = _coalescing()
    transport.write(b"last words")
    transport.close()
    assert real.writes == [b"last words"] and real.closed and transport.is_closing()
    assert transport.get_extra_info("peername") == "info:peername"
    loop.end_step()  # the scheduled flush finds nothing to write
    assert real.writes == [b"last words"]
    loop.close()
