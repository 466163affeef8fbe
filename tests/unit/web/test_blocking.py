"""BlockingPool: blocking calls run in its threads, bounded, fair per tenant, never on the loop."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from muster.errors import ScimError
from muster.web.blocking import BlockingPool


def _pool(size: int = 2, **options: Any) -> BlockingPool:
    options.setdefault("queue_timeout", 5.0)
    options.setdefault("call_timeout", 5.0)
    return BlockingPool(size, **options)


def test_calls_run_in_a_pool_thread_and_return_their_value() -> None:
    pool = _pool()

    async def main() -> tuple[str, int]:
        name = await pool.run(lambda: threading.current_thread().name)
        return name, await pool.run(sum, [1, 2, 3])

    name, total = asyncio.run(main())
    pool.close()
    assert name.startswith("muster-blocking-") and total == 6


def test_an_error_reaches_the_caller() -> None:
    pool = _pool()

    def fails() -> None:
        raise ScimError.invalid_value("nope")

    async def main() -> None:
        await pool.run(fails)

    with pytest.raises(ScimError, match="nope"):
        asyncio.run(main())
    pool.close()


def test_the_loop_keeps_serving_while_a_call_blocks() -> None:
    pool = _pool()
    release = threading.Event()

    async def main() -> int:
        blocked = asyncio.ensure_future(pool.run(release.wait, 5))
        ticks = 0
        started = time.monotonic()
        while time.monotonic() - started < 0.2:  # the loop runs other work meanwhile
            await asyncio.sleep(0.01)
            ticks += 1
        release.set()
        await blocked
        return ticks

    assert asyncio.run(main()) >= 10
    pool.close()


def test_a_full_pool_answers_503_busy_after_the_queue_timeout() -> None:
    pool = _pool(size=1, queue_timeout=0.1)
    release = threading.Event()

    async def main() -> ScimError:
        holder = asyncio.ensure_future(pool.run(release.wait, 5))
        await asyncio.sleep(0.05)
        try:
            await pool.run(lambda: None)
        except ScimError as error:
            return error
        finally:
            release.set()
            await holder
        raise AssertionError("the second call got a slot")

    error = asyncio.run(main())
    pool.close()
    assert (error.status, error.reason, error.retry_after) == (503, "busy", 1)


def test_one_tenant_holds_at_most_its_share_and_others_still_get_in() -> None:
    pool = _pool(size=4, per_key=2, queue_timeout=0.2)
    release = threading.Event()

    async def main() -> tuple[list[str], str]:
        hogs = [asyncio.ensure_future(pool.run_for("a", release.wait, 5)) for _ in range(3)]
        await asyncio.sleep(0.05)
        assert pool.in_use == 2  # the third of tenant a waits for a's own slot
        other = await pool.run_for("b", lambda: "b served")
        outcomes = []
        release_later = asyncio.get_running_loop().call_later(0.5, release.set)
        for hog in hogs:
            try:
                await hog
                outcomes.append("served")
            except ScimError as error:
                outcomes.append(str(error.reason))
        release_later.cancel()
        return outcomes, other

    outcomes, other = asyncio.run(main())
    pool.close()
    assert other == "b served"
    assert sorted(outcomes) == ["busy", "served", "served"]


def test_a_stalled_database_is_refused_at_once() -> None:
    pool = _pool(is_stalled=lambda: True)

    async def main() -> None:
        await pool.run(lambda: None)

    started = time.monotonic()
    with pytest.raises(ScimError) as raised:
        asyncio.run(main())
    assert raised.value.reason == "stalled" and raised.value.retry_after == 5
    assert time.monotonic() - started < 0.5


def test_a_call_past_the_timeout_is_given_up_told_to_stop_and_keeps_its_thread() -> None:
    pool = _pool(size=1, call_timeout=0.1, queue_timeout=0.05)
    release = threading.Event()
    told: list[str] = []

    async def main() -> tuple[ScimError, str | None]:
        async with pool.slot() as slot:
            try:
                await slot.call(release.wait, 5, on_abandon=lambda: told.append("stop"))
            except ScimError as error:
                given_up = error
        # The thread still runs the abandoned call: its slot is not handed out meanwhile.
        try:
            await pool.run(lambda: None)
            busy = None
        except ScimError as error:
            busy = error.reason
        release.set()
        for _ in range(100):
            if pool.in_use == 0:
                break
            await asyncio.sleep(0.01)
        return given_up, busy

    given_up, busy = asyncio.run(main())
    pool.close()
    assert (given_up.status, given_up.reason) == (503, "request_timeout")
    assert told == ["stop"] and busy == "busy" and pool.in_use == 0


def test_a_cancelled_request_gives_its_slot_back_once_its_call_ends() -> None:
    pool = _pool(size=1)
    release = threading.Event()
    cleaned: list[str] = []

    async def request() -> None:
        async with pool.slot() as slot:
            try:
                await slot.call(release.wait, 5)
            finally:
                slot.call_soon(cleaned.append, "closed")

    async def main() -> int:
        task = asyncio.ensure_future(request())
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.sleep(0.05)
        held_while_running = pool.in_use
        release.set()
        for _ in range(100):
            if pool.in_use == 0:
                break
            await asyncio.sleep(0.01)
        return held_while_running

    assert asyncio.run(main()) == 1
    pool.close()
    assert cleaned == ["closed"] and pool.in_use == 0
