"""Wiring: what create_app hands to the web layer (settings, units of work, the thread pool)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from muster.config import Settings
from muster.services.database import UnitOfWork
from muster.services.paging import CursorKeyring
from muster.web.blocking import BlockingPool
from muster.web.failed_auth import FailedAuthentications
from muster.web.metrics import Metrics


@dataclass(frozen=True, slots=True)
class Wiring:
    """The web layer's only handle on the rest of Muster."""

    settings: Settings
    uow_factory: Callable[[str | None], UnitOfWork]
    # Where every database call and long CPU job of a request runs (never the event loop).
    blocking: BlockingPool
    # Bad credentials per client address: counted, logged and throttled (never a tenant's log).
    failed_auth: FailedAuthentications
    # The keys that sign list cursors (MUSTER_CURSOR_KEYS, else one kept in the database).
    cursor_keyring: CursorKeyring
    metrics: Metrics = field(default_factory=Metrics)
