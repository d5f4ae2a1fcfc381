"""Counts in words: ``1 image``, ``3 images`` (messages read better than ``image(s)`` where the count is known)."""

from __future__ import annotations

__all__ = ["counted"]


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, singular for exactly one, else ``plural`` (default: ``noun + "s"``).

    Parameters
    ----------
    n : int
        The count.
    noun : str
        The singular, with any words before the noun (``"labelled val image"``).
    plural : str, optional
        The plural where adding ``s`` is wrong (``"classes"``).

    Examples
    --------
    >>> counted(1, "val image"), counted(3, "val image"), counted(0, "class", "classes")
    ('1 val image', '3 val images', '0 classes')
    """
    return f"{n} {noun}" if n == 1 else f"{n} {plural if plural is not None else noun + 's'}"
