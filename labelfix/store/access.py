"""Short-lived access to a store file for a long-running process (the review server).

DuckDB lets one process at a time hold a file read-write, for as long as any connection of that process
is open. A server that kept its connection would lock every other ``labelfix`` command out for the whole
session (issue 14). :class:`SharedStoreFile` opens the file when a request needs it, lets the threads of
the process share that one database (each request gets its own cursor, so overlapping requests never
share a cursor) and closes it as soon as the last request is done, so other processes can take their
turn between requests. Opening waits with backoff while another process holds the file
(:func:`~labelfix.store.database.connect_with_retry`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from labelfix.errors import StoreError
from labelfix.store.database import Store, connect_with_retry, open_store, waiting_marker

__all__ = ["SharedStoreFile"]

# A process waiting for the store keeps its marker file fresher than this (it retries every <= 0.25 s).
MARKER_FRESH_SECONDS = 2.0
# How long a request holds back so a waiting process gets its turn (then it waits for the lock as usual).
YIELD_SECONDS = 5.0


class SharedStoreFile:
    """A store file opened on demand and closed when idle; safe to use from many threads.

    Parameters
    ----------
    path
        The store file (migrated once here, so requests never migrate).
    lock_timeout
        Seconds a request waits for the file while another process holds it.
    linger_seconds
        Keep the file open this long after the last request ends (0: close at once). A linger keeps the
        database warm between the requests of a reviewer who is working (an open costs 20 ms, and the
        first queries after it read from disk again; a close after writes checkpoints them), but it is
        cut short as soon as another process waits for the store: that process announces itself with
        :func:`~labelfix.store.database.waiting_marker`, the file is closed after the running requests,
        and new requests hold back (up to 5 s) until the waiting process has it.

    Examples
    --------
    >>> shared = SharedStoreFile(store_path)  # doctest: +SKIP
    >>> with shared.connect() as store:  # doctest: +SKIP
    ...     store.scalar("SELECT count(*) FROM suggestions")
    """

    def __init__(self, path: str | Path, *, lock_timeout: float = 30.0, linger_seconds: float = 0.0) -> None:
        self.path = Path(path)
        self.lock_timeout = float(lock_timeout)
        self.linger_seconds = float(linger_seconds)
        with open_store(self.path, create=False, lock_timeout=self.lock_timeout):
            pass  # fails clearly on a missing or foreign file, and applies pending migrations once
        self._guard = threading.Lock()
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._users = 0
        self._generation = 0
        self._local = threading.local()  # depth of hold() in this thread: its calls never hold back
        self.opens = 0  # how many times the file was opened (tests and benchmarks read it)

    @property
    def is_open(self) -> bool:
        """Whether this process holds the file now."""
        return self._connection is not None

    def someone_waits(self) -> bool:
        """Whether another process is waiting for the store now (a fresh marker not written by this one)."""
        marker = waiting_marker(self.path)
        try:
            fresh = time.time() - marker.stat().st_mtime < MARKER_FRESH_SECONDS
            return fresh and marker.read_text(encoding="utf-8").strip() != str(os.getpid())
        except OSError:
            return False

    def _acquire(self) -> duckdb.DuckDBPyConnection:
        give_way_until = time.monotonic() + YIELD_SECONDS
        while True:
            held_here = getattr(self._local, "depth", 0) > 0
            waiting = not held_here and time.monotonic() < give_way_until and self.someone_waits()
            with self._guard:
                if waiting:
                    if self._connection is not None and not self._users:
                        self._close_locked()  # idle, lingering: let the waiting process in now
                    # else: the running requests finish first and the last one closes the file
                else:
                    if self._connection is None:
                        # Under the guard: concurrent first requests wait for one open instead of racing.
                        self._connection = self._reopen()
                        self.opens += 1
                    self._users += 1
                    self._generation += 1
                    return self._connection
            time.sleep(0.02)  # hold back: the running requests finish, the file closes, the waiter opens it

    def _reopen(self) -> duckdb.DuckDBPyConnection:
        # The file was checked when the server started; since then it may have been moved, deleted or
        # replaced. DuckDB would create an empty store at a missing path, so look first.
        fix = "put the store back, or restart the server with the store's new path"
        if not self.path.is_file():
            raise StoreError("the store file is gone (moved or deleted while the server ran)", file=self.path, fix=fix)
        try:
            return connect_with_retry(self.path, lock_timeout=self.lock_timeout, announce=False)
        except duckdb.Error as error:
            raise StoreError(f"the store file cannot be opened any more ({str(error).splitlines()[0]})",
                             file=self.path, fix=fix) from error

    def _release(self) -> None:
        with self._guard:
            self._users -= 1
            if self._users or self._connection is None:
                return
            if self.linger_seconds <= 0 or self.someone_waits():
                self._close_locked()
                return
            generation = self._generation
        watcher = threading.Thread(target=self._linger, args=(generation,), daemon=True)
        watcher.start()

    def _linger(self, generation: int) -> None:
        """Close the idle file after ``linger_seconds``, or as soon as another process waits for it."""
        deadline = time.monotonic() + self.linger_seconds
        while True:
            expired = time.monotonic() >= deadline
            if expired or self.someone_waits():
                with self._guard:
                    if not self._users and self._generation == generation and self._connection is not None:
                        self._close_locked()
                return
            with self._guard:
                if self._users or self._generation != generation:
                    return  # in use again: the next release starts a new watch
            time.sleep(0.05)

    def _close_locked(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    @contextlib.contextmanager
    def connect(self) -> Iterator[Store]:
        """A :class:`Store` on its own cursor for one request; the file closes after the last request."""
        connection = self._acquire()
        try:
            cursor = connection.cursor()
        except BaseException:
            self._release()
            raise
        try:
            yield Store(cursor, path=self.path)
        finally:
            try:
                cursor.close()
            finally:
                self._release()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep the file open for a group of requests of this thread (e.g. one page), then let it go."""
        self._acquire()
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            yield
        finally:
            self._local.depth -= 1
            self._release()

    def close(self, *, wait_seconds: float = 5.0) -> None:
        """Close the file once the running requests are done (waits up to ``wait_seconds``)."""
        deadline = time.monotonic() + wait_seconds
        while True:
            with self._guard:
                if not self._users or time.monotonic() >= deadline:
                    self._close_locked()
                    return
            time.sleep(0.01)
