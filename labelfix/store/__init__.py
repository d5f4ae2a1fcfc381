"""The DuckDB label store: schema migrations, labels, runs, suggestions, reviews."""

from labelfix.store.database import DB_ENV_VAR, DEFAULT_DB_NAME, Store, open_store, resolve_db_path

__all__ = ["DB_ENV_VAR", "DEFAULT_DB_NAME", "Store", "open_store", "resolve_db_path"]
