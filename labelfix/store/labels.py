"""Read the three-state label matrix and change label cells.

Owner of the ``labels`` table: ingest (original positives), review decisions, auto-accepts and their
revert all write it through the functions here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from labelfix.states import NEGATIVE, POSITIVE, UNKNOWN
from labelfix.store.database import Store


@dataclass
class LabelMatrix:
    """Label states of every (image, class) cell: rows follow ``image_ids``, columns ``category_ids``."""

    image_ids: np.ndarray          # int64 [N]
    category_ids: np.ndarray       # int64 [C]
    category_names: list[str]
    splits: np.ndarray             # object [N]: train / val / test
    states: np.ndarray             # int8 [N, C]: +1 positive, 0 unknown, -1 verified negative

    def rows(self, split: str) -> np.ndarray:
        """Row positions of one split."""
        return np.flatnonzero(self.splits == split)

    def subset(self, rows: np.ndarray) -> "LabelMatrix":
        return LabelMatrix(self.image_ids[rows], self.category_ids, self.category_names, self.splits[rows],
                           self.states[rows])


def load_label_matrix(store: Store, *, splits: tuple[str, ...] | None = None) -> LabelMatrix:
    """The current label states (original labels plus every review decision and auto-correction).

    Examples
    --------
    >>> matrix = load_label_matrix(store)  # doctest: +SKIP
    >>> matrix.states.shape  # doctest: +SKIP
    (4500, 10)
    """
    where = ""
    parameters: list = []
    if splits:
        where = f"WHERE split IN ({', '.join('?' for _ in splits)})"
        parameters = list(splits)
    images = store.execute(f"SELECT image_id, split FROM images {where} ORDER BY image_id", parameters).fetchnumpy()
    categories = store.execute("SELECT category_id, name FROM categories ORDER BY category_id").fetchnumpy()
    image_ids = np.asarray(images["image_id"], dtype=np.int64)
    category_ids = np.asarray(categories["category_id"], dtype=np.int64)
    states = np.full((len(image_ids), len(category_ids)), UNKNOWN, dtype=np.int8)
    cells = store.execute("SELECT image_id, category_id, state FROM labels").fetchnumpy()
    if len(cells["image_id"]) and len(image_ids):
        rows = np.searchsorted(image_ids, cells["image_id"])
        rows_clipped = np.minimum(rows, len(image_ids) - 1)
        keep = image_ids[rows_clipped] == cells["image_id"]
        columns = np.searchsorted(category_ids, cells["category_id"][keep])
        states[rows_clipped[keep], columns] = np.asarray(cells["state"][keep], dtype=np.int8)
    return LabelMatrix(image_ids, category_ids, list(map(str, categories["name"])),
                       np.asarray(images["split"], dtype=object), states)


def set_label(store: Store, *, image_id: int, category_id: int, state: int, origin: str) -> None:
    """Set one cell's state (``UNKNOWN`` removes the explicit row)."""
    if state == UNKNOWN:
        store.execute("DELETE FROM labels WHERE image_id = ? AND category_id = ?", [image_id, category_id])
        return
    if state not in (POSITIVE, NEGATIVE):
        raise ValueError(f"state must be {POSITIVE}, {UNKNOWN} or {NEGATIVE}, got {state}")
    store.execute(
        "INSERT INTO labels (image_id, category_id, state, origin) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (image_id, category_id) DO UPDATE SET state = excluded.state, origin = excluded.origin, "
        "updated_at = now()", [image_id, category_id, state, origin])


def add_original_positives(store: Store, *, cells: pa.Table | dict[str, np.ndarray]) -> int:
    """Add ingested positives (columns ``image_id``, ``category_id``: an Arrow table or a dict of numpy arrays)
    with origin ``original``; return how many.

    A cell that already has a row keeps it: a reviewer's decision outranks a re-ingested original. The
    cells must be distinct (an anti-join, cheaper than ``ON CONFLICT`` for a large first ingest).
    """
    return _add_new_cells(store, cells=cells, state=POSITIVE, origin="original")


