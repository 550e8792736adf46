"""One page of a list: at most `limit` rows from `offset`, and where the next page starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
DEFAULT_LIMIT = 50
MOST = 200


@dataclass(frozen=True)
class Page:
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MOST or self.offset < 0:
            raise ValueError(f"a page holds 1 to {MOST} rows from offset 0 on")

    def window(self, query: Any) -> Any:
        """The query narrowed to this page, plus one row that tells whether more follow."""
        return query.limit(self.limit + 1).offset(self.offset)

    def cut(self, rows: list[T]) -> tuple[list[T], int | None]:
        """This page's rows (of a window, or of a whole list) and the next page's offset."""
        return rows[:self.limit], (self.offset + self.limit if len(rows) > self.limit
                                   else None)

    def slice(self, rows: list[T]) -> tuple[list[T], int | None]:
        """This page of a whole, small list held in memory."""
        return self.cut(rows[self.offset:])
