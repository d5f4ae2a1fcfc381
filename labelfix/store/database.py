"""The DuckDB store: one file per project, versioned schema, one transaction per command."""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

from labelfix.errors import StoreError

DEFAULT_DB_NAME = "labelfix.duckdb"
DB_ENV_VAR = "LABELFIX_DB"
# A DuckDB file starts with its main header: an 8-byte checksum, then the magic bytes "DUCK"
# (duckdb/src/include/duckdb/storage/storage_info.hpp: MainHeader::MAGIC_BYTES).
DUCKDB_MAGIC = b"DUCK"
DUCKDB_MAGIC_OFFSET = 8
# A new store under one of these names is almost surely an input file named by mistake.
DATA_FILE_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".txt", ".parquet", ".pq", ".png", ".jpg",
                      ".jpeg")
# DuckDB lets one process at a time open a file read-write. A command that finds the store held by
# another one (a review server between two requests, another command) retries this long.
LOCK_TIMEOUT_ENV_VAR = "LABELFIX_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 10.0


class StoreBusy(StoreError):
    """Another process held the store for longer than the lock timeout."""


def lock_timeout_default() -> float:
    """Seconds to wait for a store another process holds: ``$LABELFIX_LOCK_TIMEOUT``, else 10."""
    text = os.environ.get(LOCK_TIMEOUT_ENV_VAR, "").strip()
    if not text:
        return DEFAULT_LOCK_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise StoreError(f"${LOCK_TIMEOUT_ENV_VAR} is {os.environ[LOCK_TIMEOUT_ENV_VAR]!r}: it must be a number of "
                         f"seconds, 0 or more (how long a command waits for a store another process holds)",
                         fix=f"set it to e.g. 30 (0: do not wait), or unset it for the default "
                             f"{DEFAULT_LOCK_TIMEOUT:g} s (unset {LOCK_TIMEOUT_ENV_VAR})")
    return seconds


def waiting_marker(path: Path) -> Path:
    """The file a process waiting for the store keeps fresh, so a review server yields it between requests."""
    return path.parent / f"{path.name}.waiting"


def is_lock_error(error: BaseException) -> bool:
    """Whether a DuckDB error says another process holds the file's lock."""
    text = str(error).lower()
    return isinstance(error, duckdb.Error) and "lock" in text and ("conflicting" in text or "could not set" in text)


