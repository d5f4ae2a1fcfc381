"""Earlier versions of an annotation file: the same file ingested again after an edit (reads only).

An ingest adds labels and never removes one, so a label deleted from an edited file would stay in the store
without a word (fresh-user finding 10 of issue 13). An *earlier version* of a source is a source in force
(not replaced) of the same kind over the same images folder, with the same path, or with the same file name
and at least one image in common (an edited copy, ``v2/persons.json``; per-split files share no image and
two annotation passes have other names). :mod:`labelfix.store.catalog` replaces them on ``--replace-source``
(migration ``0008_source_versions``); this module says what differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labelfix.states import POSITIVE
from labelfix.store.database import Store


@dataclass(frozen=True)
class VersionDiff:
    """What the earlier versions of a file have that the new version has not.

    Attributes
    ----------
    earlier : tuple of (source id, path)
        The earlier versions, oldest first.
    labels_not_in_file : int
        Original positive labels in the store that only the earlier versions give (no other source in force):
        kept by a plain ingest, removed by ``--replace-source``.
    example : str or None
        One of them, as ``'person' on 1.png``.
    images_not_in_file : int
        Images only the earlier versions list; they stay in the store either way (with any decisions on them).
    """

    earlier: tuple[tuple[int, str], ...]
    labels_not_in_file: int = 0
    example: str | None = None
    images_not_in_file: int = 0

    def names(self) -> str:
        """The earlier versions for a message: ``source 1 (/data/persons.json)``."""
        return ", ".join(f"source {source_id} ({path})" for source_id, path in self.earlier)


def find_earlier_versions(store: Store, *, source_id: int) -> list[tuple[int, str]]:
    """(source id, path) of the sources in force that are earlier versions of ``source_id``'s file."""
    kind, path, root = store.fetchall("SELECT kind, path, images_root FROM sources WHERE source_id = ?",
                                      [source_id])[0]
    candidates = [(int(other), str(other_path)) for other, other_path in store.fetchall(
        "SELECT source_id, path FROM sources WHERE source_id <> ? AND replaced_by IS NULL AND kind = ? "
        "AND images_root IS NOT DISTINCT FROM ? ORDER BY source_id", [source_id, kind, root])
        if other_path == path or Path(other_path).name == Path(path).name]
    return [(other, other_path) for other, other_path in candidates if other_path == path or store.scalar(
        "SELECT EXISTS (SELECT 1 FROM source_images a JOIN source_images b USING (image_id) "
        "WHERE a.source_id = ? AND b.source_id = ?)", [other, source_id])]


def _ids(sources: list[int]) -> str:
    return ", ".join(str(int(source_id)) for source_id in sources)


def only_in_sql(sources: list[int], *, table: str, columns: str) -> str:
    """SQL: the distinct ``columns`` of ``table`` (``source_labels`` or ``source_images``) that ``sources`` give
    and no other source in force gives."""
    return (f"SELECT DISTINCT {columns} FROM {table} WHERE source_id IN ({_ids(sources)}) EXCEPT "
            f"SELECT {columns} FROM {table} t JOIN sources s USING (source_id) "
            f"WHERE s.replaced_by IS NULL AND s.source_id NOT IN ({_ids(sources)})")


def compare_versions(store: Store, *, earlier: list[tuple[int, str]]) -> VersionDiff:
    """What the ``earlier`` versions alone give: original labels (still positive with origin ``original``)
    and images that no other source in force has. Call it while the new version is in force."""
    old = [source_id for source_id, _ in earlier]
    only_labels = only_in_sql(old, table="source_labels", columns="image_id, category_id")
    count, example = store.fetchall(
        f"SELECT count(*), min(format('''{{}}'' on {{}}', c.name, coalesce(i.file_name, i.image_id::VARCHAR))) "
        f"FROM ({only_labels}) g JOIN labels l USING (image_id, category_id) "
        f"JOIN categories c USING (category_id) JOIN images i USING (image_id) "
        f"WHERE l.state = {POSITIVE} AND l.origin = 'original'")[0]
    images = store.scalar(f"SELECT count(*) FROM ({only_in_sql(old, table='source_images', columns='image_id')})")
    return VersionDiff(tuple(earlier), int(count), example, int(images))
