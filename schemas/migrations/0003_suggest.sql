-- labelfix store, version 3: suggestion calls and replacement of still-open suggestions.
-- Each `labelfix suggest` call is recorded; a later call for the same run replaces the earlier call's
-- undecided suggestions: those nobody touched are deleted, those with review events (skip, unsure,
-- an undone decision) are kept for their history and marked `superseded_at`. Readers of the review
-- queue should show only suggestions with `superseded_at IS NULL`.

CREATE SEQUENCE suggest_call_seq START 1;
-- owner: labelfix/store/suggestions.py
CREATE TABLE suggest_calls (
    call_id      INTEGER PRIMARY KEY DEFAULT nextval('suggest_call_seq'),
    run_id       INTEGER NOT NULL,      -- the run the suggestions are filed under (a model run or an ensemble run)
    source_runs  JSON NOT NULL,         -- model runs whose predictions were scored
    config       JSON NOT NULL,
    summary      JSON,
    created_at   TIMESTAMP NOT NULL DEFAULT current_timestamp
);

ALTER TABLE suggestions ADD COLUMN call_id INTEGER;
ALTER TABLE suggestions ADD COLUMN superseded_at TIMESTAMP;
