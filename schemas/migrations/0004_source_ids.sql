-- labelfix store, version 4: an image is its file, a category is its name; each source keeps its own ids.
-- Several COCO files may name the same images (two annotation passes) or reuse the same ids for other
-- images (per-split files numbered from 1). The store gives each image and category one id (the first
-- source's id when it is free) and keeps, per source, the source's own ids and records, so each source's
-- inline export is that source as it was. images.file_key is the identity: the resolved images root
-- joined with the normalised relative file_name (the file_name alone when there was no --images).

ALTER TABLE images ADD COLUMN file_key VARCHAR;
UPDATE images SET file_key = CASE WHEN file_name IS NULL THEN NULL
                                  WHEN images_root IS NULL THEN file_name
                                  ELSE rtrim(images_root, '/') || '/' || file_name END;
ALTER TABLE annotations ADD COLUMN position INTEGER;  -- order in the source file (NULL: by annotation_id)

-- owner: labelfix/store/catalog.py
CREATE TABLE source_images (
    source_id        INTEGER NOT NULL,
    source_image_id  VARCHAR NOT NULL,   -- the source's id as JSON text: 17, or "a.jpg" for a table keyed by names
    image_id         BIGINT NOT NULL,    -- the store's image
    position         INTEGER NOT NULL,   -- order in the source file
    record           JSON NOT NULL,      -- the source's image record as it was
    PRIMARY KEY (source_id, source_image_id)
);

-- owner: labelfix/store/catalog.py
CREATE TABLE source_categories (
    source_id           INTEGER NOT NULL,
    source_category_id  BIGINT NOT NULL,
    category_id         BIGINT NOT NULL,  -- the store's category (same name)
    position            INTEGER NOT NULL,
    record              JSON NOT NULL,
    PRIMARY KEY (source_id, source_category_id)
);

-- Stores made before version 4: each image belongs to the source that added it, under its own id; every
-- COCO source's export listed every category, so each COCO source lists them all.
INSERT INTO source_images SELECT source_id, image_id::VARCHAR, image_id, (row_number() OVER (PARTITION BY source_id
    ORDER BY image_id) - 1)::INTEGER, record FROM images;
INSERT INTO source_categories SELECT s.source_id, c.category_id, c.category_id,
    (row_number() OVER (PARTITION BY s.source_id ORDER BY c.category_id) - 1)::INTEGER, c.record
    FROM sources s, categories c WHERE s.kind = 'coco';
