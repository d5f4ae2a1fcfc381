"""What the review app says: questions, keys and buttons worded as what a decision does to the label.

A *missing-label* suggestion asks to **add** a class the image probably shows; a *spurious-label*
suggestion asks to **remove** a label the image probably does not deserve. The two must never read
alike (issue 14: "eight?" over a plainly visible 8 turned it into a verified negative), so each kind
has its own question, colour, button words and accept key; the service words the outcome of every
decision as its effect on the image (``QueueItem.outcome``: "'seven' added to image 12").

No Streamlit and no store here: plain functions the app and the tests share.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from labelfix.review.models import question_text

__all__ = ["Action", "KEY_HELP", "Wording", "human_time", "score_text", "wording"]


@dataclass(frozen=True)
class Action:
    """One decision button: the service decision, its key and its words for one suggestion kind."""

    decision: str
    key: str
    label: str
    help: str


@dataclass(frozen=True)
class Wording:
    """How one suggestion kind is asked about: question, colour, short sign and its decision buttons."""

    kind: str
    verb: str
    question: str
    color: str
    sign: str
    actions: tuple[Action, ...]

    def action_for_key(self, key: str) -> Action | None:
        """The action bound to ``key`` for this kind (``None``: the key does nothing here)."""
        for action in self.actions:
            if action.key == key.lower():
                return action
        return None


def _quoted(name: str) -> str:
    return f"'{name}'"


def wording(kind: str, name: str) -> Wording:
    """The question and decision buttons for a suggestion of ``kind`` on class ``name``.

    Missing-label items are keyed **A** (add) / **X** (not there); spurious-label items **R** (remove)
    / **X** (keep it), so a reflex A on a "remove" question does nothing instead of removing a label.

    Examples
    --------
    >>> wording("missing", "seven").question
    "add 'seven'?"
    >>> [a.key for a in wording("spurious", "eight").actions]
    ['r', 'x', 's']
    >>> wording("spurious", "eight").action_for_key("a") is None
    True
    """
    quoted = _quoted(name)
    question = question_text(kind=kind, category_name=name)
    skip = Action("skip", "s", "Skip", "not sure: decide later (goes to the back of the queue)")
    if kind == "spurious":
        return Wording(kind="spurious", verb="remove", question=question, color="red", sign="−",
                       actions=(Action("accept", "r", f"Remove {quoted}", f"the image does not show {quoted}: "
                                       f"remove the label"),
                                Action("reject", "x", f"Keep {quoted}", f"the image shows {quoted}: keep the label"),
                                skip))
    return Wording(kind="missing", verb="add", question=question, color="green", sign="+",
                   actions=(Action("accept", "a", f"Add {quoted}", f"the image shows {quoted}: add the label"),
                            Action("reject", "x", "Not there", f"the image does not show {quoted}: "
                                   f"record it as absent"),
                            skip))


# The keys of the page, for the guidelines panel and the key handler (all single keys, no modifiers).
KEY_HELP: tuple[tuple[str, str], ...] = (
    ("A", "add the suggested label (missing-label items, green)"),
    ("R", "remove the questioned label (spurious-label items, red)"),
    ("X", "no: the class is not there (missing) / keep the label (spurious)"),
    ("S", "skip: decide later"),
    ("U", "undo your last decision"),
    ("J or →", "next item on the page"),
    ("K or ←", "previous item (before the first: your last decisions)"),
    ("+ / − / 0", "zoom the large image in / out / reset (or the mouse wheel; drag to pan)"),
)


def score_text(score: float) -> str:
    """A score with enough digits to tell neighbours apart (0.9987 is not 1.00).

    Examples
    --------
    >>> score_text(0.99871), score_text(0.5), score_text(1.0)
    ('0.9987', '0.5000', '1.0000')
    """
    return f"{score:.4f}"


def human_time(moment: dt.datetime | None, *, now: dt.datetime | None = None) -> str:
    """A stored naive-UTC time as people read it: "12 s ago", "14:03", "3 May 14:03" (local time).

    Examples
    --------
    >>> now = dt.datetime(2026, 5, 3, 12, 0, 0)
    >>> human_time(dt.datetime(2026, 5, 3, 11, 59, 48, 123456), now=now)
    '12 s ago'
    >>> human_time(dt.datetime(2026, 5, 3, 11, 15), now=now)
    '45 min ago'
    >>> human_time(dt.datetime(2026, 5, 3, 11, 58), now=dt.datetime(2026, 5, 3, 11, 55))
    'in 3 min'
    >>> human_time(None)
    '—'
    """
    if moment is None:
        return "—"
    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    seconds = (now - moment).total_seconds()
    if abs(seconds) < 60:
        return f"{abs(seconds):.0f} s ago" if seconds >= 0 else f"in {abs(seconds):.0f} s"
    if abs(seconds) < 3600:
        return f"{abs(seconds) / 60:.0f} min ago" if seconds >= 0 else f"in {abs(seconds) / 60:.0f} min"
    local = moment.replace(tzinfo=dt.timezone.utc).astimezone()
    if abs(seconds) < 86400:
        return local.strftime("%H:%M")
    return f"{local.day} {local.strftime('%b %H:%M')}"
