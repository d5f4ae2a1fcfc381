"""Read the three-state label matrix and change label cells."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def positive_cells(store: Store) -> list[tuple[int, int, str]]:
    """(image_id, category_id, origin) of every positive cell, by image then class (what an export writes)."""
    return store.fetchall(f"SELECT image_id, category_id, origin FROM labels WHERE state = {POSITIVE} "
                          f"ORDER BY image_id, category_id")


def positives_without_annotation(store: Store, *, source_id: int) -> list[tuple[int, int, str]]:
    """(image_id, category_id, origin) of positive cells of ``source_id``'s images that the source did not
    annotate (labels added since ingest), by image then class."""
    return store.fetchall(
        f"SELECT l.image_id, l.category_id, l.origin FROM labels l JOIN images i USING (image_id) "
        f"WHERE i.source_id = ? AND l.state = {POSITIVE} AND NOT EXISTS (SELECT 1 FROM annotations a "
        f"WHERE a.source_id = ? AND a.image_id = l.image_id AND a.category_id = l.category_id) "
        f"ORDER BY l.image_id, l.category_id", [source_id, source_id])
