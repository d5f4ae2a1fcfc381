-- labelfix store, version 1. One DuckDB file per project.
-- Label cells that are not stored are `unknown`; `labels` holds the current explicit state of a cell.
-- Each table has one owner: the module named in the `-- owner:` line above it holds every statement that
-- writes the table (and its main queries); other code calls that module. (schema_migrations: store/database.py.)
-- Comments may be edited freely: store/database.py applies a migration by its version number, once, with
-- no checksum of the file's text.

-- owner: labelfix/store/catalog.py
CREATE TABLE sources (
    source_id    INTEGER PRIMARY KEY,
    kind         VARCHAR NOT NULL CHECK (kind IN ('coco', 'table', 'features')),
    path         VARCHAR NOT NULL,
    sha256       VARCHAR NOT NULL,
    images_root  VARCHAR,
    header       JSON,            -- COCO top-level keys other than images/annotations/categories
    ingested_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- owner: labelfix/store/catalog.py
CREATE TABLE images (
    image_id     BIGINT PRIMARY KEY,   -- the COCO id, kept
    file_name    VARCHAR,
    width        INTEGER,
    height       INTEGER,
    split        VARCHAR NOT NULL DEFAULT 'train',
    source_id    INTEGER NOT NULL,
    images_root  VARCHAR,
    record       JSON NOT NULL         -- the original image record, every key kept
);

-- owner: labelfix/store/catalog.py
CREATE TABLE categories (
    category_id   BIGINT PRIMARY KEY,  -- the COCO id, kept
    name          VARCHAR NOT NULL UNIQUE,
    supercategory VARCHAR,
    record        JSON NOT NULL
);

-- The source's annotations as they were, for bbox drawing and the inline export.
-- owner: labelfix/store/catalog.py
CREATE TABLE annotations (
    source_id     INTEGER NOT NULL,
    annotation_id BIGINT NOT NULL,
    image_id      BIGINT NOT NULL,
    category_id   BIGINT NOT NULL,
    record        JSON NOT NULL,
    PRIMARY KEY (source_id, annotation_id)
);

-- Image-level positives as the source had them, never changed after ingest.
-- owner: labelfix/store/catalog.py
CREATE TABLE original_labels (
    image_id     BIGINT NOT NULL,
    category_id  BIGINT NOT NULL,
    source_id    INTEGER NOT NULL,
    PRIMARY KEY (image_id, category_id)
);

-- owner: labelfix/store/labels.py
CREATE TABLE labels (
    image_id     BIGINT NOT NULL,
    category_id  BIGINT NOT NULL,
    state        TINYINT NOT NULL CHECK (state IN (-1, 1)),
    origin       VARCHAR NOT NULL CHECK (origin IN ('original', 'accepted', 'auto', 'manual')),
    updated_at   TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (image_id, category_id)
);

CREATE SEQUENCE run_seq START 1;
-- owner: labelfix/store/runs.py
CREATE TABLE runs (
    run_id          INTEGER PRIMARY KEY DEFAULT nextval('run_seq'),
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    method          VARCHAR NOT NULL,
    mode            VARCHAR NOT NULL,
    status          VARCHAR NOT NULL DEFAULT 'running',
    config          JSON NOT NULL,
    metrics         JSON,
    checkpoint_path VARCHAR,
    code_version    VARCHAR
);

-- owner: labelfix/store/runs.py
CREATE TABLE run_epochs (
    run_id   INTEGER NOT NULL,
    epoch    INTEGER NOT NULL,
    metrics  JSON NOT NULL,
    PRIMARY KEY (run_id, epoch)
);

-- Predicted probability of every (image, class) of every split; fold says which cross-fitted model scored it.
-- owner: labelfix/store/runs.py
CREATE TABLE predictions (
    run_id       INTEGER NOT NULL,
    image_id     BIGINT NOT NULL,
    category_id  BIGINT NOT NULL,
    prob         FLOAT NOT NULL,
    fold         SMALLINT
);

-- Which unknown cells a correction-based method treated as positive/negative, at which epoch.
-- owner: labelfix/store/runs.py
CREATE TABLE corrections (
    run_id       INTEGER NOT NULL,
    image_id     BIGINT NOT NULL,
    category_id  BIGINT NOT NULL,
    epoch        INTEGER NOT NULL,
    treated_as   TINYINT NOT NULL CHECK (treated_as IN (-1, 1)),
    prob         FLOAT
);

CREATE SEQUENCE suggestion_seq START 1;
-- owner: labelfix/store/suggestions.py
CREATE TABLE suggestions (
    suggestion_id BIGINT PRIMARY KEY DEFAULT nextval('suggestion_seq'),
    run_id        INTEGER NOT NULL,
    image_id      BIGINT NOT NULL,
    category_id   BIGINT NOT NULL,
    kind          VARCHAR NOT NULL CHECK (kind IN ('missing', 'spurious')),
    score         FLOAT NOT NULL,
    rank_in_class INTEGER NOT NULL,
    threshold     FLOAT,
    reason        VARCHAR,
    created_at    TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Append-only: an undo is a new event pointing at the one it reverses.
CREATE SEQUENCE review_event_seq START 1;
-- owner: labelfix/store/reviews.py
CREATE TABLE review_events (
    event_id      BIGINT PRIMARY KEY DEFAULT nextval('review_event_seq'),
    suggestion_id BIGINT,
    image_id      BIGINT NOT NULL,
    category_id   BIGINT NOT NULL,
    reviewer      VARCHAR NOT NULL,
    decision      VARCHAR NOT NULL CHECK (decision IN ('accept', 'reject', 'skip', 'unsure', 'undo', 'auto_accept')),
    note          VARCHAR,
    undoes_event_id BIGINT,
    created_at    TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- owner: labelfix/store/reviews.py
CREATE TABLE leases (
    suggestion_id BIGINT PRIMARY KEY,
    reviewer      VARCHAR NOT NULL,
    expires_at    TIMESTAMP NOT NULL
);

CREATE SEQUENCE export_seq START 1;
-- owner: labelfix/store/exports.py
CREATE TABLE exports (
    export_id    INTEGER PRIMARY KEY DEFAULT nextval('export_seq'),
    created_at   TIMESTAMP NOT NULL DEFAULT current_timestamp,
    kind         VARCHAR NOT NULL,
    path         VARCHAR NOT NULL,
    sha256       VARCHAR NOT NULL,
    n_images     BIGINT NOT NULL,
    n_annotations BIGINT NOT NULL
);

-- Embedding files (Parquet beside the store), one per (backbone, weights) or per ingested features table.
-- owner: labelfix/store/embeddings.py
CREATE TABLE embedding_sets (
    name         VARCHAR PRIMARY KEY,   -- e.g. 'mobilenet_v2-3f2a…' or 'features-9c1e…'
    backbone     VARCHAR NOT NULL,
    weights_hash VARCHAR NOT NULL,
    dim          INTEGER NOT NULL,
    path         VARCHAR NOT NULL,
    created_at   TIMESTAMP NOT NULL DEFAULT current_timestamp
);
