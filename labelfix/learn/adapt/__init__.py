"""Adapt mode: train a backbone's top blocks and the classifier on cached feature maps (issue 12).

``labelfix train --mode adapt`` sits between head mode (linear head on frozen pooled embeddings) and
finetune mode (the whole network on images, a GPU's job): the bottom blocks run once per image and
their output is cached on disk (:mod:`.cache`, whole image, no crop); every epoch trains
``features[cut:]`` plus the method's head(s) on augmented maps (:mod:`.augment`, :mod:`.model`,
:mod:`.train`), with every method's loss, EMA, early stopping on val, and cross-fitted scores of the
train cells.

Defaults (MobileNetV2, cut 14 = 96×14×14 maps at 224 px, 37,632 B per image) were chosen from the
cost-vs-ceiling measurement of branch h12 (issue 12).

Examples
--------
>>> from labelfix.learn.adapt import train_adapt
>>> result = train_adapt(store, config=TrainConfig(method="gr", mode="adapt"))  # doctest: +SKIP
"""

from labelfix.learn.adapt.augment import MapAugment, augment_maps
from labelfix.learn.adapt.cache import (DEFAULT_CUTS, FeatureMapSet, MapCacheResult, cache_feature_maps,
                                        map_set_for_store, map_set_name, whole_image_transform)
from labelfix.learn.adapt.train import ADAPT_DEFAULTS, resolve_adapt_config, train_adapt

__all__ = ["ADAPT_DEFAULTS", "DEFAULT_CUTS", "FeatureMapSet", "MapAugment", "MapCacheResult", "augment_maps",
           "cache_feature_maps", "map_set_for_store", "map_set_name", "resolve_adapt_config", "train_adapt", "whole_image_transform"]