def connect_with_retry(path: Path, *, read_only: bool = False, lock_timeout: float | None = None,
                       config: dict[str, Any] | None = None, announce: bool = True) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` that waits (with jittered exponential backoff) while another process holds the file.

    Parameters
    ----------
    path
        The store file.
    read_only
        Open without write access.
    lock_timeout
        Seconds to keep retrying on the lock error (default :func:`lock_timeout_default`); 0 tries once.
    announce
        While waiting, keep :func:`waiting_marker` fresh, so a review server lets the file go after its
        current request instead of keeping it open for the next one.

    Raises
    ------
    StoreBusy
        Still locked after ``lock_timeout`` seconds; the message names the process DuckDB reports.
    duckdb.Error
        Any other failure to open.
    """
    timeout = lock_timeout_default() if lock_timeout is None else max(0.0, float(lock_timeout))
    deadline = time.monotonic() + timeout
    delay = 0.01
    marker = waiting_marker(Path(path))
    try:
        while True:
            try:
                connection = duckdb.connect(str(path), read_only=read_only, config=config or {})
                # DuckDB draws a progress bar on the terminal for slow queries, which breaks `--json`
                # output and tables; a session setting (not allowed in config), inherited by cursors.
                connection.execute("SET enable_progress_bar = false")
                return connection
            except duckdb.Error as error:
                if not is_lock_error(error):
                    raise
                remaining = deadline - time.monotonic()
                if announce:  # refreshed on every try: a marker left by a killed process goes stale
                    with contextlib.suppress(OSError):
                        marker.write_text(str(os.getpid()), encoding="utf-8")
                if remaining <= 0:
                    holder = str(error).split("Conflicting lock is held in", 1)[-1].split(". See", 1)[0].strip()
                    raise StoreBusy(
                        f"the store is in use by another process ({holder}) and stayed locked for {timeout:g} s",
                        file=path, fix=f"try again in a moment, or stop that process; wait longer with "
                                       f"${LOCK_TIMEOUT_ENV_VAR}=SECONDS") from error
                # Jitter keeps two waiting processes from retrying in lockstep.
                time.sleep(min(remaining, delay * (0.5 + random.random())))
                delay = min(delay * 2, 0.25)
    finally:
        if announce:
            with contextlib.suppress(OSError):
                if marker.read_text(encoding="utf-8").strip() == str(os.getpid()):
                    marker.unlink()


def resolve_db_path(db: str | Path | None = None) -> Path:
    """The store path: ``db`` if given, else ``$LABELFIX_DB``, else ``./labelfix.duckdb``."""
    if db is not None:
        if not str(db).strip():
            raise StoreError(f"the store path given is empty ({str(db)!r})",
                             fix="name the store file, e.g. --db labels.duckdb")
        return Path(db)
    value = os.environ.get(DB_ENV_VAR, "")
    if value and not value.strip():
        raise StoreError(f"${DB_ENV_VAR} is set to white space only ({value!r}), which names no store file",
                         fix=f"set it to the store file (export {DB_ENV_VAR}=labels.duckdb) or unset it "
                             f"(unset {DB_ENV_VAR}) to use ./{DEFAULT_DB_NAME}")
    return Path(value or DEFAULT_DB_NAME)


def latest_schema_version() -> int:
    """The highest migration version this labelfix ships."""
    return _migration_scripts()[-1][0]


def _migration_scripts() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped in ``schemas/migrations``, in order."""
    folder = resources.files("labelfix.schemas") / "migrations"
    scripts = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            scripts.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(scripts)


class Store:
    """A labelfix project store.

    Use :func:`open_store` to get one. Every write of one command goes through
    ``with store.transaction():`` so a failure leaves the file as it was.

    Parameters
    ----------
    connection
        A DuckDB connection (or cursor) on the store file.
    path
        The store file, used to place caches beside it.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection, *, path: Path) -> None:
        self.connection = connection
        self.path = path
        self._depth = 0
        self._lock = threading.RLock()
        # Set by open_store for a store it created: what to remove if the first `with` block fails.
        self._created: list[Path] = []
        self._discard = False

    # -- plumbing -------------------------------------------------------------------------------
    def execute(self, sql: str, parameters: Any = None) -> duckdb.DuckDBPyConnection:
        """Run one statement on this store's connection."""
        if parameters is None:
            return self.connection.execute(sql)
        return self.connection.execute(sql, parameters)

    def fetchall(self, sql: str, parameters: Any = None) -> list[tuple]:
        return self.execute(sql, parameters).fetchall()

    def scalar(self, sql: str, parameters: Any = None) -> Any:
        # fetchall, not fetchone: DuckDB 2 blocks the connection until a result is read to the end.
        rows = self.execute(sql, parameters).fetchall()
        return rows[0][0] if rows else None

    def fetchone(self, sql: str, parameters: Any = None) -> tuple | None:
        rows = self.execute(sql, parameters).fetchall()
        return rows[0] if rows else None

    def arrow(self, sql: str, parameters: Any = None) -> Any:
        """The result as a pyarrow Table (read in full, so the connection is free again)."""
        return self.connection.sql(sql, params=parameters).to_arrow_table()

    def df(self, sql: str, parameters: Any = None):
        """The result as a pandas DataFrame."""
        return self.execute(sql, parameters).df()

    def insert_arrow(self, sql: str, parameters: Any = None, **tables: Any) -> None:
        """Run ``sql`` (with ``parameters``) with Arrow tables registered under the given names (bulk, no row loops)."""
        for name, table in tables.items():
            self.connection.register(name, table)
        try:
            self.execute(sql, parameters)
        finally:
            for name in tables:
                self.connection.unregister(name)

    @contextlib.contextmanager
    def transaction(self) -> Iterator["Store"]:
        """All-or-nothing writes; nested uses join the outermost transaction."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self.connection.execute("BEGIN TRANSACTION")
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                self.connection.execute("ROLLBACK")
                raise
            self._depth = 0
            self.connection.execute("COMMIT")

    @property
    def in_transaction(self) -> bool:
        """Whether a ``with store.transaction():`` block is open on this store."""
        return self._depth > 0

    def cursor(self) -> "Store":
        """A store on a new cursor of the same connection, for another thread (e.g. a Streamlit session)."""
        return Store(self.connection.cursor(), path=self.path)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close()
        if (exc_type is not None or self._discard) and self._created:
            _remove_created(self._created)  # a command that failed on a new path leaves no file behind

    def discard_if_new(self) -> bool:
        """Remove the store when the ``with`` block ends if :func:`open_store` created it (a first command that
        added nothing leaves no empty store behind); True when it will be removed."""
        self._discard = bool(self._created)
        return self._discard

    @property
    def cache_dir(self) -> Path:
        """Folder beside the store file for embeddings, checkpoints and other large artefacts."""
        return self.path.parent / f"{self.path.name}.cache"

    # -- schema ---------------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        exists = self.scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'")
        if not exists:
            return 0
        return int(self.scalar("SELECT coalesce(max(version), 0) FROM schema_migrations"))

    def migrate(self) -> list[str]:
        """Apply the migrations this version of labelfix ships and the file lacks; return their names.

        Every missing version is applied in order, not only those above the highest applied one, so a
        migration added between two others still reaches stores created in the meantime.
        """
        scripts = _migration_scripts()
        latest = scripts[-1][0] if scripts else 0
        current = self.schema_version
        if current > latest:
            raise StoreError(
                f"store schema version {current} is newer than this labelfix understands ({latest})",
                file=self.path, fix="upgrade labelfix, or use another --db")
        applied = []
        with self.transaction():
            self.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                         "name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)")
            done = {row[0] for row in self.fetchall("SELECT version FROM schema_migrations")}
            for version, name, sql in scripts:
                if version in done:
                    continue
                self.connection.execute(sql)
                self.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
                applied.append(name)
        return applied


def _check_is_store_file(path: Path, *, from_env: bool = False) -> None:
    """Refuse, before DuckDB opens it, an existing path that is not a DuckDB file.

    DuckDB opens a file it cannot read as a database (a .json, .csv or .parquet) as an empty in-memory
    database without a word, so a command would "succeed" and store nothing.
    """
    if path.is_dir():
        if from_env:  # the fix is in the environment, not on the command line
            raise StoreError(f"is a folder, not a store file (${DB_ENV_VAR} names it)", file=path,
                             fix=f"export {DB_ENV_VAR}={path / DEFAULT_DB_NAME} (a file; it is created if new)")
        raise StoreError("is a folder, not a store file", file=path, fix=f"pass --db {path / DEFAULT_DB_NAME}")
    try:
        with open(path, "rb") as handle:
            header = handle.read(DUCKDB_MAGIC_OFFSET + len(DUCKDB_MAGIC))
    except OSError as error:
        raise StoreError(f"cannot read the store: {(error.strerror or str(error)).lower()}", file=path,
                         fix="give yourself read and write access to it, or pass another --db") from error
    if header[DUCKDB_MAGIC_OFFSET:] != DUCKDB_MAGIC:
        raise StoreError("is not a labelfix store (not a DuckDB database); it was left untouched", file=path,
                         fix="pass --db a labelfix store or a new file name such as labelfix.duckdb "
                             "(input files are arguments, not --db)")


def _remove_created(paths: list[Path]) -> None:
    """Remove what :func:`open_store` created (store file, its WAL and cache, new folders), newest first."""
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            if path.name.endswith(".cache"):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.rmdir()  # only if empty: something else may have been put there meanwhile
        else:
            path.unlink(missing_ok=True)


def open_store(db: str | Path | None = None, *, create: bool = True, read_only: bool = False,
               lock_timeout: float | None = None) -> Store:
    """Open (and by default create and migrate) the store.

    An existing file that is not a labelfix store is refused untouched. A store this call creates is
    removed again (with its WAL, cache folder and any folders made for it) if opening fails or the first
    ``with`` block on it raises, so a failed command on a new path leaves no file behind.

    Parameters
    ----------
    db
        The store path; see :func:`resolve_db_path` for the default.
    create
        Create the file if it does not exist. With ``False`` a missing store is an error.
    read_only
        Open without write access (several readers may share a file).
    lock_timeout
        Seconds to wait while another process holds the store, e.g. a review server between two
        requests (default ``$LABELFIX_LOCK_TIMEOUT`` or 10).

    Raises
    ------
    StoreBusy
        Another process held the store for longer than ``lock_timeout``.
    StoreError
        The store is missing (``create=False``), is not a labelfix store or cannot be created.

    Examples
    --------
    >>> store = open_store("/tmp/example.duckdb")  # doctest: +SKIP
    >>> store.schema_version  # doctest: +SKIP
    1
    """
    path = resolve_db_path(db)
    existed = path.exists()
    if existed:
        _check_is_store_file(path, from_env=db is None and bool(os.environ.get(DB_ENV_VAR)))
    elif not create or read_only:
        raise StoreError("no labelfix store here", file=path,
                         fix="run `labelfix init` or an ingest command first, or pass --db")
    elif path.suffix.lower() in DATA_FILE_SUFFIXES:
        raise StoreError(f"a new store would be a DuckDB file named {path.suffix}", file=path,
                         fix=f"pass --db a name such as {path.with_suffix('.duckdb').name}")
    created: list[Path] = []
    if not existed:
        missing = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            _remove_created(missing)
            raise StoreError(f"cannot create the store's folder: {(error.strerror or str(error)).lower()}",
                             file=path, fix="pass --db a path in a folder you can write to") from error
        cache = path.parent / f"{path.name}.cache"
        wal = path.parent / f"{path.name}.wal"
        created = [wal, path, *([] if cache.exists() else [cache]), *missing]
    try:
        connection = connect_with_retry(path, read_only=read_only, lock_timeout=lock_timeout)
    except StoreBusy:
        _remove_created(created)
        raise
    except duckdb.Error as error:
        _remove_created(created)
        raise StoreError(f"cannot open the store ({error})", file=path,
                         fix="pass --db a labelfix store, or a new file in a folder you can write to") from error
    store = Store(connection, path=path)
    try:
        if existed and not store.schema_version:
            raise StoreError("is a DuckDB database but not a labelfix store (no schema_migrations table); "
                             "it was left untouched", file=path,
                             fix="pass --db a labelfix store or a new file name such as labelfix.duckdb")
        if not read_only:
            store.migrate()
    except BaseException:
        store.close()
        _remove_created(created)
        raise
    store._created = created
    return store
