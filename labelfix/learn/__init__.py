"""Training: partial-label methods in training regimes ("wings") over a shared ground.

Shared ground (what every regime builds on; it imports no wing):

* :mod:`~labelfix.learn.config` -- ``TrainConfig``, the method defaults and their resolution
  (``resolve_config``, ``resolve_finetune_config``), ``TRAIN_METHODS`` and the result type ``TrainResult``.
* :mod:`~labelfix.learn.losses` -- the partial-label losses, one module per paper family.
* :mod:`~labelfix.learn.validation` -- ``observed_map``, the val score every regime selects epochs by.
* :mod:`~labelfix.learn.backbones` -- pretrained image backbones and their transforms.
* :mod:`~labelfix.learn.image_data` -- the store's images as a torch ``Dataset``.
* :mod:`~labelfix.learn.embed` -- ``compute_embeddings``: pooled backbone features into the store.
* :mod:`~labelfix.learn.heads` -- linear / MLP classifier heads over features.

Wings (one sub-package per regime; a wing imports the ground, never another wing):

* :mod:`labelfix.learn.head` -- heads on cached embeddings (seconds on a CPU): ``head.trainer.train_head``.
* :mod:`labelfix.learn.finetune` -- backbone + classifier end to end on decoded images, one process or
  DDP: ``finetune.trainer.train_finetune``, ``finetune.distributed.launch_distributed``.
* ``labelfix.learn.adapt`` (not built yet) -- a third regime training on cached trunk feature maps
  belongs here, beside the other two, over the same ground.

Inside a wing a method family that needs more than a loss has its own module (``cls``, ``comic``),
mirroring ``losses/cls.py`` and ``losses/comic.py``.
"""
