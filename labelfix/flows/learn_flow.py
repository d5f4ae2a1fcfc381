"""The learning half of a flow: embed -> train -> suggest, on a store that holds labelled images.

:func:`train` is the one training entry point (``labelfix train`` and ``labelfix.train``): it picks
the training regime, a wing of :mod:`labelfix.learn`, from the config. It lives here, above
``learn/``, because no part of ``learn/`` may import more than one wing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from rich.console import Console

from labelfix.store.database import Store

if TYPE_CHECKING:
    from labelfix.learn.config import TrainConfig, TrainResult


def train(store: Store, *, config: TrainConfig, console: Any = None) -> TrainResult:
    """Train ``config.method`` in its regime (``config.resolved_mode()``) and record the run in ``store``.

    Parameters
    ----------
    store : Store
        Head mode needs an embedding set (``compute_embeddings`` or a features table); finetune
        mode decodes the images.
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
    from labelfix.learn.head.trainer import train_head

    return train_head(store, config=config, console=console)


class LearnSettings(Protocol):
    method: str
    seed: int
    missing_rate: float


def run_learning_steps(store: Store, *, config: LearnSettings, console: Console) -> dict:
    """Embed every image (cached), train ``config.method`` in the default mode, write suggestions.

    Returns the ids and counts worth printing (embedding set, run id, suggestions).
    """
    from labelfix.suggest.run import SuggestConfig, suggest
    from labelfix.learn.config import TrainConfig
    from labelfix.learn.embed import EmbedConfig, compute_embeddings

    embedded = compute_embeddings(store, config=EmbedConfig())
    console.print(f"embed: {embedded.name} ({embedded.computed} computed, {embedded.reused} reused, "
                  f"{len(embedded.failed_ids)} failed)")
    # Head mode on cached embeddings: seconds on a CPU; finetune stays opt-in (`labelfix train --mode finetune`).
    trained = train(store, config=TrainConfig(method=config.method, seed=config.seed, mode="head",
                                              embedding_set=embedded.name))
    val_map = trained.metrics.get("val_map")
    console.print(f"train: run {trained.run_id} ({config.method}, best epoch {trained.best_epoch}, "
                  f"val mAP on observed labels {val_map if val_map is None else round(val_map, 3)})")
    report = suggest(store, config=SuggestConfig(run_ids=[trained.run_id], seed=config.seed,
                                                 expected_missing_rate=config.missing_rate))
    report.print(console)
    return {"embedding_set": embedded.name, "run_id": trained.run_id}
