"""Wiring: what create_app hands to the web layer (settings and the unit-of-work factory)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from muster.config import Settings
from muster.services.database import UnitOfWork
from muster.web.metrics import Metrics


@dataclass(frozen=True, slots=True)
class Wiring:
    """The web layer's only handle on the rest of Muster."""

    settings: Settings
    uow_factory: Callable[[str | None], UnitOfWork]
    # A unit of work that keeps its connection for a whole request; the caller closes it.
    request_uow_factory: Callable[[str | None], UnitOfWork]
    metrics: Metrics = field(default_factory=Metrics)
