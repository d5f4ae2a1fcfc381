"""The learning half of a flow: embed -> train -> suggest, on a store that holds labelled images."""

from __future__ import annotations

from typing import Protocol

from rich.console import Console

from labelfix.store.database import Store


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
    from labelfix.learn.head.trainer import train_head

    embedded = compute_embeddings(store, config=EmbedConfig())
    console.print(f"embed: {embedded.name} ({embedded.computed} computed, {embedded.reused} reused, "
                  f"{len(embedded.failed_ids)} failed)")
    # Head mode on cached embeddings: seconds on a CPU; finetune stays opt-in (`labelfix train --mode finetune`).
    trained = train_head(store, config=TrainConfig(method=config.method, seed=config.seed, mode="head",
                                                   embedding_set=embedded.name))
    val_map = trained.metrics.get("val_map")
    console.print(f"train: run {trained.run_id} ({config.method}, best epoch {trained.best_epoch}, "
                  f"val mAP on observed labels {val_map if val_map is None else round(val_map, 3)})")
    report = suggest(store, config=SuggestConfig(run_ids=[trained.run_id], seed=config.seed,
                                                 expected_missing_rate=config.missing_rate))
    report.print(console)
    return {"embedding_set": embedded.name, "run_id": trained.run_id}
