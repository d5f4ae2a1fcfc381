"""End-to-end flows (demo, clean a COCO dataset, benchmark); configs live in ``pipelines/`` at the repo root."""
