"""How a method turns a batch into a loss: learn's shared ground for the head and adapt regimes.

* :mod:`~labelfix.learn.schemes.base` -- ``TrainingScheme``, the plain one-head scheme, ``predict``.
* :mod:`~labelfix.learn.schemes.cls` / :mod:`~labelfix.learn.schemes.comic` -- the CLS co-training
  and COMIC schemes.
"""
