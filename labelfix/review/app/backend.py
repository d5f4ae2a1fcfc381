"""What the sidebar chose, as review service calls: :class:`Filters` and the page of items they select."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labelfix.review.models import PENDING, ClassProgress, QueueItem
from labelfix.review.service import ReviewService


@dataclass(frozen=True)
class Filters:
    """Which suggestions the page shows, in which order, how many."""

    run_id: int | None = None
    category_id: int | None = None
    head_first: bool = False
    min_score: float = 0.0
    max_score: float = 1.0
    statuses: tuple[str, ...] | None = PENDING
    kinds: tuple[str, ...] | None = None
    image_id: int | None = None
    with_label: int | None = None
    decided_by: str | None = None
    page_size: int = 12
    page: int = 1

    @property
    def leasing(self) -> bool:
        """Pending items are leased to the reviewer (two reviewers never get the same one)."""
        return self.statuses is not None and set(self.statuses) <= set(PENDING)


def waiting(row: ClassProgress, filters: Filters) -> int:
    """How many of a class's pending items are of the kinds ``filters`` shows."""
    if filters.kinds == ("missing",):
        return row.missing_pending
    if filters.kinds == ("spurious",):
        return row.spurious_pending
    return row.pending


def page_items(service: ReviewService, *, reviewer: str, filters: Filters) -> list[QueueItem]:
    """The items of a page: pending ones leased to ``reviewer``, else a listing (page ``filters.page``).

    The service orders missing-label items before spurious-label ones, so spurious items never lead.

    Examples
    --------
    >>> service = ReviewService(store)  # a store with 8 open suggestions
    >>> [i.category_name for i in page_items(service, reviewer="ana", filters=Filters(page_size=4))]
    ['car', 'car', 'car', 'dog']
    """
    common: dict[str, Any] = dict(category_id=filters.category_id, run_id=filters.run_id,
                                  head_first=filters.head_first, min_score=filters.min_score,
                                  max_score=filters.max_score, kinds=filters.kinds, image_id=filters.image_id,
                                  with_label=filters.with_label)
    if filters.leasing:
        return service.next_items(reviewer=reviewer, n=filters.page_size, statuses=filters.statuses or PENDING,
                                  **common)
    return service.items(statuses=filters.statuses, limit=filters.page_size,
                         offset=(filters.page - 1) * filters.page_size, decided_by=filters.decided_by, **common)
