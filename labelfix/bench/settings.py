"""What a benchmark runs: method names, baselines, the metric constants and :class:`BenchSettings`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from labelfix.errors import LabelfixError
from labelfix.internal.json_values import jsonable

BASELINES: tuple[str, ...] = ("cleanlab", "oracle")
# Benchmark-only variants of trainer methods: name -> (trainer method, TrainConfig fields).
METHOD_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    # COMIC without its head-tail balancer (RLC + MFM only): what HTB adds (METHODS.md).
    "comic_nohtb": ("comic", {"loss_params": {"htb": False}}),
    # GR with the paper's VOC schedule end, (w_T, b_T) = (2, -2) (Table 6), instead of the COCO end (10, -8)
    # that labelfix uses by default: the gentler pseudo-label k(p) never passes 0.5. Chosen between on val.
    "gr_voc": ("gr", {"loss_params": {"w_end": 2.0, "b_end": -2.0}}),
    # SPLC at tau = 0.7, the threshold `--tune` chose on val in adapt mode (adapt224_tuned/): at the paper's 0.6
    # (and 0.5) the top blocks pseudo-label so many unknown cells after epoch 1 that val mAP collapses to 0.31.
    # 0.7 is now SPLC's default too (learn/config.py); the variant names it in tables next to the older tau 0.6 rows.
    "splc_tau07": ("splc", {"loss_params": {"tau": 0.7}}),
}
FRACTIONS: tuple[float, ...] = (0.1, 0.25, 0.5)
TARGET_PRECISION = 0.9
SHOTS = {"many": 100, "few": 20}  # COMIC: many > 100, medium 20-100, few < 20 train samples


def trainer_methods() -> tuple[str, ...]:
    """Every method ``train_head`` knows, except ``oracle`` (the oracle is a baseline here)."""
    from labelfix.learn.config import TRAIN_METHODS

    return tuple(m for m in TRAIN_METHODS if m != "oracle")


def all_methods() -> tuple[str, ...]:
    """What ``--methods all`` runs: every trainer method, the variants, cleanlab and the oracle."""
    return trainer_methods() + tuple(METHOD_VARIANTS) + BASELINES


def parse_methods(text: str, *, baselines: bool = True) -> list[str]:
    """``"an,em"`` / ``"all"`` -> method names (order kept, duplicates dropped).

    With ``baselines`` the cleanlab and oracle baselines are added when not named.
    """
    known = all_methods()
    names: list[str] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        expanded = list(known) if part == "all" else [part]
        for name in expanded:
            if name not in known:
                raise LabelfixError(f"unknown method {name!r}", fix=f"use all or some of: {', '.join(known)}")
            if name not in names:
                names.append(name)
    if not names:
        raise LabelfixError("no method given", fix="pass --methods an,em or --methods all")
    if baselines:
        names += [b for b in BASELINES if b not in names]
    return names


@dataclass
class BenchSettings:
    """Everything that decides a benchmark's numbers (written to ``results.json`` as ``config``).

    ``epochs=None`` keeps each method's default; ``folds`` lists the trainer's cross-fitting fold
    counts to report (1 = in-sample scoring, the trainer's default); ``baseline_folds`` is K of the
    out-of-fold cleanlab / oracle predictions; ``baseline_model`` is ``head`` (labelfix's linear head,
    ``an`` / ``oracle`` with ``folds=K``) or ``logreg`` (scikit-learn logistic regression per class,
    C chosen on val); see :mod:`labelfix.bench.baselines`.
    """

    methods: list[str]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    hide_rate: float = 0.4
    single_positive: bool = False
    epochs: Optional[int] = None
    folds: list[int] = field(default_factory=lambda: [1])
    baseline_folds: int = 5
    baseline_model: Literal["logreg", "head"] = "head"
    logreg_cs: tuple[float, ...] = (0.01, 0.1, 1.0)
    split_seed: int = 0
    backbone: str = "mobilenet_v2"
    # head: linear head on embeddings; adapt: top blocks on cached feature maps (needs --coco images)
    mode: Literal["head", "adapt"] = "head"
    # adapt mode: side of the square the whole image is resized to before caching (None: adapt's default)
    image_size: Optional[int] = None
    # adapt mode: which epoch scores the train cells (None: adapt's default; labelfix.learn.adapt.select)
    adapt_select: Optional[str] = None
    quick: bool = False
    tune: bool = False
    # Per-method TrainConfig fields on top of the method's defaults (filled by tuning, or given).
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"methods": list(self.methods), "seeds": list(self.seeds), "hide_rate": self.hide_rate,
                "single_positive": self.single_positive, "epochs": self.epochs, "folds": list(self.folds),
                "baseline_folds": self.baseline_folds, "baseline_model": self.baseline_model,
                "logreg_cs": list(self.logreg_cs), "split_seed": self.split_seed, "backbone": self.backbone,
                "mode": self.mode, "image_size": self.image_size, "adapt_select": self.adapt_select, "quick": self.quick, "tune": self.tune,
                "overrides": jsonable(self.overrides),
                "fractions": list(FRACTIONS), "target_precision": TARGET_PRECISION,
                "shots": {"many": f">{SHOTS['many']}", "medium": f"{SHOTS['few']}-{SHOTS['many']}",
                          "few": f"<{SHOTS['few']}", "counted_on": "true train labels"}}


__all__ = ["BASELINES", "FRACTIONS", "METHOD_VARIANTS", "SHOTS", "TARGET_PRECISION", "BenchSettings", "all_methods",
           "parse_methods", "trainer_methods"]
