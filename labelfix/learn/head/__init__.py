"""Head regime: a linear / MLP head trained on cached embeddings, recorded as a run in the store.

* :mod:`~labelfix.learn.head.trainer` -- ``train_head``, the one loop every method runs through.
* :mod:`~labelfix.learn.head.data` -- an embedding set aligned with the label matrix (``HeadData``).

The training schemes it runs (``TrainingScheme``, CLS, COMIC) live in :mod:`labelfix.learn.schemes`,
shared with adapt mode.
"""
