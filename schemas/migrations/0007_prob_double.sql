-- labelfix store, version 7: predicted probabilities in DOUBLE (issue 12).
-- A float32 sigmoid is exactly 1.0 for every logit above ~16.6: a method whose pseudo-labels push
-- logits that high (GR in adapt mode) ties hundreds of cells at 1.0, and a tie is one threshold, so
-- the top of the ranking cannot be split (recall at precision 0.9 fell to 0.04 at a tie of precision
-- 0.89). float64 keeps logits up to ~36 apart. Old rows keep their float32 values.
-- owner: labelfix/store/runs.py
ALTER TABLE predictions ALTER COLUMN prob SET DATA TYPE DOUBLE;
