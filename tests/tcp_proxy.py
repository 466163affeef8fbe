"""TcpProxy: a loopback TCP relay a test can cut, refuse or freeze, to stand between Muster and
its PostgreSQL server without touching the shared server itself.

- `refuse()`: close the listener and every relayed connection (connection refused, and a
  connection lost mid-request); `accept()` listens again on the same port.
- `freeze()`: keep every connection open but relay nothing, as a stopped (SIGSTOP) or cut-off
  server looks from the client; `thaw()` relays again, including what waited.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from typing import Any


class TcpProxy:
    """Relays 127.0.0.1:`port` to `target` in a thread of its own."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._selector = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._frozen = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()

    def __enter__(self) -> TcpProxy:
        self.accept()
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.refuse()

    def accept(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.setblocking(False)
        with self._lock:
            self._listener = listener
            self._selector.register(listener, selectors.EVENT_READ, "accept")

    def refuse(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            if listener is not None:
                self._selector.unregister(listener)
                listener.close()
            for sock in list(self._pairs):
                self._drop(sock)

    def freeze(self) -> None:
        self._frozen.set()

    def thaw(self) -> None:
        self._frozen.clear()

    def _drop(self, sock: socket.socket) -> None:
        peer = self._pairs.pop(sock, None)
        for each in (sock, peer):
            if each is None:
                continue
            self._pairs.pop(each, None)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(each)
            with contextlib.suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)
            each.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._frozen.is_set():
                self._stop.wait(0.01)
                continue
            with self._lock:
                events = self._selector.select(timeout=0.01)
                for key, _ in events:
                    sock: socket.socket = key.fileobj  # type: ignore[assignment]
                    if key.data == "accept":
                        self._accept(sock)
                    elif sock in self._pairs:
                        self._relay(sock)

    def _accept(self, listener: socket.socket) -> None:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        try:
            server = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        for sock in (client, server):
            sock.setblocking(True)
            self._selector.register(sock, selectors.EVENT_READ, "relay")
        self._pairs[client] = server
        self._pairs[server] = client

    def _relay(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(sock)
            return
        try:
            self._pairs[sock].sendall(data)
        except OSError:
            self._drop(sock)