def add_verified_negatives(store: Store, *, cells: dict[str, np.ndarray]) -> int:
    """Add ingested verified negatives (distinct cells, columns ``image_id``, ``category_id``) as state
    negative, origin ``manual`` (a person decided them before the export they come from); return how many.

    A cell that already has a row keeps it, as for :func:`add_original_positives`.
    """
    return _add_new_cells(store, cells=cells, state=NEGATIVE, origin="manual")


def remove_original_positives(store: Store, *, cells: pa.Table | dict[str, np.ndarray]) -> int:
    """Cells (columns ``image_id``, ``category_id``) that no source gives any longer: those still positive with
    origin ``original`` become unknown; a cell a person or an auto-accept decided keeps its row. Return how many."""
    before = store.scalar("SELECT count(*) FROM labels")
    store.insert_arrow(f"DELETE FROM labels WHERE origin = 'original' AND state = {POSITIVE} AND EXISTS "
                       f"(SELECT 1 FROM _labelfix_cells c WHERE c.image_id = labels.image_id "
                       f"AND c.category_id = labels.category_id)", _labelfix_cells=cells)
    return int(before - store.scalar("SELECT count(*) FROM labels"))


def _add_new_cells(store: Store, *, cells: pa.Table | dict[str, np.ndarray], state: int, origin: str) -> int:
    """Insert the distinct ``cells`` that have no row yet with ``state`` and ``origin``; return how many."""
    before = store.scalar("SELECT count(*) FROM labels")
    store.insert_arrow(f"INSERT INTO labels (image_id, category_id, state, origin) "
                       f"SELECT image_id, category_id, {int(state)}, ? FROM _labelfix_cells c "
                       f"WHERE NOT EXISTS (SELECT 1 FROM labels l WHERE l.image_id = c.image_id "
                       f"AND l.category_id = c.category_id)", [origin], _labelfix_cells=cells)
    return int(store.scalar("SELECT count(*) FROM labels") - before)


def negative_cells(store: Store) -> Iterator[tuple[int, int, str]]:
    """(image_id, category_id, origin) of every verified negative cell, by image then class."""
    reader = store.connection.sql(f"SELECT image_id, category_id, origin FROM labels WHERE state = {NEGATIVE} "
                                  f"ORDER BY image_id, category_id").to_arrow_reader(50_000)
    for batch in reader:
        yield from zip(*(batch.column(i).to_pylist() for i in range(3)))


def set_labels(store: Store, *, cells: pa.Table, state: int, origin: str, updated_at: dt.datetime) -> None:
    """Set many cells (columns ``image_id``, ``category_id``) to ``state`` with ``origin``, in one statement."""
    if state not in (POSITIVE, NEGATIVE):
        raise ValueError(f"state must be {POSITIVE} or {NEGATIVE}, got {state}")
    store.insert_arrow(
        "INSERT INTO labels (image_id, category_id, state, origin, updated_at) "
        "SELECT image_id, category_id, ?, ?, ? FROM _labelfix_cells ON CONFLICT (image_id, category_id) "
        "DO UPDATE SET state = excluded.state, origin = excluded.origin, updated_at = excluded.updated_at",
        [state, origin, updated_at], _labelfix_cells=cells)


def restore_original(store: Store, *, cells: pa.Table, origin: str, updated_at: dt.datetime) -> None:
    """Cells (columns ``image_id``, ``category_id``) whose label still has ``origin`` return to the source's state.

    Original positives become positive with origin ``original`` again; the other cells become unknown
    (their row is removed). A cell whose origin changed since (a person decided it) is left alone.
    """
    store.insert_arrow(
        f"""UPDATE labels SET state = {POSITIVE}, origin = 'original', updated_at = ?
        FROM _labelfix_cells r WHERE labels.image_id = r.image_id AND labels.category_id = r.category_id
        AND labels.origin = ? AND EXISTS (SELECT 1 FROM original_labels o
            WHERE o.image_id = r.image_id AND o.category_id = r.category_id)""",
        [updated_at, origin], _labelfix_cells=cells)
    store.insert_arrow(
        """DELETE FROM labels WHERE origin = ? AND EXISTS (SELECT 1 FROM _labelfix_cells r
        WHERE r.image_id = labels.image_id AND r.category_id = labels.category_id)""",
        [origin], _labelfix_cells=cells)


