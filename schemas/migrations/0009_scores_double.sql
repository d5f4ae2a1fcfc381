-- labelfix store, version 9: suggestion scores and thresholds, and correction probabilities, in DOUBLE
-- (issue 12). Version 7 moved predictions.prob to DOUBLE; the ranking has been float64 since, but a
-- suggestion's stored score was cut back to float32, so two suggestions that ranked apart could show and
-- sort as one score (every probability above ~1 - 6e-8 is 1.0 in float32). Old rows keep their values.
-- owner: labelfix/store/suggestions.py
ALTER TABLE suggestions ALTER COLUMN score SET DATA TYPE DOUBLE;
ALTER TABLE suggestions ALTER COLUMN threshold SET DATA TYPE DOUBLE;
-- owner: labelfix/store/runs.py
ALTER TABLE corrections ALTER COLUMN prob SET DATA TYPE DOUBLE;
