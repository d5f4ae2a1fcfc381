"""Memory and time of `labelfix ingest coco` and `labelfix export coco --inline` on a COCO-2017-train-sized file.

A synthetic COCO file (default 118,287 images, 860,001 annotations with bbox and polygon, 80 categories:
about 190 MB, the size of instances_train2017.json without its long polygons) is written by
:func:`generate` (streamed, so the generator itself stays small). Each step then runs as its own child
process, timed by wall clock, its peak resident memory read from ``os.wait4`` (the child's own
``ru_maxrss``) and CPU seconds (user + system) read from ``os.wait4`` too; every step runs ``--repeat``
times (default 3), the rounds interleaved, and the median time is reported:

- ``json_load``: ``json.load`` of the file (the reference the goal is stated against);
- ``pycocotools``: ``pycocotools.coco.COCO(file)`` (load plus index), when the running Python has
  pycocotools or ``--pycocotools-python`` names one that has (it is not a labelfix dependency);
- ``ijson``: ijson's C backend reading the images and annotations with their record texts serialised
  again (two passes: ijson streams one prefix at a time), i.e. the work labelfix's reader does, done with
  ijson (when ijson is installed);
- ``labelfix_reader``: labelfix's reader alone (:func:`labelfix.io.coco.read_coco`, the standard
  library's scanner on a sliding window, a run of records per call, their source text spooled as it
  is: ``labelfix/io/json_stream.py``);
- ``ingest``: ``labelfix ingest coco FILE --check-images none`` into a new store;
- ``reingest``: the same command again (the file is recognised by its hash before it is read);
- ``export_inline``: ``labelfix export coco --out DIR --inline``.

Goal (issue 13): ingest and export at <= 3x the file size in peak RSS, and no slower than pycocotools'
``COCO()`` load. The machine's load average is recorded before and after (other processes share it).

Usage::

    python -m labelfix.bench.speed.coco_memory --out benchmarks/results/coco_memory.json
    python -m labelfix.bench.speed.coco_memory --images 200 --annotations 1000 --categories 5   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labelfix.bench.speed.report import emit_report

MODULE = "labelfix.bench.speed.coco_memory"

IJSON_READER = """
import json, sys, ijson
encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
with open(sys.argv[1], "rb") as handle:
    images = [(r["id"], r["file_name"], encode(r)) for r in ijson.items(handle, "images.item", use_float=True)]
with open(sys.argv[1], "rb") as handle:
    annotations = [(r["id"], r["image_id"], r["category_id"], encode(r))
                   for r in ijson.items(handle, "annotations.item", use_float=True)]
print(len(images), len(annotations))
"""
LABELFIX_READER = """
import sys
from labelfix.io.coco import read_coco
batch = read_coco(sys.argv[1], images_root=None, progress=False, spool_dir=sys.argv[2])
print(len(batch.images), len(batch.annotations))
batch.discard()
"""


def generate(path: Path, *, n_images: int = 118_287, n_annotations: int = 860_001, n_categories: int = 80,
             seed: int = 0) -> dict:
    """Write a synthetic COCO instances file (COCO-2017 key layout and order), one record at a time.

    Returns its size and counts.
    """
    rng = random.Random(seed)
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"info":{"description":"synthetic COCO-2017-train-sized file","version":"1.0","year":2017},'
                  '"licenses":[{"url":"http://creativecommons.org/licenses/by-nc-sa/2.0/","id":1,'
                  '"name":"Attribution-NonCommercial-ShareAlike License"}],"images":[')
        for index in range(n_images):
            image_id = index + 1
            record = {"license": 1, "file_name": f"{image_id:012d}.jpg",
                      "coco_url": f"http://images.cocodataset.org/train2017/{image_id:012d}.jpg",
                      "height": 480, "width": 640, "date_captured": "2013-11-14 11:18:45",
                      "flickr_url": f"http://farm4.staticflickr.com/3153/{image_id:012d}_z.jpg", "id": image_id}
            out.write(("," if index else "") + json.dumps(record))
        out.write('],"annotations":[')
        for index in range(n_annotations):
            x, y = round(rng.uniform(0, 600), 2), round(rng.uniform(0, 440), 2)
            w, h = round(rng.uniform(1, 200), 2), round(rng.uniform(1, 200), 2)
            record = {"segmentation": [[x, y, round(x + w, 1), y, round(x + w, 1), round(y + h, 1)]],
                      "area": round(w * h / 2, 2), "iscrowd": 0, "image_id": rng.randrange(n_images) + 1,
                      "bbox": [x, y, w, h], "category_id": rng.randrange(n_categories) + 1, "id": index + 1}
            out.write(("," if index else "") + json.dumps(record))
        out.write('],"categories":[')
        out.write(",".join(json.dumps({"supercategory": "thing", "id": c + 1, "name": f"class_{c + 1:02d}"})
                           for c in range(n_categories)))
        out.write("]}\n")
    return {"images": n_images, "annotations": n_annotations, "categories": n_categories,
            "file_mb": round(path.stat().st_size / 2**20, 1), "generate_seconds": round(time.perf_counter() - started, 1)}


def run_child(command: list[str], *, env: dict | None = None) -> dict:
    """Run one step (a :func:`_wrapped` command): wall seconds and the step's own peak RSS."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    stdout, stderr = child.communicate()
    seconds = time.perf_counter() - started
    lines = stderr.decode(errors="replace").strip().splitlines()
    usage = json.loads(lines[-1]) if lines and lines[-1].startswith("{\"maxrss_kb\"") else {}
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({child.returncode}):\n{stderr.decode(errors='replace')}")
    return {"seconds": round(seconds, 2), "cpu_seconds": round(usage.get("cpu_s", 0.0), 2),
            "peak_rss_mb": round(usage.get("maxrss_kb", 0) / 1024, 1),
            "stdout": stdout.decode(errors="replace").strip()[-300:]}