def original_state(store: Store, *, image_id: int, category_id: int) -> int:
    """The cell's state as the source had it: positive if annotated, else unknown."""
    found = store.scalar("SELECT count(*) FROM original_labels WHERE image_id = ? AND category_id = ?",
                         [image_id, category_id])
    return POSITIVE if found else UNKNOWN


def label_counts(store: Store) -> dict[str, int]:
    """Number of stored cells by state and origin, e.g. ``{'positive/original': 812, ...}``."""
    rows = store.fetchall("SELECT state, origin, count(*) FROM labels GROUP BY ALL ORDER BY ALL")
    names = {POSITIVE: "positive", NEGATIVE: "negative"}
    return {f"{names[state]}/{origin}": count for state, origin, count in rows}


def positive_cells(store: Store) -> Iterator[tuple[int, int, str]]:
    """(image_id, category_id, origin) of every positive cell, by image then class (what an export writes).

    Read in batches (a cursor: consume it before the next query on this store)."""
    reader = store.connection.sql(f"SELECT image_id, category_id, origin FROM labels WHERE state = {POSITIVE} "
                                      f"ORDER BY image_id, category_id").to_arrow_reader(50_000)
    for batch in reader:
        yield from zip(*(batch.column(i).to_pylist() for i in range(3)))


def label_counts_by_origin(store: Store) -> dict[str, int]:
    """Positive cells by origin, e.g. ``{'original': 812, 'accepted': 3}``."""
    return dict(store.fetchall(f"SELECT origin, count(*) FROM labels WHERE state = {POSITIVE} GROUP BY origin "
                               f"ORDER BY origin"))


def labels_added_for_source(store: Store, *, source_id: int) -> list[tuple[str, int, int | None, str]]:
    """Labels added since ingest that belong in one COCO source's inline export, in the source's image order.

    A cell counts when it is positive with an origin other than ``original`` (accepted, auto, manual: what
    review added; other sources' labels are not "added"), its image is in the source, and the source did
    not annotate it. Among the COCO sources with the image, it goes to those that annotate its class
    somewhere (the pass for that class), else to those that list the class, else to all of them (which
    then gain the class).

    Returns
    -------
    list of (the source's image id as JSON text, store category id, the source's category id or None, origin)
    """
    return [(str(a), int(b), None if c is None else int(c), str(d)) for a, b, c, d in store.fetchall(
        f"""WITH added AS (SELECT image_id, category_id, origin FROM labels WHERE state = {POSITIVE}
                           AND origin <> 'original'),
        annotated AS (SELECT DISTINCT source_id, category_id FROM annotations),
        candidates AS (
            SELECT a.image_id, a.category_id, a.origin, si.source_id, si.source_image_id, si.position,
                   sc.source_category_id,
                   CASE WHEN an.source_id IS NOT NULL THEN 2 WHEN sc.category_id IS NOT NULL THEN 1 ELSE 0 END AS tier
            FROM added a JOIN source_images si ON si.image_id = a.image_id
            JOIN sources s ON s.source_id = si.source_id AND s.kind = 'coco'
            LEFT JOIN source_categories sc ON sc.source_id = si.source_id AND sc.category_id = a.category_id
            LEFT JOIN annotated an ON an.source_id = si.source_id AND an.category_id = a.category_id),
        ranked AS (SELECT *, max(tier) OVER (PARTITION BY image_id, category_id) AS best FROM candidates)
        SELECT source_image_id, category_id, source_category_id, origin FROM ranked r
        WHERE source_id = $source AND tier = best
          AND NOT EXISTS (SELECT 1 FROM annotations an WHERE an.source_id = $source AND an.image_id = r.image_id
                          AND an.category_id = r.category_id)
        ORDER BY position, category_id""", {"source": source_id})]


def count_positives(store: Store, *, split: str) -> int:
    """Positive cells of one split's images (``train`` refuses to start without any)."""
    return int(store.scalar(f"SELECT count(*) FROM labels l JOIN images i USING (image_id) WHERE l.state = {POSITIVE} "
                            f"AND i.split = ?", [split]))
