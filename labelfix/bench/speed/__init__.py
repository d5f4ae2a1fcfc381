"""Speed benchmarks: throughput and scale of labelfix's steps, each a module run with ``python -m``.

- ``python -m labelfix.bench.speed.embed_throughput``: ``labelfix embed`` against a bare torch loop
  over the same image files;
- ``python -m labelfix.bench.speed.head_training_time``: head-mode seconds per epoch vs dataset size;
- ``python -m labelfix.bench.speed.suggest_scale``: ``labelfix suggest`` time and memory at 100k-1M images;
- ``python -m labelfix.bench.speed.gpu_throughput``: the finetune step against a bare torch loop (GPU).

Their results and the exact commands are in ``benchmarks/results/README.md``. This ``__init__`` imports
nothing: ``gpu_throughput`` must run on a machine with only torch and torchvision.
"""
