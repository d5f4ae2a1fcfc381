"""Pool the records of several `labelfix bench` result folders of one regime into one table.

The adapt matrix is run in parts (seed 0 with every method, seeds 1 and 2 with AN, the best methods and
the oracle), each part in its own folder. This script takes every record of the given folders
(``--replace`` folders' records override a method+seed+folds of the others, e.g. a re-run after a fix),
summarises them with labelfix's own report code (mean ± std over the seeds each method has) and writes
``results.json`` + ``results.md`` to ``--out``. Example:

    python benchmarks/combine_adapt_results.py benchmarks/results/adapt_hide40 \
        benchmarks/results/adapt_hide40_seeds12 --out benchmarks/results/adapt_hide40_all
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from labelfix.bench.report import build_payload, write_json, write_markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--replace", type=Path, nargs="*", default=[])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    payloads = [json.loads((folder / "results.json").read_text()) for folder in [*args.folders, *args.replace]]
    records: dict[tuple[str, int, int], dict] = {}
    for payload in payloads:  # later folders (--replace) win
        for record in payload["results"]:
            records[(record["method"], record["seed"], record["folds"])] = record
    first = payloads[0]
    seeds = sorted({s["seed"]: s for p in payloads for s in p["config"]["seeds_detail"]}.items())
    settings = {k: v for k, v in first["config"].items() if k not in ("data", "seeds_detail")}
    settings["seeds"] = [seed for seed, _ in seeds]
    settings["methods"] = sorted({method for method, _, _ in records})
    environment = {**first["environment"], "pooled_from": [str(f) for f in [*args.folders, *args.replace]]}
    payload = build_payload(settings=settings, data=first["config"]["data"], seeds=[s for _, s in seeds],
                            records=sorted(records.values(), key=lambda r: (r["method"], r["seed"])),
                            environment=environment)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(payload, args.out / "results.json")
    command = "python benchmarks/combine_adapt_results.py " + " ".join(
        [*map(str, args.folders), *(["--replace", *map(str, args.replace)] if args.replace else []), "--out", str(args.out)])
    write_markdown(payload, args.out / "results.md", command=command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
