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
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from labelfix.store.database import Store, connect_with_retry, open_store

__all__ = ["SharedStoreFile"]


class SharedStoreFile:
    """A store file opened on demand and closed when idle; safe to use from many threads.

    Parameters
    ----------
    path
        The store file (migrated once here, so requests never migrate).
    lock_timeout
        Seconds a request waits for the file while another process holds it.
    linger_seconds
        Keep the file open this long after the last request ends (0: close at once). A short linger
        saves the open (about 20 ms) between the calls of one page, at the price of holding the lock
        that much longer.

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
        self.opens = 0  # how many times the file was opened (tests and benchmarks read it)

    @property
    def is_open(self) -> bool:
        """Whether this process holds the file now."""
        return self._connection is not None

    def _acquire(self) -> duckdb.DuckDBPyConnection:
        with self._guard:
            if self._connection is None:
                # Under the guard: concurrent first requests wait for one open instead of racing.
                self._connection = connect_with_retry(self.path, lock_timeout=self.lock_timeout)
                self.opens += 1
            self._users += 1
            self._generation += 1
            return self._connection

    def _release(self) -> None:
        with self._guard:
            self._users -= 1
            if self._users or self._connection is None:
                return
            if self.linger_seconds <= 0:
                self._close_locked()
                return
            generation = self._generation
        timer = threading.Timer(self.linger_seconds, self._close_if_idle, args=(generation,))
        timer.daemon = True
        timer.start()

    def _close_if_idle(self, generation: int) -> None:
        with self._guard:
            if not self._users and self._generation == generation and self._connection is not None:
                self._close_locked()

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
        """Keep the file open for a group of requests (e.g. one page), then close it."""
        self._acquire()
        try:
            yield
        finally:
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
