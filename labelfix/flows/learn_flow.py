"""The learning half of a flow: embed -> train -> suggest, on a store that holds labelled images.

:func:`train` is the one training entry point (``labelfix train`` and ``labelfix.train``): it picks
the training regime, a wing of :mod:`labelfix.learn`, from the config. It lives here, above
``learn/``, because no part of ``learn/`` may import more than one wing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

from rich.console import Console

from labelfix.store.database import Store

if TYPE_CHECKING:
    from labelfix.learn.config import TrainConfig, TrainResult


def train(store: Store, *, config: TrainConfig, console: Any = None) -> TrainResult:
    """Train ``config.method`` in its regime (``config.resolved_mode()``) and record the run in ``store``.

    Parameters
    ----------
    store : Store
        Head mode needs an embedding set (``compute_embeddings`` or a features table); adapt mode
        caches feature maps of the images (``labelfix.learn.adapt``); finetune mode decodes the images.
    config : TrainConfig
        Method, mode (``None``: finetune with a GPU, else head) and their settings.
    console : rich.console.Console, optional
        Prints one line per epoch and a summary.

    Returns
    -------
    TrainResult
        Run id, best epoch, metrics and the probabilities of every split.

    Examples
    --------
    >>> result = train(store, config=TrainConfig(method="gr", mode="head"))  # doctest: +SKIP
    >>> result.metrics["val_map"]  # doctest: +SKIP
    0.71
    """
    if config.resolved_mode() == "finetune":
        from labelfix.learn.finetune.trainer import train_finetune

        return train_finetune(store, config=config, console=console)
    if config.resolved_mode() == "adapt":
        from labelfix.learn.adapt import train_adapt

        return train_adapt(store, config=config, console=console)
    from labelfix.learn.head.trainer import train_head

    return train_head(store, config=config, console=console)


class LearnSettings(Protocol):
    method: str
    seed: int
    mode: Literal["head", "adapt"]


def run_learning_steps(store: Store, *, config: LearnSettings, console: Console) -> dict:
    """Cache what the mode trains on, train ``config.method`` in ``config.mode``, write suggestions.

    ``adapt`` caches the backbone's feature maps (whole image, once per image) and trains the top blocks
    on them; ``head`` embeds every image and trains a linear head. Finetune stays opt-in
    (`labelfix train --mode finetune`): it needs a GPU to be practical.
    Returns the ids worth printing (embedding or feature-map set, run id).
    """
    from labelfix.suggest.run import SuggestConfig, suggest
    from labelfix.learn.config import TrainConfig

    if config.mode == "adapt":
        from labelfix.learn.adapt import cache_feature_maps

        cached = cache_feature_maps(store, progress=True)
        console.print(f"cache feature maps: {cached.name} ({cached.computed} computed, {cached.reused} reused, "
                      f"{len(cached.failed_ids)} failed, {cached.seconds:.1f}s, {cached.bytes_per_image:,} B per image)")
        cache_name = cached.name
        trained = train(store, config=TrainConfig(method=config.method, seed=config.seed, mode="adapt"))
    else:
        from labelfix.learn.embed import EmbedConfig, compute_embeddings

        embedded = compute_embeddings(store, config=EmbedConfig())
        console.print(f"embed: {embedded.name} ({embedded.computed} computed, {embedded.reused} reused, "
                      f"{len(embedded.failed_ids)} failed)")
        cache_name = embedded.name
        trained = train(store, config=TrainConfig(method=config.method, seed=config.seed, mode="head",
                                                  embedding_set=embedded.name))
    val_map = trained.metrics.get("val_map")
    console.print(f"train: run {trained.run_id} ({config.method}, best epoch {trained.best_epoch + 1}, "
                  f"val mAP on observed labels {val_map if val_map is None else round(val_map, 3)})")
    # suggest's defaults, as a user runs it: a flow that hid labels itself (the demo) knows the hiding rate, but
    # a user never does, so passing it (--expected-missing-rate) would make the demo's figures unreachable.
    report = suggest(store, config=SuggestConfig(run_ids=[trained.run_id], seed=config.seed))
    report.print(console)
    return {"cache": cache_name, "run_id": trained.run_id}
