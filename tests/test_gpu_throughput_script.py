"""The GPU throughput benchmark must run on a bare GPU machine (torch + torchvision, nothing else)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Store-side packages a GPU image does not have: importing any of them must fail the run.
_WITHOUT_STORE_PACKAGES = """
import runpy, sys
for name in ("duckdb", "pydantic", "pandas", "pyarrow", "fiftyone", "streamlit", "typer", "sklearn"):
    sys.modules[name] = None  # makes `import name` raise ImportError
sys.argv = ["gpu_throughput", *sys.argv[1:]]
runpy.run_module("labelfix.bench.speed.gpu_throughput", run_name="__main__", alter_sys=True)
"""


def test_benchmark_runs_without_store_packages(tmp_path: Path) -> None:
    out = tmp_path / "throughput.json"
    args = ["--quick", "--device", "cpu", "--models", "mobilenet_v2", "--sizes", "32", "--out", str(out)]
    completed = subprocess.run([sys.executable, "-c", _WITHOUT_STORE_PACKAGES, *args], cwd=ROOT,
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(out.read_text())
    rows = result["results"]
    assert rows and {r["model"] for r in rows} == {"mobilenet_v2"}
    assert rows[0]["bare_images_per_s"] > 0 and rows[0]["labelfix_images_per_s"] > 0
    assert result["device"] == "cpu" and result["settings"]["method"] == "an"
