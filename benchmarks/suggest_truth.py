"""True precision of a store's latest `labelfix suggest` call, per class, against a fully labelled COCO file.

For stores built from data whose truth is known (the demo writes it to ``DATA/instances_full.json``): the open
missing-label suggestions of the newest suggest call, split into calibrated rows (with a threshold) and ranked
lists (without), each with the share that are true labels. Images are matched by ``file_name``, classes by name.
Reads the store only. Example (the README's suggest figures):

    labelfix --db demo.duckdb suggest --expected-missing-rate auto
    python benchmarks/suggest_truth.py demo.duckdb labelfix_demo/data/instances_full.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import duckdb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("truth", type=Path, help="COCO file with every true label")
    args = parser.parse_args(argv)
    coco = json.loads(args.truth.read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    files = {image["id"]: image["file_name"] for image in coco["images"]}
    truth = {(files[a["image_id"]], names[a["category_id"]]) for a in coco["annotations"]}
    with duckdb.connect(str(args.store), read_only=True) as connection:
        rows = connection.execute(
            "SELECT c.name, i.file_name, s.threshold IS NOT NULL FROM suggestions s JOIN images i USING (image_id) "
            "JOIN categories c USING (category_id) WHERE s.kind = 'missing' AND s.superseded_at IS NULL "
            "AND s.call_id = (SELECT max(call_id) FROM suggestions)").fetchall()
    count, true = Counter(), Counter()
    for name, file_name, calibrated in rows:
        for key in ((name, calibrated), ("all classes", calibrated)):
            count[key] += 1
            true[key] += (file_name, name) in truth
    print("| class | kind | suggestions | true precision |\n|---|---|---|---|")
    for (name, calibrated) in sorted(count, key=lambda k: (k[0] == "all classes", k[0], not k[1])):
        key = (name, calibrated)
        print(f"| {name} | {'calibrated' if calibrated else 'ranked'} | {count[key]} | {true[key] / count[key]:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
