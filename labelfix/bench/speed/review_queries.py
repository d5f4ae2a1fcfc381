"""Speed of the review queue's queries on a large store (issue 14: 1M images, 100 classes, 10M suggestions).

The store is generated inside DuckDB with SQL (hash-based pseudo-random numbers, no Python loops): N
images (every 10th in val), C classes with long-tailed prevalence (class c has weight ``(c + 1)**-0.8``,
scaled to 4 positives per image on average), one annotation with a bbox per positive (listed class by
class, as some COCO files are, so boxes of one image are spread over the whole table), about 10 open
missing-label suggestions per image (more in head classes) plus spurious ones on 0.5% of the positives,
ranked per class as ``labelfix suggest`` files them, and optionally D decisions already made (the top of
each class, by four reviewers).

Then :class:`~labelfix.review.service.ReviewService` calls are timed as the review app makes them:
the class list with counts (``progress``), a page of 24 items of the head class, of a tail class and of
"all classes" (``next_items``, which leases them), the page's labels and boxes, a decision, an undo, a
page reload after a decision, the precision estimate and a batch accept. Each is repeated and its
median and p95 reported in milliseconds.

Usage::

    python -m labelfix.bench.speed.review_queries --images 1000000 --out benchmarks/results/review_queries.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labelfix.bench.speed.report import emit_report, load_average

GENERATE_SQL = """
CREATE OR REPLACE TEMP MACRO u(i, c, k) AS (hash(i, c, k) % 1000003) / 1000003.0;
CREATE OR REPLACE TEMP TABLE class_rates AS
    SELECT c, {P} * w / sum(w) OVER () AS p, 0.07 * {Q} + 0.35 * {Q} * w / max(w) OVER () AS q
    FROM (SELECT c, pow(c + 1, -0.8) AS w FROM range({C}) t(c));
INSERT INTO sources (source_id, kind, path, sha256, images_root, header, ingested_at)
    VALUES (1, 'coco', 'synthetic.json', '-', '/nonexistent', NULL, now());
INSERT INTO categories SELECT c + 1, 'class_' || lpad((c + 1)::VARCHAR, 3, '0'), NULL, '{{}}' FROM range({C}) t(c);
INSERT INTO images (image_id, file_name, width, height, split, source_id, images_root, record)
    SELECT i + 1, printf('img_%07d.jpg', i + 1), 640, 480, CASE WHEN i % 10 = 0 THEN 'val' ELSE 'train' END, 1,
           '/nonexistent', '{{}}' FROM range({N}) t(i);
CREATE OR REPLACE TEMP TABLE cells AS
    SELECT i, c, u(i, c, 1) AS x, p, q FROM range({N}) a(i), class_rates WHERE u(i, c, 1) < p + q;
INSERT INTO original_labels SELECT i + 1, c + 1, 1 FROM cells WHERE x < p ORDER BY i, c;
INSERT INTO labels (image_id, category_id, state, origin)
    SELECT image_id, category_id, 1, 'original' FROM original_labels ORDER BY image_id, category_id;
INSERT INTO annotations (source_id, annotation_id, image_id, category_id, record)
    SELECT 1, row_number() OVER (ORDER BY c, i), i + 1, c + 1,
           json_object('id', row_number() OVER (ORDER BY c, i), 'image_id', i + 1, 'category_id', c + 1,
                       'bbox', [round(600 * u(i, c, 5)), round(440 * u(i, c, 6)), 40, 40], 'area', 1600, 'iscrowd', 0)
    FROM cells WHERE x < p ORDER BY c, i;
INSERT INTO runs (method, mode, status, config) VALUES ('an', 'head', 'finished', '{{"synthetic": true}}');
INSERT INTO suggest_calls (run_id, source_runs, config, created_at) VALUES (1, '[1]', '{{}}', now());
INSERT INTO suggestions (run_id, image_id, category_id, kind, score, rank_in_class, threshold, reason, call_id,
                         created_at)
    SELECT 1, image_id, category_id, kind, score,
           row_number() OVER (PARTITION BY kind, category_id
                              ORDER BY CASE WHEN kind = 'missing' THEN -score ELSE score END, image_id),
           0.5, printf('synthetic: score %.3f', score), 1, now()
    FROM (SELECT i + 1 AS image_id, c + 1 AS category_id, 'missing' AS kind, (0.5 + 0.5 * u(i, c, 2))::FLOAT AS score
          FROM cells WHERE x >= p
          UNION ALL
          SELECT i + 1, c + 1, 'spurious', (0.05 * u(i, c, 2))::FLOAT FROM cells WHERE x < p AND u(i, c, 3) < 0.005)
    ORDER BY kind, category_id, 6;
