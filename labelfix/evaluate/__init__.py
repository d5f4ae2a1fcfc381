"""Array-level evaluation shared by production and benchmark code: ranking metrics and missing-label simulation.

Numpy only: nothing here opens the store, trains a model or imports the benchmark package (``bench/``),
so the trainer, the suggestion thresholds, the demo data and the benchmark all measure and hide labels
the same way.
"""
