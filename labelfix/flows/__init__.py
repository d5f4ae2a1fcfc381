"""End-to-end flows (demo, clean a COCO dataset, benchmark); configs live in ``flows/`` at the repo root."""