DROP TABLE cells;
"""

# D decisions: the top of each class's missing suggestions (reviewers work from the top), 70% accepted,
# 2% skipped, by four reviewers; the label cells follow the decisions.
DECIDE_SQL = """
CREATE OR REPLACE TEMP TABLE decided AS
    SELECT suggestion_id, image_id, category_id,
           CASE WHEN u(suggestion_id, 0, 7) < 0.02 THEN 'skip' WHEN u(suggestion_id, 0, 7) < 0.72 THEN 'accept'
                ELSE 'reject' END AS decision,
           'reviewer_' || (suggestion_id % 4) AS reviewer
    FROM suggestions WHERE kind = 'missing' AND rank_in_class <= {PER_CLASS};
INSERT INTO review_events (suggestion_id, image_id, category_id, reviewer, decision, created_at)
    SELECT suggestion_id, image_id, category_id, reviewer, decision,
           TIMESTAMP '2026-01-01' + to_seconds(suggestion_id % 86400) FROM decided ORDER BY suggestion_id;
INSERT INTO labels (image_id, category_id, state, origin)
    SELECT image_id, category_id, CASE WHEN decision = 'accept' THEN 1 ELSE -1 END,
           CASE WHEN decision = 'accept' THEN 'accepted' ELSE 'manual' END
    FROM decided WHERE decision <> 'skip';
