"""Repository-level pytest settings: doctests run over labelfix/ (pyproject: --doctest-modules, testpaths).

The Streamlit script runs the page when imported, so doctest collection skips it; its behaviour is
tested through streamlit.testing in tests/test_review_app.py. Doctests of labelfix.review get ``store``:
a small store with 8 open suggestions on 10 images (the one tests/review_helpers.py builds).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent

collect_ignore = ["labelfix/review/app/review_app.py"]


def _review_helpers():
    spec = importlib.util.spec_from_file_location("review_helpers", ROOT / "tests" / "review_helpers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _store_for_review_doctests(request, doctest_namespace, tmp_path_factory):
    if not request.node.nodeid.startswith("labelfix/review/"):
        yield
        return
    from labelfix.store import open_store

    db = _review_helpers().make_review_store(tmp_path_factory.mktemp("doctest-review"))
    with open_store(db) as store:
        doctest_namespace["store"] = store
        yield
    doctest_namespace.pop("store", None)
