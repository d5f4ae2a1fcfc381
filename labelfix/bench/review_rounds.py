"""Simulated review rounds: a reviewer who knows the hidden truth answers the top suggestions, the
decisions go into the store as review events, and the next round retrains with them.

Each round: train the method on the store's current labels (accepted cells are positives, rejected
ones verified negatives) -> measure missing-label AP on the still-unreviewed unknown train cells and
test mAP -> file the ``budget`` best-scoring unreviewed cells as suggestions -> the simulated reviewer
(``simulated``) accepts the truly positive ones and rejects the rest through
:class:`~labelfix.review.service.ReviewService`, exactly as a person in the review app would. A last
training after the final round measures what the decisions bought.

Random order is the reference a method must beat: the same budget spent on random unreviewed cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from labelfix.bench.seeds import SeedContext
    from labelfix.bench.settings import BenchSettings

REVIEWER = "simulated"
RECOVERY_TARGETS = (0.5, 0.8)


@dataclass
class RoundsOutcome:
    """One method's rounds for one seed: per-round records and the item-by-item recovery curve."""

    method: str
    seed: int
    rounds: list[dict[str, Any]] = field(default_factory=list)
    # cumulative hidden labels recovered after each reviewed item, in review order
    recovered_curve: list[int] = field(default_factory=list)
    num_hidden: int = 0

    def reviews_to_recover(self, share: float) -> Optional[int]:
        """Reviews needed to recover ``share`` of the hidden labels (None: not reached within the budget)."""
        needed = math.ceil(share * self.num_hidden)
        hits = np.flatnonzero(np.asarray(self.recovered_curve) >= needed)
        return int(hits[0]) + 1 if hits.size else None

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "seed": self.seed, "num_hidden": self.num_hidden, "rounds": self.rounds,
                "reviews_to_recover": {str(share): self.reviews_to_recover(share) for share in RECOVERY_TARGETS},
                "recovered_curve": self.recovered_curve}


def round_budget(*, budget: float, num_unknown: int) -> int:
    """Items per round: ``budget`` as a share of the unknown train cells when < 1, else a count.

    Examples
    --------
    >>> round_budget(budget=0.05, num_unknown=1000), round_budget(budget=30, num_unknown=1000)
    (50, 30)
    """
    if budget <= 0:
        raise ValueError(f"budget must be positive, got {budget}")
    return max(1, round(budget * num_unknown)) if budget < 1 else int(budget)


