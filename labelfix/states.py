"""The three states of an (image, class) label cell, shared by the store and every loss.

``POSITIVE`` is an annotated or accepted label, ``UNKNOWN`` a class nobody annotated (it may be a
missed positive), ``NEGATIVE`` a class a reviewer verified absent. Losses receive a matrix of these
values (int8 in numpy, any integer dtype in torch).
"""

POSITIVE: int = 1
UNKNOWN: int = 0
NEGATIVE: int = -1

STATE_NAMES: dict[int, str] = {POSITIVE: "positive", UNKNOWN: "unknown", NEGATIVE: "negative"}
