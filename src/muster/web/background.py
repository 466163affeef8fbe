"""BackgroundWriter: a thread that writes a request's bookkeeping after it, in batches.

The provisioning log, token last-use times and rate-limit counts are written here, never on the
event loop and never inside a request: a request only hands its entries over and wakes the
thread. When the database cannot take the write (an outage), the work stays pending and is
tried again every RETRY_SECONDS, so nothing of that window is lost while the process lives.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger("muster.web")
RETRY_SECONDS = 1.0


class BackgroundWriter:
    """Runs `flush` at most every `interval` seconds while there is work; `flush` returns
    whether everything was written."""

    def __init__(self, name: str, interval: float, flush: Callable[[], bool]) -> None:
        self._name, self._interval, self._flush = name, interval, flush
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def wake(self) -> None:
        """There is work: write it within `interval` (cheap when already awake)."""
        if not self._wake.is_set():
            if self._thread is None:
                self._start()
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"muster-{self._name}", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float) -> None:
        """Write what is pending (waiting at most `timeout` seconds), then end the thread."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        stop, wake = self._stop, self._wake
        while not stop.is_set():
            wake.wait()
            if not stop.is_set():
                stop.wait(self._interval)  # let a batch gather
            wake.clear()
            if not self._flush_logged() and not stop.is_set():
                stop.wait(RETRY_SECONDS)
                wake.set()

    def _flush_logged(self) -> bool:
        try:
            return self._flush()
        except Exception:  # bookkeeping must never take the thread down
            logger.exception("background %s failed", self._name)
            return False
