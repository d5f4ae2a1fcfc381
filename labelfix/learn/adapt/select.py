"""Which epoch scores the train cells: memorisation control of adapt mode (issue 12, item 3).

A network that can fit its training labels learns "absent" for the missing labels it should find,
so the epoch that is best on val (unseen images) need not be the epoch whose *in-sample* scores of
the train cells rank the missing labels best. Three ways to choose the epoch (``adapt_select``):

* ``val_map`` (default): val mAP on the observed labels, as head mode.
* ``val_hidden``: hide a seeded share of the val split's observed positives and choose the epoch
  whose ranking of the val unknown cells finds them best (AP). Free (val is scored every epoch), and
  a user can do it; but val images are never trained on, so it measures generalisation, not
  memorisation.
* ``train_probe``: hide a seeded share of the *train* split's observed positives from training
  (they are trained as unknown, like a missed label) and choose the epoch whose in-sample scores
  rank them best among the train unknown cells. This measures memorisation directly, at the cost
  of training on fewer positives and one extra scoring pass over the train split per epoch.

Every class keeps at least one observed positive (a class with a single positive is never probed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from labelfix.evaluate.metrics import average_precision
from labelfix.states import POSITIVE, UNKNOWN

SELECTIONS: tuple[str, ...] = ("val_map", "val_hidden", "train_probe")
Selection = Literal["val_map", "val_hidden", "train_probe"]


def probe_cells(states: np.ndarray, *, share: float, seed: int) -> np.ndarray:
    """bool [N, C]: a seeded ``share`` of each class's positive cells of ``states`` (int8 [N, C]).

    Each class keeps at least one positive; ``share`` is rounded down per class, so a class with
    fewer than ``1 / share`` positives gives none.

    Examples
    --------
    >>> states = np.array([[1, 1], [1, 0], [1, 1], [0, 1]], np.int8)
    >>> int(probe_cells(states, share=0.5, seed=0).sum())
    2
    """
    if not 0.0 < share < 1.0:
        raise ValueError(f"probe share must be in (0, 1), got {share}")
    rng = np.random.default_rng(seed)
    probe = np.zeros(states.shape, dtype=bool)
    for column in range(states.shape[1]):
        rows = np.flatnonzero(states[:, column] == POSITIVE)
        take = min(int(len(rows) * share), len(rows) - 1)
        if take > 0:
            probe[rng.choice(rows, size=take, replace=False), column] = True
    return probe


@dataclass(frozen=True)
class Probe:
    """Probe positives hidden as unknown: ``rows`` (of the full arrays) and ``mask`` bool [len(rows), C].

    ``candidate`` bool [len(rows), C] are the cells ranked: unknown after hiding (probes included).
    """

    rows: np.ndarray
    mask: np.ndarray
    candidate: np.ndarray

    def score(self, probs: np.ndarray) -> float:
        """AP of the probe cells among the candidate cells; ``probs`` float [len(rows), C]."""
        return average_precision(scores=probs[self.candidate], targets=self.mask[self.candidate])


def hide_probe(states: np.ndarray, rows: np.ndarray, *, share: float, seed: int) -> tuple[np.ndarray, Probe]:
    """``states`` (int8 [N, C], copied) with a probe share of ``rows``' positives set to unknown."""
    mask = probe_cells(states[rows], share=share, seed=seed)
    hidden = states.copy()
    block = hidden[rows]
    block[mask] = UNKNOWN
    hidden[rows] = block
    return hidden, Probe(rows=np.asarray(rows), mask=mask, candidate=block == UNKNOWN)


__all__ = ["SELECTIONS", "Probe", "Selection", "hide_probe", "probe_cells"]
