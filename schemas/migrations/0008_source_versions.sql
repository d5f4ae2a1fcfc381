-- labelfix store, version 8: an annotation file ingested again after an edit (issue 13, fresh-user finding 10).
-- Ingesting only ever added labels, so a label removed from the file stayed in the store without a word.
-- An ingest now finds the earlier versions of its file (the same path, or the same file name over the same
-- images) and says what the store keeps that the file no longer has; with --replace-source the new version
-- replaces them: `replaced_by` marks the earlier source (its row, path and hash stay as history; its ids,
-- records and annotations go), and the original labels only it had are removed. Reviewers' decisions stay.

ALTER TABLE sources ADD COLUMN replaced_by INTEGER;  -- the source that replaced this version; NULL: in force

-- Every source's own positive cells, in store ids (distinct per source): what each file says, so a version
-- can be replaced without losing a label another source in force also has (original_labels names one
-- source per cell, the first).
-- owner: labelfix/store/catalog.py
CREATE TABLE source_labels (
    source_id    INTEGER NOT NULL,
    image_id     BIGINT NOT NULL,
    category_id  BIGINT NOT NULL
);

-- Stores made before version 8: a COCO source's cells are its annotations' cells; a table's are the original
-- labels it was the first to give (the only record of them).
INSERT INTO source_labels SELECT DISTINCT source_id, image_id, category_id FROM annotations;
INSERT INTO source_labels SELECT o.source_id, o.image_id, o.category_id FROM original_labels o
    JOIN sources s USING (source_id) WHERE s.kind <> 'coco';
