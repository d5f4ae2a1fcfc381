"""Finetune regime: a backbone plus a classifier trained end to end on decoded images.

* :mod:`~labelfix.learn.finetune.trainer` -- ``train_finetune`` and the store-free ``finetune_loop``.
* :mod:`~labelfix.learn.finetune.step` -- the model, its EMA and one optimisation step (torch only:
  ``labelfix/bench/speed/gpu_throughput.py`` times it on a machine without the store packages).
* :mod:`~labelfix.learn.finetune.runs` -- the run in the store, checkpoints, the loop's outcome.
* :mod:`~labelfix.learn.finetune.cls` / :mod:`~labelfix.learn.finetune.comic` -- CLS's network pair and
  COMIC's three branches as one module each.
* :mod:`~labelfix.learn.finetune.distributed` -- the same loop on several processes (DDP).

This ``__init__`` imports nothing, so importing ``step`` stays torch-only.
"""
