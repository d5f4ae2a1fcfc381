"""The demo flow: demo-data -> ingest -> cache maps (or embed) -> train -> suggest -> export, on the built-in dataset."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict
from rich.console import Console

from labelfix.flows.learn_flow import run_learning_steps
from labelfix.ingest import ingest_coco
from labelfix.export import export_coco
from labelfix.store import open_store


class DemoConfig(BaseModel):
    """Settings of the demo flow; ``quick`` makes a small dataset for smoke tests.

    ``mode``: ``adapt`` (default; top blocks trained on cached feature maps: the best regime a 2-core
    CPU finishes in minutes) or ``head`` (a linear head on embeddings: seconds, lower quality).
    """

    model_config = ConfigDict(extra="forbid")

    out_dir: Path = Path("labelfix_demo")
    db: Optional[Path] = None
    seed: int = 0
    quick: bool = False
    missing_rate: float = 0.4
    method: str = "gr"
    mode: Literal["head", "adapt"] = "adapt"

    @property
    def sizes(self) -> dict[str, int]:
        if self.quick:
            return {"n_train": 120, "n_val": 40, "n_test": 40}
        return {"n_train": 3000, "n_val": 500, "n_test": 1000}


def _ensure_demo_data(config: DemoConfig, console: Console) -> Path:
    """Generate the dataset unless the same settings already produced it (the demo is re-runnable)."""
    from labelfix.io.demo_data import make_demo_dataset

    data_dir = config.out_dir / "data"
    stamp = data_dir / "labelfix-demo-settings.json"
    settings = {"seed": config.seed, "missing_rate": config.missing_rate, **config.sizes}
    if stamp.exists() and json.loads(stamp.read_text()) == settings and (data_dir / "instances_observed.json").exists():
        console.print(f"[dim]demo data already in {data_dir}[/]")
        return data_dir
    started = time.perf_counter()
    sizes = config.sizes
    make_demo_dataset(out_dir=data_dir, seed=config.seed, missing_rate=config.missing_rate,
                      n_train=sizes["n_train"], n_val=sizes["n_val"], n_test=sizes["n_test"])
    stamp.write_text(json.dumps(settings))
    console.print(f"demo data written to {data_dir} ({time.perf_counter() - started:.1f}s)")
    return data_dir


def run_demo(config: DemoConfig, *, console: Optional[Console] = None) -> None:
    """Run every step: demo data, ingest, cache maps or embed, train, suggest, export (each prints one summary)."""
    console = console or Console()
    data_dir = _ensure_demo_data(config, console)
    with open_store(config.db) as store:
        summary = ingest_coco(store, annotations=data_dir / "instances_observed.json", images=data_dir / "images",
                              check_images="header")
        console.print(f"ingest: {summary.describe()} -> {store.path}")
        console.print(f"[dim]the demo hid {config.missing_rate:.0%} of the labels; suggest is not told that rate "
                      f"(a user cannot know it) and runs with its defaults[/]")
        run_learning_steps(store, config=config, console=console)
        export = export_coco(store, out_dir=config.out_dir / "export", inline=True)
        for path in export.paths:
            console.print(f"export: wrote {path}")
        console.print(f"export: {export.n_images} images, {export.n_annotations} labels {export.by_source}")
