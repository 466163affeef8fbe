"""BlockingPool: the threads that run database calls and long CPU work, never the event loop.

The event loop only reads requests and writes answers; everything that can wait (a database
call, a lock, SQLite's write lock) or burn CPU (argon2, a SAML signature check, a big body)
runs here. One slot per thread, one thread per database connection: a request holds a slot
while its blocking work runs, so at most `size` requests use the database at once. Beyond
that a request waits its turn for at most `queue_timeout` seconds, then gets a 503.

Isolation: a key (the tenant) holds at most `per_key` slots, so one tenant's lock waits or
slow requests leave the other slots to everyone else; while the database is stalled
(db/health.py) a request is refused at once instead of queueing; a call that runs longer
than `call_timeout` is given up (503) and told to stop (its `on_abandon`). /healthz and
/metrics never come here.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from muster.errors import ScimError

logger = logging.getLogger("muster.web")
P = ParamSpec("P")
T = TypeVar("T")
# Requests allowed to wait for a slot, per slot; a queue longer than this is answered 503 at once.
WAITERS_PER_SLOT = 8
# How often the calls in the threads are checked against the call timeout.
WATCH_SECONDS = 0.5

BUSY = "busy"
STALLED = "stalled"
TIMED_OUT = "request_timeout"


def refusal(reason: str) -> ScimError:
    """The 503 for a request this pool could not run."""
    if reason == STALLED:
        return ScimError.unavailable(
            "the database is not answering; retry in 5 s", retry_after=5, reason=STALLED
        )
    if reason == TIMED_OUT:
        return ScimError.unavailable(
            "the request took too long and was stopped; it may not have been applied; retry in 5 s",
            retry_after=5,
            reason=TIMED_OUT,
        )
    return ScimError.unavailable(
        "every database connection of this server is busy; retry in 1 s", retry_after=1, reason=BUSY
    )


class _Job:
    __slots__ = (
        "args",
        "context",
        "error",
        "fn",
        "future",
        "loop",
        "on_abandon",
        "result",
        "slot",
        "started",
    )

    def __init__(
        self,
        slot: Slot,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any] | None,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        on_abandon: Callable[[], None] | None,
    ) -> None:
        self.slot, self.loop, self.future, self.fn, self.args = slot, loop, future, fn, args
        self.on_abandon = on_abandon
        self.started = time.monotonic()
        self.context = contextvars.copy_context()  # the request id reaches the thread's logs
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        """In a worker thread: run, then hand the outcome back to the loop."""
        try:
            self.result = self.context.run(self.fn, *self.args)
        except BaseException as error:  # delivered to the awaiting request, whatever it is
            self.error = error
        try:  # noqa: SIM105 (a try costs less than suppress(), on every request)
            self.loop.call_soon_threadsafe(self.finish)
        except RuntimeError:  # the loop closed meanwhile (shutdown): nobody waits any more
            pass

    def finish(self) -> None:
        """On the loop: settle the awaiting future (unless it gave up) and free the thread."""
        future = self.future
        if future is not None and not future.done():
            if self.error is not None:
                future.set_exception(self.error)
            else:
                future.set_result(self.result)
        elif self.error is not None and not isinstance(self.error, ScimError):
            # Nobody awaits this outcome (cleanup, or a request given up): still show the bug.
            logger.error("blocking call failed after its request ended", exc_info=self.error)
        self.slot._job_done()


class Slot:
    """One thread, held by one request; its calls run there one after another."""

    __slots__ = ("_pool", "_release_pending", "_released", "_running", "_then", "key")

    def __init__(self, pool: BlockingPool, key: str | None) -> None:
        self._pool, self.key = pool, key
        self._running: _Job | None = None
        self._then: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._release_pending = False
        self._released = False

    async def call(
        self,
        fn: Callable[..., T],
        *args: Any,
        on_abandon: Callable[[], None] | None = None,
    ) -> T:
        """Run fn(*args) in this slot's thread; 503 if it runs past the pool's call timeout."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._start(loop, future, fn, args, on_abandon)
        return await future

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run fn(*args) in this slot's thread without waiting (cleanup that must happen even
        when the request was cancelled), after any call still running there; the slot is
        released only after it ran."""
        if self._running is not None:
            self._then.append((fn, args))
            return
        self._start(asyncio.get_running_loop(), None, fn, args, None)

    def _start(
        self,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any] | None,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        on_abandon: Callable[[], None] | None,
    ) -> None:
        if self._released or self._running is not None:
            raise RuntimeError("a slot runs one call at a time, and only while it is held")
        job = self._running = _Job(self, loop, future, fn, args, on_abandon)
        self._pool._submit(job)

    def _expire(self, job: _Job) -> None:
        """The call ran past the timeout: answer 503 now and tell it to stop."""
        future = job.future
        if future is None or future.done():
            return
        logger.warning(
            "a request's blocking work ran past %.0f s: given up", self._pool.call_timeout
        )
        future.set_exception(refusal(TIMED_OUT))
        if job.on_abandon is not None:
            try:
                job.on_abandon()
            except Exception:
                logger.exception("could not stop a request that was given up")

    def _job_done(self) -> None:
        job, self._running = self._running, None
        if job is not None:
            self._pool._running.discard(job)
        if self._then and job is not None:
            fn, args = self._then.pop(0)
            self._start(job.loop, None, fn, args, None)
            return
        if self._release_pending:
            self.release()

    def release(self) -> None:
        """Give the slot back; if a call still runs (given up, or cancelled), once it ends."""
        if self._released:
            return
        if self._running is not None:
            self._release_pending = True
            return
        self._released = True
        self._pool._release(self.key)


class _Holding:
    """`async with pool.slot(key)`: waits for a slot, and gives it back at the end."""

    __slots__ = ("_key", "_pool", "_slot")

    def __init__(self, pool: BlockingPool, key: str | None) -> None:
        self._pool, self._key = pool, key
        self._slot: Slot | None = None

    async def __aenter__(self) -> Slot:
        await self._pool._acquire(self._key)
        self._slot = Slot(self._pool, self._key)
        return self._slot

    async def __aexit__(self, *_: object) -> None:
        if self._slot is not None:
            self._slot.release()


class BlockingPool:
    """A fixed set of worker threads, handed out as slots, with per-key fairness."""

    def __init__(
        self,
        size: int,
        *,
        queue_timeout: float,
        call_timeout: float,
        is_stalled: Callable[[], bool] = lambda: False,
        per_key: int | None = None,
    ) -> None:
        self.size = size
        self.queue_timeout = queue_timeout
        self.call_timeout = call_timeout
        self.per_key = per_key if per_key is not None else max(1, size // 2)
        self._is_stalled = is_stalled
        self._free = size
        self._held: dict[str, int] = {}
        self._waiters: deque[tuple[str | None, asyncio.Future[None]]] = deque()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._running: set[_Job] = set()  # calls in a thread now, watched for the timeout
        self._watch: asyncio.TimerHandle | None = None
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def slot(self, key: str | None = None) -> _Holding:
        """Hold one slot (a thread) for a request's blocking calls; 503 when none comes.

        `async with pool.slot(tenant_id) as slot: await slot.call(fn, ...)`.
        """
        return _Holding(self, key)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one blocking call in a slot of its own (no tenant share applies)."""
        async with self.slot() as held:
            return await held.call(lambda: fn(*args, **kwargs))

    async def run_for(
        self, key: str | None, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run one blocking call in a slot of its own, counted in `key`'s (a tenant's) share."""
        async with self.slot(key) as held:
            return await held.call(lambda: fn(*args, **kwargs))

    def close(self) -> None:
        """Let the worker threads end once the calls they run are done."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(None)

    @property
    def in_use(self) -> int:
        return self.size - self._free

    async def _acquire(self, key: str | None) -> None:
        if self._is_stalled():
            raise refusal(STALLED)
        # A free slot with requests still waiting means they wait for their own tenant's share
        # (a release hands slots to eligible waiters at once): they do not hold others back.
        if self._free > 0 and self._fits(key):
            self._take(key)
            return
        if len(self._waiters) >= WAITERS_PER_SLOT * self.size:
            raise refusal(BUSY)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (key, waiter)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(self.queue_timeout):
                await waiter  # resolved by _release(), which has taken the slot for us
        except TimeoutError:
            raise refusal(STALLED if self._is_stalled() else BUSY) from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release(key)  # granted at the very moment we gave up: pass it on
            raise
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _fits(self, key: str | None) -> bool:
        return key is None or self._held.get(key, 0) < self.per_key

    def _take(self, key: str | None) -> None:
        self._free -= 1
        if key is not None:
            self._held[key] = self._held.get(key, 0) + 1

    def _release(self, key: str | None) -> None:
        self._free += 1
        if key is not None:
            left = self._held[key] - 1
            if left:
                self._held[key] = left
            else:
                del self._held[key]
        # Wake the longest-waiting request that may take a slot (its tenant below its share).
        for entry in self._waiters:
            waiting_key, waiter = entry
            if waiter.done():
                continue
            if self._free > 0 and self._fits(waiting_key):
                self._waiters.remove(entry)
                self._take(waiting_key)
                waiter.set_result(None)
                return

    def _submit(self, job: _Job) -> None:
        if len(self._threads) < self.size:
            self._start_thread()
        self._running.add(job)
        if self._watch is None:
            self._watch = job.loop.call_later(WATCH_SECONDS, self._watch_calls, job.loop)
        self._jobs.put(job)

    def _watch_calls(self, loop: asyncio.AbstractEventLoop) -> None:
        """Give up the calls that ran past the call timeout; look again while any runs.

        One timer for all calls rather than one per call: it costs nothing per request.
        """
        self._watch = None
        now = time.monotonic()
        for job in list(self._running):
            if now - job.started > self.call_timeout:
                job.slot._expire(job)
        if self._running:
            self._watch = loop.call_later(WATCH_SECONDS, self._watch_calls, loop)

    def _start_thread(self) -> None:
        with self._lock:
            if len(self._threads) >= self.size:
                return
            thread = threading.Thread(
                target=self._work, name=f"muster-blocking-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            job.run()
