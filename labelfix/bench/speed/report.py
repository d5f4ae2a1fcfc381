"""What every speed benchmark does with its result: print it as JSON and, with ``--out``, write it.

Standard library only (``gpu_throughput`` keeps its own copy: it must run where only torch is installed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages, rounded: other processes slow a CPU benchmark."""
    return [round(value, 2) for value in os.getloadavg()]


def emit_report(report: Any, out: Path | None, *, echo: bool = True) -> None:
    """Print ``report`` as indented JSON (unless ``echo`` is False) and write it to ``out`` when given."""
    text = json.dumps(report, indent=2)
    if echo:
        print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


__all__ = ["emit_report", "load_average"]
