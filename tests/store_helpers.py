"""A store as an older labelfix left it, for migration tests."""

from __future__ import annotations

from pathlib import Path

import duckdb

from labelfix.store.database import _migration_scripts


def old_store(path: Path, *, through_version: int) -> duckdb.DuckDBPyConnection:
    """Create ``path`` with the shipped migrations up to ``through_version`` applied and recorded, as that
    labelfix version would have; return the open connection (the caller fills it and closes it)."""
    connection = duckdb.connect(str(path))
    connection.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                       "applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)")
    for version, name, sql in _migration_scripts():
        if version <= through_version:
            connection.execute(sql)
            connection.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
    return connection
