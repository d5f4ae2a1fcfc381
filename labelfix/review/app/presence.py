"""Leases given back when a reviewer leaves: the browser tab is closed, or its connection is gone.

Streamlit has no session-end hook, so one watcher thread per server process looks every second at the
sessions that hold a page of leased items, and asks Streamlit's runtime whether each is still connected
(``Runtime.is_active_session``, safe from any thread). A session gone for :data:`GRACE_SECONDS` (a short
network drop reconnects within it) has its page's items released, except those another live session of the
same reviewer (a second tab) shows. The lease expiry (``lease_seconds``) stays the fallback, e.g. when the
server itself stops.

It also knows which reviewer name each connected session works under, so two tabs under one name (a
bookmark, a copied address) are both told: leases and decisions belong to the name, so the tabs share them.
Why not leases per tab: a reviewer name is the identity on every decision, and an undo, a lead's revert and
the per-reviewer counts all go by it; one person's two tabs are one reviewer, and keeping them apart by
session would make them block each other's items with nothing gained.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from labelfix.errors import LabelfixError
from labelfix.review.service import ReviewService

GRACE_SECONDS = 2.0
POLL_SECONDS = 1.0

_log = logging.getLogger(__name__)


@dataclass
class _Held:
    service: ReviewService
    reviewer: str
    suggestion_ids: frozenset[int]
    gone_since: float | None = field(default=None)


class Presence:
    """Which connected session shows which leased items, and who releases them when a session goes away.

    Parameters
    ----------
    is_active
        ``is_active(session_id) -> bool``: whether the browser session is still connected.
    clock
        Monotonic seconds (tests pass a fake one).
    grace_seconds
        How long a session may be disconnected before its items are released.
    """

    def __init__(self, *, is_active: Callable[[str], bool], clock: Callable[[], float] = time.monotonic,
                 grace_seconds: float = GRACE_SECONDS) -> None:
        self._is_active = is_active
        self._clock = clock
        self._grace = grace_seconds
        self._held: dict[str, _Held] = {}
        self._names: dict[str, tuple[str, str]] = {}  # tab -> (session id, the reviewer name it works under)
        self._lock = threading.Lock()

    def hold(self, *, session_id: str, service: ReviewService, reviewer: str, suggestion_ids: Iterable[int]) -> None:
        """Record the leased items the session's page shows now (replaces what it showed before)."""
        with self._lock:
            self._held[session_id] = _Held(service, reviewer, frozenset(int(i) for i in suggestion_ids))

    def forget(self, *, session_id: str) -> None:
        """The session holds nothing any more (e.g. it renamed its reviewer and released everything)."""
        with self._lock:
            self._held.pop(session_id, None)

    def visit(self, *, session_id: str, reviewer: str, tab: str | None = None) -> int:
        """The session works under ``reviewer`` now; return how many *other* connected tabs use that name.

        ``tab`` tells apart tabs that share a session id (Streamlit's test harness gives every run one id);
        by default the session is the tab.
        """
        tab = tab or session_id
        with self._lock:
            self._names[tab] = (session_id, reviewer)
            others = [sid for other, (sid, name) in self._names.items() if other != tab and name == reviewer]
        return sum(1 for sid in others if self._is_active(sid))

    def sessions(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def sweep(self) -> int:
        """Release the items of sessions disconnected longer than the grace time; return how many were released."""
        now = self._clock()
        due: list[tuple[str, _Held]] = []
        with self._lock:
            for tab in [tab for tab, (sid, _) in self._names.items() if not self._is_active(sid)]:
                del self._names[tab]  # a closed tab no longer counts as a second tab
            for session_id, held in self._held.items():
                if self._is_active(session_id):
                    held.gone_since = None
                elif held.gone_since is None:
                    held.gone_since = now
                elif now - held.gone_since >= self._grace:
                    due.append((session_id, held))
        released = 0
        for session_id, held in due:
            with self._lock:
                # a second tab of the same reviewer keeps what it shows (leases belong to the name)
                kept = set().union(*(other.suggestion_ids for sid, other in self._held.items()
                                     if sid != session_id and other.reviewer == held.reviewer
                                     and other.gone_since is None))
            ids = sorted(held.suggestion_ids - kept)
            try:
                released += held.service.release(reviewer=held.reviewer, suggestion_ids=ids) if ids else 0
            except LabelfixError as error:  # the store is busy: try again on the next sweep
                _log.warning("could not release the leases of %s yet: %s", held.reviewer, error)
                continue
            with self._lock:
                if self._held.get(session_id) is held:
                    del self._held[session_id]
        return released

    def watch(self, *, every: float = POLL_SECONDS) -> threading.Thread:
        """Sweep every ``every`` seconds in a daemon thread (for the life of the server process)."""

        def loop() -> None:
            while True:
                time.sleep(every)
                try:
                    self.sweep()
                # the watcher must outlive any one failure; the lease expiry is the fallback
                except Exception:  # noqa: BLE001
                    _log.exception("lease watcher")

        thread = threading.Thread(target=loop, name="labelfix-leases", daemon=True)
        thread.start()
        return thread
