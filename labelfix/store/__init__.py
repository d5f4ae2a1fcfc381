"""The DuckDB label store: schema migrations, catalog, labels, runs, suggestions, reviews.

Layering: the store never imports ``io/`` (file formats), and ``io/`` never imports the store. What a
reader hands the store, :class:`~labelfix.ingest_contract.IngestBatch`, and what the store tells a
reader it already holds, :class:`~labelfix.ingest_contract.KnownVocabulary`, are the store's input
contract; they live in :mod:`labelfix.ingest_contract`, plain data below both packages, so each
dataclass exists once and neither side depends on the other. The two doors join them:
:mod:`labelfix.ingest` (file -> store) and :mod:`labelfix.export` (store -> file).

Every table has one owning module here that holds the SQL writing it; the owner is named in a
comment above each ``CREATE TABLE`` in ``schemas/migrations``.
"""

from labelfix.store.database import DB_ENV_VAR, DEFAULT_DB_NAME, Store, open_store, resolve_db_path

__all__ = ["DB_ENV_VAR", "DEFAULT_DB_NAME", "Store", "open_store", "resolve_db_path"]
