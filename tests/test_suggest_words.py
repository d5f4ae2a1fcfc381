"""What ``labelfix suggest`` says, and how its CLI fails (FRESH_REPORT4, findings 2-7): why nothing was
auto-accepted, the train counts before the call, the low-target warning, the fully labelled store's overall row,
a repeated ``--run``, and ``--json`` failures as one JSON object on stdout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from labelfix.cli.main import main
from labelfix.internal.words import counted
from labelfix.suggest.advice import auto_accept_note
from labelfix.suggest.run import SuggestConfig, suggest
from test_suggest import build_store
from test_suggest_regimes import make_store

pytestmark = pytest.mark.filterwarnings("ignore:asked to hide:UserWarning")


def _printed(report) -> str:
    console = Console(width=400, record=True)
    report.print(console)
    return console.export_text()


def test_train_freq_is_the_count_before_the_call_and_a_low_target_warns(tmp_path: Path):
    """Finding 3: 'train freq' grew by the labels the same call auto-accepted (58 -> 98), and a target of 0.3
    auto-accepted without a word about the labels that may be wrong."""
    store, _ = build_store(tmp_path / "s.duckdb")
    with store:
        before = dict(store.fetchall("SELECT l.category_id, count(*) FROM labels l JOIN images i USING (image_id) "
                                     "WHERE i.split = 'train' AND l.state = 1 GROUP BY ALL"))
        report = suggest(store, config=SuggestConfig(min_support=2, target_precision=0.5, auto_accept_above=0.6))
        assert report.n_auto_accepted > 0
        assert {c.category_id: c.train_frequency for c in report.classes} == before
        assert report.auto_accept_warning == (
            "auto-accepting at target precision 0.5: up to 50% of the auto-accepted labels may be wrong (their "
            "classes' thresholds are set to reach precision 0.5 on validation, no more); raise --target-precision "
            "(default 0.9) to auto-accept safely; `labelfix revert-auto` undoes these")
        assert report.auto_accept_note is None  # some were accepted: nothing to explain
        text = " ".join(_printed(report).split())
        assert "warning: auto-accepting at target precision 0.5" in text
        assert "train freq = the class's train positives before this call" in text
        assert report.to_dict()["auto_accept_warning"] == report.auto_accept_warning
        # At the default target, or without auto-accept, no warning.
        assert suggest(store, config=SuggestConfig(min_support=2, auto_accept_above=0.6)).auto_accept_warning is None
        assert suggest(store, config=SuggestConfig(min_support=2, target_precision=0.5)).auto_accept_warning is None


def test_nothing_auto_accepted_says_why(tmp_path: Path):
    """Finding 2: with --auto-accept-above and 0 auto-accepted, the summary says why in words."""
    store, _ = build_store(tmp_path / "s.duckdb")
    with store:
        report = suggest(store, config=SuggestConfig(min_support=2, auto_accept_above=0.9999))
        assert report.n_auto_accepted == 0
        assert report.auto_accept_note is not None
        assert report.auto_accept_note.startswith("auto-accept: 0, because no missing suggestion of the ")
        assert report.auto_accept_note.endswith("that reached target precision 0.9 scored above 0.9999")
        lines = _printed(report).splitlines()
        count = next(i for i, line in enumerate(lines) if "suggestions written, 0 auto-accepted" in line)
        assert lines[count + 1].startswith("auto-accept: 0, because")  # right under the count it explains
        assert report.to_dict()["auto_accept_note"] == report.auto_accept_note
        assert suggest(store, config=SuggestConfig(min_support=2)).auto_accept_note is None  # not asked for


@pytest.mark.parametrize(("measured", "estimated", "allowed", "held_back", "says"), [
    (0, 0, False, 0, "no class reached target precision 0.9 on validation, and ranked lists (NOT calibrated) are "
                     "never auto-accepted"),
    (0, 2, False, 0, "only estimated classes (PU or an estimated miss rate: 2) reached target precision 0.9, "
                    "and their precision is an "
                     "estimate, not measured; pass --auto-accept-estimated to auto-accept them too"),
    (0, 2, True, 0, "no missing suggestion of the 2 classes that reached target precision 0.9 scored above 0.95"),
    (1, 0, False, 0, "no missing suggestion of the 1 class that reached target precision 0.9 scored above 0.95"),
    (1, 0, False, 1, "the 1 suggestion above 0.95 waits for a reviewer: `labelfix revert-auto` undid an earlier "
                     "auto-accept of those cells"),
])
def test_each_reason_for_no_auto_accept(measured, estimated, allowed, held_back, says):
    assert auto_accept_note(above=0.95, accepted=0, held_back=held_back, target=0.9, measured=measured,
                            estimated=estimated, estimated_allowed=allowed) == f"auto-accept: 0, because {says}"
    assert auto_accept_note(above=0.95, accepted=3, held_back=0, target=0.9, measured=1, estimated=0,
                            estimated_allowed=False) is None


def test_a_fully_labelled_store_prints_no_pooled_threshold(tmp_path: Path):
    """Finding 5c: every class 'complete', yet the overall row printed threshold 1.000, method pool."""
    rng = np.random.default_rng(0)
    observed = rng.random((40, 2)) < 0.5
    observed[:20] = True  # every train cell labelled (positive): nothing can be missing
    with make_store(tmp_path / "all.duckdb", names=["a", "b"], observed=observed, scores=rng.random((40, 2)),
                    n_train=20) as store:
        report = suggest(store, config=SuggestConfig(min_support=2, auto_accept_above=0.5))
    assert all(c.threshold_source == "complete" and c.threshold is None for c in report.classes)
    assert report.auto_accept_note == "auto-accept: 0, because this call wrote no missing suggestion to accept"
    row = next(line for line in _printed(report).splitlines() if "all classes" in line)
    cells = [cell.strip() for cell in row.strip(" │|").split("│")]
    assert cells[-2:] == ["-", "-"], row


def test_counts_in_words_are_singular_for_one():
    assert [counted(n, "val image") for n in (0, 1, 2)] == ["0 val images", "1 val image", "2 val images"]
    assert counted(1, "class", "classes") == "1 class" and counted(4, "class", "classes") == "4 classes"


# -- the CLI ------------------------------------------------------------------------------------------------
def _cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_repeated_run_is_one_clear_error(tmp_path: Path, capsys):
    """Finding 6: `--run 1 --run 1` was taken silently (it would weigh run 1 double in a mean)."""
    db = tmp_path / "s.duckdb"
    build_store(db)[0].close()
    code, out, err = _cli(capsys, ["suggest", "--db", str(db), "--run", "1", "--run", "1"])
    assert code == 2 and out == "" and "Traceback" not in err
    assert "error: --run 1 given more than once" in err and "fix: give each run once (e.g. `--run 1`)" in err
    from labelfix.store import open_store
    with open_store(db, create=False) as store:  # nothing was written
        assert store.scalar("SELECT count(*) FROM suggestions") == 0
    with pytest.raises(ValueError, match="run 1 given more than once"):  # the library says so too
        SuggestConfig(run_ids=[1, 2, 1])


@pytest.mark.parametrize(("argv", "says"), [
    (["--run", "1", "--run", "1"], "--run 1 given more than once"),
    (["--target-precision", "0"], "invalid option: --target-precision"),
    (["--target-precision", "abc"], "Invalid value for '--target-precision'"),
    (["--bogus"], "No such option: --bogus"),
])
def test_json_failures_are_one_json_object_on_stdout(tmp_path: Path, capsys, argv, says):
    """Finding 7: with --json, a script reading stdout gets JSON on failure too; a person still reads stderr."""
    db = tmp_path / "s.duckdb"
    build_store(db)[0].close()
    code, out, err = _cli(capsys, ["suggest", "--db", str(db), "--json", *argv])
    assert code == 2 and "Traceback" not in out + err
    body = json.loads(out)  # one JSON object, nothing else
    assert set(body) >= {"error", "fix"} and says in body["error"] and body["fix"]
    assert "error:" in err and says in err


def test_json_failure_of_a_missing_store_names_the_file(tmp_path: Path, capsys):
    db = tmp_path / "missing.duckdb"
    code, out, err = _cli(capsys, ["suggest", "--db", str(db), "--json"])
    assert code == 2 and not db.exists()
    body = json.loads(out)
    assert body["file"] == str(db) and body["error"] and body["fix"] and "error:" in err
    code, out, err = _cli(capsys, ["suggest", "--db", str(db)])  # without --json: stdout stays empty
    assert code == 2 and out == "" and "error:" in err


def test_a_weakly_trained_class_says_why_its_list_is_short():
    """Finding 4: every kind of ranked list of a class with few train positives says it is cut short, and why."""
    from labelfix.suggest.calibration import WEAK_CLASS_TOP_K, ranked_list_words, unreached_note

    why = f"(at most {WEAK_CLASS_TOP_K}: with fewer than 5 train positives the class is too weakly trained"
    assert why in ranked_list_words(3, float("nan"), weak=True) and why not in ranked_list_words(3, float("nan"))
    assert why in unreached_note("val", unknown=9, threshold=0.7, k=3, weak=True)
    assert ranked_list_words(1, float("nan")).startswith("its top 1 unknown train cell,")