def _wrapped(command: list[str]) -> list[str]:
    """``command`` under a small wrapper that reaps it with ``os.wait4`` and prints its rusage as JSON
    (``Popen.communicate`` reaps with ``waitpid``, which drops it; ``RUSAGE_CHILDREN`` would be the max over
    every child so far, not this one's)."""
    wrapper = ("import json, os, subprocess, sys\n"
               "child = subprocess.Popen(sys.argv[1:])\n"
               "_, status, usage = os.wait4(child.pid, 0)\n"
               "print(json.dumps({'maxrss_kb': usage.ru_maxrss, 'cpu_s': usage.ru_utime + usage.ru_stime}), "
               "file=sys.stderr)\n"
               "sys.exit(os.waitstatus_to_exitcode(status))\n")
    return [sys.executable, "-c", wrapper, *command]


def _has_module(python: str, module: str) -> bool:
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


def _round(path: Path, *, workdir: Path, env: dict, pycocotools_python: str | None, ijson: bool) -> dict[str, dict]:
    """One run of every step, each in its own child process."""
    steps: dict[str, dict] = {}
    steps["json_load"] = run_child(_wrapped([sys.executable, "-c", "import json, sys; json.load(open(sys.argv[1], "
                                                                   "'rb'))", str(path)]), env=env)
    python = sys.executable if _has_module(sys.executable, "pycocotools") else pycocotools_python
    if python and _has_module(python, "pycocotools"):
        steps["pycocotools"] = run_child(_wrapped([python, "-c", "import sys; from pycocotools.coco import COCO; "
                                                                 "COCO(sys.argv[1])", str(path)]), env=env)
    if ijson and _has_module(sys.executable, "ijson"):
        steps["ijson"] = run_child(_wrapped([sys.executable, "-c", IJSON_READER, str(path)]), env=env)
    spool = workdir / "spool"
    spool.mkdir(exist_ok=True)
    steps["labelfix_reader"] = run_child(_wrapped([sys.executable, "-c", LABELFIX_READER, str(path), str(spool)]),
                                         env=env)
    db, out = workdir / "bench.duckdb", workdir / "export"
    for leftover in (db, db.with_name(db.name + ".wal")):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    labelfix = [sys.executable, "-m", "labelfix"]
    steps["ingest"] = run_child(_wrapped([*labelfix, "ingest", "coco", str(path), "--check-images", "none",
                                          "--db", str(db)]), env=env)
    steps["reingest"] = run_child(_wrapped([*labelfix, "ingest", "coco", str(path), "--check-images", "none",
                                            "--db", str(db)]), env=env)
    steps["export_inline"] = run_child(_wrapped([*labelfix, "export", "coco", "--out", str(out), "--inline",
                                                 "--db", str(db)]), env=env)
    return steps