def top_unreviewed(*, scores: np.ndarray, open_cells: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the ``count`` highest-scoring open cells, best first (ties: lowest index).

    Examples
    --------
    >>> rows, cols = top_unreviewed(scores=np.array([[0.9, 0.1], [0.5, 0.8]]),
    ...                             open_cells=np.array([[False, True], [True, True]]), count=2)
    >>> rows.tolist(), cols.tolist()
    ([1, 1], [1, 0])
    """
    flat = np.flatnonzero(open_cells.reshape(-1))
    order = np.lexsort((flat, -scores.reshape(-1)[flat]))[:count]
    rows, columns = np.unravel_index(flat[order], open_cells.shape)
    return rows, columns


def review_cells(ctx: "SeedContext", *, run_id: int, rows: np.ndarray, columns: np.ndarray,
                 scores: np.ndarray) -> tuple[int, int]:
    """File the cells as suggestions of ``run_id`` and let the simulated reviewer decide them.

    Accept when the cell is a hidden true label, else reject (a verified negative). Returns
    (accepted, rejected).
    """
    from labelfix.review.service import ReviewService
    from labelfix.store.suggestions import add_suggestions

    store = ctx.store
    image_ids = ctx.data.image_ids[rows].astype(np.int64)
    category_ids = columns.astype(np.int64) + 1  # the benchmark store numbers classes 1..C
    cells = pa.table({
        "image_id": image_ids, "category_id": category_ids, "score": scores[rows, columns].astype(np.float32),
        "rank_in_class": np.arange(1, len(rows) + 1, dtype=np.int32)})
    # Ids come from the store's own sequence, as for `labelfix suggest`, and are read back per cell.
    suggestion_ids = add_suggestions(store, run_id=run_id, cells=cells, kind="missing",
                                     reason="simulated review round: top of the ranking")
    truly_missing = ctx.hidden[rows, columns]
    service = ReviewService(store)
    accepted = service.decide_many(suggestion_ids=suggestion_ids[truly_missing].tolist(), reviewer=REVIEWER,
                                   decision="accept")
    rejected = service.decide_many(suggestion_ids=suggestion_ids[~truly_missing].tolist(), reviewer=REVIEWER,
                                   decision="reject")
    if accepted.conflicts or rejected.conflicts:
        raise RuntimeError(f"simulated review hit conflicts: {accepted.conflicts or rejected.conflicts}")
    return int(truly_missing.sum()), int((~truly_missing).sum())


def simulate_review_rounds(ctx: "SeedContext", method: str, settings: "BenchSettings", *, rounds: int,
                           budget: float, folds: int = 1) -> RoundsOutcome:
    """Run ``rounds`` review rounds of ``method`` in the seed's store (module notes)."""
    from labelfix.bench.harness import evaluate_scores, run_trainer_method

    candidate = ctx.candidate
    train = np.zeros(len(ctx.data.image_ids), bool)
    train[ctx.train_rows] = True
    per_round = round_budget(budget=budget, num_unknown=int(candidate.sum()))
    reviewed = np.zeros_like(candidate)
    outcome = RoundsOutcome(method=method, seed=ctx.seed, num_hidden=int((ctx.hidden & candidate).sum()))
    recovered = 0
    for round_index in range(rounds + 1):
        trained = run_trainer_method(ctx, method, settings, folds=folds)
        open_cells = candidate & ~reviewed
        metrics = evaluate_scores(ctx, trained.probs, candidate=open_cells)
        record = {"round": round_index, "run_id": trained.run_id, "reviewed_before": int(reviewed.sum()),
                  "recovered_before": recovered, "test_map": metrics["test_map"],
                  "missing_label_ap_unreviewed": metrics["missing_label_ap"],
                  "recall_at_precision_0_9_unreviewed": metrics["recall_at_precision_0_9"]}
        if round_index < rounds:
            assert trained.run_id is not None  # trainer methods always store a run
            rows, columns = top_unreviewed(scores=trained.probs, open_cells=open_cells & train[:, None],
                                           count=per_round)
            accepted, rejected = review_cells(ctx, run_id=trained.run_id, rows=rows, columns=columns,
                                              scores=trained.probs)
            reviewed[rows, columns] = True
            hits = ctx.hidden[rows, columns]
            outcome.recovered_curve.extend((recovered + np.cumsum(hits)).tolist())
            recovered += accepted
            record.update(accepted=accepted, rejected=rejected, reviewed_after=int(reviewed.sum()),
                          recovered_share=recovered / max(outcome.num_hidden, 1))
        outcome.rounds.append(record)
    return outcome


def random_order_curve(ctx: "SeedContext", *, rounds: int, budget: float, seed: int = 0) -> RoundsOutcome:
    """The reference: the same budget spent on uniformly random unreviewed train cells."""
    candidate = ctx.candidate
    per_round = round_budget(budget=budget, num_unknown=int(candidate.sum()))
    cells = np.flatnonzero(candidate.reshape(-1))
    order = np.random.default_rng(seed).permutation(cells)[: per_round * rounds]
    hits = ctx.hidden.reshape(-1)[order]
    outcome = RoundsOutcome(method="random", seed=ctx.seed, num_hidden=int((ctx.hidden & candidate).sum()))
    outcome.recovered_curve = np.cumsum(hits).tolist()
    for round_index in range(rounds):
        done = min((round_index + 1) * per_round, len(order))
        recovered = int(np.sum(hits[:done]))
        outcome.rounds.append({"round": round_index, "reviewed_after": done, "recovered_share":
                               recovered / max(outcome.num_hidden, 1)})
    return outcome


def run_review_rounds(data, settings: "BenchSettings", *, rounds: int, budget: float, folds: int = 1,
                      work_dir, progress: bool = True) -> dict[str, Any]:
    """Every method of ``settings`` (trainer methods only) through ``rounds`` simulated review rounds,
    per seed in a fresh store, plus the random-order reference. Returns a JSON-ready payload."""
    from pathlib import Path

    from tqdm import tqdm

    from labelfix.bench.seeds import prepare_seed
    from labelfix.bench.settings import BASELINES

    methods = [m for m in settings.methods if m not in BASELINES]
    outcomes: list[RoundsOutcome] = []
    bar = tqdm(total=len(settings.seeds) * (len(methods) + 1), desc="review rounds", disable=not progress or None)
    for seed in settings.seeds:
        for method in methods:
            bar.set_postfix_str(f"seed {seed} {method}")
            ctx = prepare_seed(data, settings, seed=seed, work_dir=Path(work_dir) / f"rounds-{method}")
            try:
                outcomes.append(simulate_review_rounds(ctx, method, settings, rounds=rounds, budget=budget,
                                                       folds=folds))
            finally:
                ctx.close()
            bar.update()
        ctx = prepare_seed(data, settings, seed=seed, work_dir=Path(work_dir) / "rounds-random")
        try:
            outcomes.append(random_order_curve(ctx, rounds=rounds, budget=budget, seed=seed))
        finally:
            ctx.close()
        bar.update()
    bar.close()
    return {"schema_version": 1, "rounds": rounds, "budget": budget, "folds": folds,
            "seeds": list(settings.seeds), "methods": methods + ["random"],
            "results": [outcome.to_dict() for outcome in outcomes],
            "summary": summarize_rounds(outcomes, rounds=rounds)}


def summarize_rounds(outcomes: list[RoundsOutcome], *, rounds: int) -> list[dict[str, Any]]:
    """Per method: mean recovered share after each round, reviews to recover 50% / 80% (mean over seeds
    that reached it, and how many did), and per-round missing-label AP on the unreviewed cells."""
    summary = []
    for method in dict.fromkeys(o.method for o in outcomes):
        runs = [o for o in outcomes if o.method == method]
        shares = [[r.get("recovered_share") for r in o.rounds if "recovered_share" in r] for o in runs]
        entry: dict[str, Any] = {
            "method": method,
            "recovered_share": [float(np.mean([s[i] for s in shares])) for i in range(rounds)],
            "reviews_to_recover": {}}
        for share in RECOVERY_TARGETS:
            counts = [o.reviews_to_recover(share) for o in runs]
            reached = [c for c in counts if c is not None]
            entry["reviews_to_recover"][str(share)] = {
                "mean": float(np.mean(reached)) if reached else None, "seeds_reached": len(reached),
                "seeds": len(counts)}
        if method != "random":
            entry["missing_label_ap_unreviewed"] = [
                float(np.mean([o.rounds[i]["missing_label_ap_unreviewed"] for o in runs])) for i in range(rounds + 1)]
            entry["test_map"] = [float(np.mean([o.rounds[i]["test_map"] for o in runs])) for i in range(rounds + 1)]
            entry["accepted"] = [float(np.mean([o.rounds[i]["accepted"] for o in runs])) for i in range(rounds)]
            entry["rejected"] = [float(np.mean([o.rounds[i]["rejected"] for o in runs])) for i in range(rounds)]
        summary.append(entry)
    return summary


def rounds_markdown(payload: dict[str, Any], *, command: Optional[str] = None) -> str:
    """The review-rounds table: recovered share per round, reviews to recover 50% / 80%, AP and test mAP."""
    rounds = payload["rounds"]
    lines = ["# labelfix simulated review rounds", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += [f"{rounds} rounds, budget {payload['budget']} of the unknown train cells per round, seeds "
              f"{', '.join(map(str, payload['seeds']))}, folds {payload['folds']}. Mean over seeds.", ""]
    header = (["method"] + [f"recovered after round {i + 1}" for i in range(rounds)]
              + ["reviews to 50%", "reviews to 80%", "ML-AP unreviewed (round 0 → last)", "test mAP (round 0 → last)"])
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in payload["summary"]:
        def reviews(share: str) -> str:
            item = entry["reviews_to_recover"][share]
            if item["mean"] is None:
                return "not reached"
            suffix = "" if item["seeds_reached"] == item["seeds"] else f" ({item['seeds_reached']}/{item['seeds']} seeds)"
            return f"{item['mean']:.0f}{suffix}"
        ap = entry.get("missing_label_ap_unreviewed")
        test = entry.get("test_map")
        cells = ([entry["method"]] + [f"{v:.3f}" for v in entry["recovered_share"]]
                 + [reviews("0.5"), reviews("0.8"),
                    f"{ap[0]:.3f} → {ap[-1]:.3f}" if ap else "–", f"{test[0]:.3f} → {test[-1]:.3f}" if test else "–"])
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Recovered: share of the hidden train labels accepted so far. Reviews to 50% / 80%: items "
              "reviewed (in each round's score order) until that share was recovered, within the budget. "
              "ML-AP unreviewed: missing-label AP over the still-unreviewed unknown cells before each round's "
              "review; test mAP on the fully labelled test split. random: the same budget on random cells."]
    return "\n".join(lines) + "\n"


def plot_rounds(payload: dict[str, Any], path) -> None:
    """Recovered share vs reviewed items, one line per method (seed 0), random order as the reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    seed = payload["seeds"][0]
    for result in payload["results"]:
        if result["seed"] != seed:
            continue
        curve = np.asarray(result["recovered_curve"], dtype=float) / max(result["num_hidden"], 1)
        style: dict[str, Any] = {"color": "grey", "linestyle": "--"} if result["method"] == "random" else {}
        axis.plot(np.arange(1, len(curve) + 1), curve, label=result["method"], linewidth=1.4, **style)
    axis.set_xlabel("reviewed suggestions")
    axis.set_ylabel("share of hidden labels recovered")
    axis.set_title(f"Simulated review rounds (seed {seed}, {payload['rounds']} rounds)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
