"""Page: one page of a console list, with the total that the pager shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
PAGE_SIZE = 50
MAX_PAGE_NUMBER = 1_000_000


def offset_of(number: int, size: int = PAGE_SIZE) -> int:
    """The first row of a 1-based page number (out-of-range numbers are clamped)."""
    return (min(max(number, 1), MAX_PAGE_NUMBER) - 1) * size


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Items of page `number` (1-based) out of `total` matches."""

    items: list[T]
    total: int
    number: int
    size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def first_index(self) -> int:
        return 0 if not self.items else (self.number - 1) * self.size + 1

    @property
    def last_index(self) -> int:
        return (self.number - 1) * self.size + len(self.items)
