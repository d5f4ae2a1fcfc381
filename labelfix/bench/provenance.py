"""Where benchmark numbers came from: library versions, the source digest, the machine."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np


def environment() -> dict[str, Any]:
    import sklearn
    import torch

    from labelfix.store.runs import code_version

    versions = {"labelfix": code_version(), "python": platform.python_version(), "numpy": np.__version__,
                "torch": torch.__version__, "scikit-learn": sklearn.__version__}
    try:
        import cleanlab

        versions["cleanlab"] = cleanlab.__version__
    except ImportError:
        versions["cleanlab"] = None
    try:
        cores: int | None = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {"versions": versions, "source_sha256": source_digest(), "cpu_cores": cores, "torch_threads": torch.get_num_threads(),
            "platform": platform.platform()}


def source_digest() -> str:
    """sha256 of labelfix's Python sources: which code produced the numbers, even in a dirty checkout."""
    import hashlib

    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


__all__ = ["environment", "source_digest"]
