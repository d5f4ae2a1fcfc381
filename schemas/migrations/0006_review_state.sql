-- labelfix store, version 6: a review queue that stays fast on large stores (issue 14).
-- (Versions 4 and 5 are taken by other branches of the same round; migrations apply by version, gaps allowed.)

-- The decision in force on each suggestion: its latest review event that no undo cancelled (skip and unsure
-- included). Derived from the append-only review_events and kept in step with them in the same transaction
-- by the owner, so the queue and the progress counts read this small table instead of re-deriving it from
-- the whole log (a self anti-join over every event) on every page. Superseded suggestions (migration 0003)
-- have no row: they left the queue.
-- owner: labelfix/store/reviews.py
CREATE TABLE review_state (
    suggestion_id BIGINT PRIMARY KEY,
    run_id        INTEGER NOT NULL,    -- copied from suggestions (never change), so counts need no join
    kind          VARCHAR NOT NULL,
    image_id      BIGINT NOT NULL,
    category_id   BIGINT NOT NULL,
    decision      VARCHAR NOT NULL,
    reviewer      VARCHAR NOT NULL,
    event_id      BIGINT NOT NULL,
    decided_at    TIMESTAMP NOT NULL
);

INSERT INTO review_state
    SELECT e.suggestion_id, any_value(s.run_id), any_value(s.kind), arg_max(e.image_id, e.event_id),
           arg_max(e.category_id, e.event_id), arg_max(e.decision, e.event_id), arg_max(e.reviewer, e.event_id),
           max(e.event_id), arg_max(e.created_at, e.event_id)
    FROM review_events e JOIN suggestions s ON s.suggestion_id = e.suggestion_id AND s.superseded_at IS NULL
    WHERE e.decision <> 'undo' AND NOT EXISTS (
        SELECT 1 FROM review_events u WHERE u.decision = 'undo' AND u.undoes_event_id = e.event_id)
    GROUP BY e.suggestion_id;

-- The boxes and labels of the images on a review page are looked up by image; without these every page
-- scanned all annotations (a COCO file need not list them by image) and the labels that reviews appended.
CREATE INDEX annotations_image_idx ON annotations (image_id);
CREATE INDEX labels_image_idx ON labels (image_id);