def measure(path: Path, *, workdir: Path, pycocotools_python: str | None, ijson: bool = True,
            repeat: int = 1) -> dict:
    """Run every step ``repeat`` times, interleaved (so a burst of load hits all steps alike); return per
    step the median seconds, every round's seconds and the largest peak RSS (MB and x the file size)."""
    file_mb = path.stat().st_size / 2**20
    # Imports come from a warm bytecode cache, as an installed package has (a session may set
    # PYTHONDONTWRITEBYTECODE, and then every child compiles numpy, pandas and duckdb again).
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(workdir / "pycache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[3]),
                                                       os.environ.get("PYTHONPATH")]))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-c", "import labelfix.cli.main, labelfix.ingest, labelfix.export"],
                   env=env, check=True)
    rounds = [_round(path, workdir=workdir, env=env, pycocotools_python=pycocotools_python, ijson=ijson)
              for _ in range(repeat)]
    steps = {}
    for name in rounds[0]:
        seconds = sorted(r[name]["seconds"] for r in rounds)
        peak = max(r[name]["peak_rss_mb"] for r in rounds)
        cpu = sorted(r[name]["cpu_seconds"] for r in rounds)
        steps[name] = {"seconds": seconds[len(seconds) // 2], "seconds_each": [r[name]["seconds"] for r in rounds],
                       "cpu_seconds": cpu[len(cpu) // 2],
                       "peak_rss_mb": peak, "rss_x_file": round(peak / file_mb, 2), "stdout": rounds[-1][name]["stdout"]}
    out = workdir / "export"
    return {"steps": steps, "store_mb": round((workdir / "bench.duckdb").stat().st_size / 2**20, 1),
            "inline_mb": round((out / "instances_corrected.json").stat().st_size / 2**20, 1),
            "labels_mb": round((out / "labels.json").stat().st_size / 2**20, 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=118_287)
    parser.add_argument("--annotations", type=int, default=860_001)
    parser.add_argument("--categories", type=int, default=80)
    parser.add_argument("--workdir", type=Path, default=None, help="Where the file and store go (default: a temp folder).")
    parser.add_argument("--pycocotools-python", default=None,
                        help="A Python that has pycocotools (e.g. a throwaway venv), for the reference load.")
    parser.add_argument("--no-ijson", action="store_true", help="Skip the ijson reference.")
    parser.add_argument("--repeat", type=int, default=3, help="Rounds of every step (medians are reported).")
    parser.add_argument("--out", type=Path, default=None, help="Write the JSON here as well as to stdout.")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="labelfix-coco-memory-"))
    path = workdir / "instances_synthetic.json"
    load_before = os.getloadavg()
    record = generate(path, n_images=args.images, n_annotations=args.annotations, n_categories=args.categories)
    record |= measure(path, workdir=workdir, pycocotools_python=args.pycocotools_python, ijson=not args.no_ijson,
                      repeat=args.repeat)
    steps = record["steps"]
    reference = steps.get("pycocotools", steps["json_load"])
    record["goal"] = {
        "rss_limit_x_file": 3.0,
        "reference": "pycocotools" if "pycocotools" in steps else "json_load",
        "ingest_rss_ok": steps["ingest"]["rss_x_file"] <= 3.0,
        "export_rss_ok": steps["export_inline"]["rss_x_file"] <= 3.0,
        "ingest_vs_reference_time": round(steps["ingest"]["seconds"] / reference["seconds"], 2),
        "export_vs_reference_time": round(steps["export_inline"]["seconds"] / reference["seconds"], 2),
        # CPU seconds (user + system, every thread) move less with the machine's load than wall time.
        "ingest_vs_reference_cpu": round(steps["ingest"]["cpu_seconds"] / max(reference["cpu_seconds"], 1e-9), 2)}
    command = " ".join([Path(sys.executable).name, "-m", MODULE, *(sys.argv[1:] if argv is None else argv)])
    output = {"benchmark": "coco_memory", "command": command,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                          "load_average_before": [round(x, 2) for x in load_before],
                          "load_average_after": [round(x, 2) for x in os.getloadavg()]},
              "result": record}
    emit_report(output, args.out)
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return output


if __name__ == "__main__":
    main()
