"""Head regime: a linear / MLP head trained on cached embeddings, recorded as a run in the store.

* :mod:`~labelfix.learn.head.trainer` -- ``train_head``, the one loop every method runs through.
* :mod:`~labelfix.learn.head.data` -- an embedding set aligned with the label matrix (``HeadData``).
* :mod:`~labelfix.learn.head.schemes` -- ``TrainingScheme``: how a method turns a batch into a loss.
* :mod:`~labelfix.learn.head.cls` / :mod:`~labelfix.learn.head.comic` -- the CLS co-training and
  COMIC schemes.
"""