DROP TABLE decided;
"""
# (review_state is then derived from these events by its owner, labelfix.store.reviews.rebuild_state.)


def generate(db: Path, *, n_images: int, n_classes: int = 100, suggestions_per_image: float = 10.0,
             positives_per_image: float = 4.0, n_decided: int = 0) -> dict[str, Any]:
    """Build the benchmark store at ``db`` (which must not exist); return counts and the time taken."""
    from labelfix.store import open_store
    from labelfix.store.reviews import rebuild_state

    started = time.perf_counter()
    # q: the suggestion rates are 0.07 + 0.35 w/max(w) per unit, which sum to about 10 over 100 classes.
    scale = suggestions_per_image / 9.8 * (100 / n_classes)
    with open_store(db) as store:
        store.execute("SET enable_progress_bar = false")
        store.connection.execute(GENERATE_SQL.format(N=int(n_images), C=int(n_classes), P=positives_per_image,
                                                     Q=scale))
        if n_decided:
            per_class = max(1, round(n_decided / n_classes))
            store.connection.execute(DECIDE_SQL.format(PER_CLASS=per_class))
            with store.transaction():
                rebuild_state(store)
        store.execute("CHECKPOINT")
        counts = {table: int(store.scalar(f"SELECT count(*) FROM {table}"))
                  for table in ("images", "categories", "labels", "annotations", "suggestions", "review_events")}
    return {"generate_seconds": round(time.perf_counter() - started, 1), **counts,
            "store_mb": round(db.stat().st_size / 2**20, 1)}


def _time(function: Callable[[], Any], *, repeats: int) -> dict[str, float]:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    ms = sorted(1000 * s for s in seconds)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return {"median_ms": round(statistics.median(ms), 1), "p95_ms": round(p95, 1), "max_ms": round(ms[-1], 1),
            "repeats": repeats}


def measure(db: Path, *, repeats: int = 30, page: int = 24) -> dict[str, Any]:
    """Time the review service's calls on the store at ``db`` as the review app makes them.

    Each timing is a fresh call through the service (its caches warm after the first call, as in a running
    app); ``first_*`` entries are the first calls after the process started (cold caches). Decisions are
    made by reviewer ``bench`` in a middle class, so the head/tail pages stay comparable.
    """
    import pandas  # type: ignore[import-untyped]  # noqa: F401 - DuckDB imports it on the first Arrow registration (seconds); a server has it loaded

    from labelfix.review.service import ReviewService
    from labelfix.store import open_store

    results: dict[str, Any] = {}
    with open_store(db, create=False) as store:
        store.execute("SET enable_progress_bar = false")
        service = ReviewService(store)
        started = time.perf_counter()
        progress = service.progress(reviewer="bench")
        results["first_class_list_ms"] = round(1000 * (time.perf_counter() - started), 1)
        with_items = [p for p in progress.by_class if p.pending and p.category_id is not None]
        tail, head, middle = (int(p.category_id or 0) for p in
                              (with_items[0], with_items[-1], with_items[len(with_items) // 2]))
        results["classes"] = {"tail": tail, "head": head, "middle": middle,
                              "head_pending": with_items[-1].pending, "tail_pending": with_items[0].pending}
        results["class_list"] = _time(lambda: service.progress(reviewer="bench"), repeats=repeats)
        results["head_class_page"] = _time(lambda: service.next_items(reviewer="bench", n=page, category_id=head),
                                           repeats=repeats)
        results["tail_class_page"] = _time(lambda: service.next_items(reviewer="bench", n=page, category_id=tail),
                                           repeats=repeats)
        results["all_classes_page"] = _time(lambda: service.next_items(reviewer="bench", n=page), repeats=repeats)
        items = service.next_items(reviewer="bench", n=page, category_id=head)
        image_ids = [i.image_id for i in items]
        results["page_labels"] = _time(lambda: service.image_labels(image_ids=image_ids), repeats=repeats)
        results["page_boxes"] = _time(lambda: service.image_boxes(image_ids=image_ids), repeats=repeats)

        def decide() -> None:
            (item,) = service.next_items(reviewer="bench", n=1, category_id=middle)
            service.submit(suggestion_id=item.suggestion_id, reviewer="bench", decision="accept",
                           expected_status=item.status)

        def submit_only() -> None:
            item = pending.pop()
            service.submit(suggestion_id=item.suggestion_id, reviewer="bench", decision="reject",
                           expected_status=item.status)

        pending = service.next_items(reviewer="bench", n=repeats, category_id=middle)
        results["decide"] = _time(submit_only, repeats=len(pending))
        results["undo"] = _time(lambda: service.undo(reviewer="bench"), repeats=repeats)

        def reload_after_decision() -> None:
            decide()
            service.progress(reviewer="bench")
            page_items = service.next_items(reviewer="bench", n=page, category_id=middle)
            ids = [i.image_id for i in page_items]
            service.image_labels(image_ids=ids)
            service.image_boxes(image_ids=ids)

        results["decision_and_page_reload"] = _time(reload_after_decision, repeats=repeats)
        results["precision_estimate"] = _time(
            lambda: service.precision_estimate(reviewer="bench", category_id=middle), repeats=repeats)
        results["reviewer_stats"] = _time(service.reviewer_stats, repeats=max(3, repeats // 5))
        threshold = sorted(i.score for i in service.items(category_id=tail, limit=200, statuses=["open"]))
        cut = threshold[len(threshold) // 2] if threshold else 1.0
        started = time.perf_counter()
        batch = service.accept_above(reviewer="bench", category_id=tail, min_score=cut)
        results["accept_above"] = {"ms": round(1000 * (time.perf_counter() - started), 1),
                                   "accepted": len(batch.events)}
    # The app's way: a service made by ReviewService.open keeps no connection while idle. With its default
    # linger (2 s) the file stays open between the pages of a working reviewer; without it every page opens
    # the file (20 ms), reads cold from disk and checkpoints its writes when it closes.
    for key, linger in (("page_reload_app_service", 2.0), ("page_reload_open_and_close_per_page", 0.0)):
        shared = ReviewService.open(db, linger_seconds=linger)

        def reload_open_mode() -> None:
            with shared.session():
                shared.progress(reviewer="bench2")
                page_items = shared.next_items(reviewer="bench2", n=page, category_id=head)
                ids = [i.image_id for i in page_items]
                shared.image_labels(image_ids=ids)
                shared.image_boxes(image_ids=ids)

        reload_open_mode()
        results[key] = _time(reload_open_mode, repeats=max(3, repeats // 3))
        with shared.connection():
            pass
        source = shared._access.source
        if hasattr(source, "close"):
            source.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--suggestions-per-image", type=float, default=10.0)
    parser.add_argument("--decided", type=int, default=None, help="decisions already made (default images / 5)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--db", type=Path, default=None,
                        help="reuse (or keep) the generated store here instead of a temporary one")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    decided = args.images // 5 if args.decided is None else args.decided
    report: dict[str, Any] = {
        "command": " ".join(["python -m labelfix.bench.speed.review_queries", *(argv if argv is not None
                                                                                 else sys.argv[1:])]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average_start": load_average()},
        "images": args.images, "classes": args.classes, "decided": decided}
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "review_bench.duckdb"
        if not db.exists():
            report["store"] = generate(db, n_images=args.images, n_classes=args.classes,
                                       suggestions_per_image=args.suggestions_per_image, n_decided=decided)
        else:
            report["store"] = {"reused": str(db)}
        # Measure on a copy, so a kept store stays as generated.
        work = Path(tmp) / "measured.duckdb"
        import shutil

        shutil.copyfile(db, work)
        report["results"] = measure(work, repeats=args.repeats)
    report["machine"]["load_average_end"] = load_average()
    emit_report(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
