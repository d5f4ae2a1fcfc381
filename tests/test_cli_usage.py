"""Every command-line slip is a usage message and exit code 2, never a traceback (issue 13, item 1).

The commands are enumerated from the typer app, so a new command is covered without editing this file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing
import warnings
from pathlib import Path

import pytest
import typer

from labelfix import __version__
from labelfix.cli.main import app, main

ROOT = Path(__file__).resolve().parents[1]


def _leaves(command, path=()):
    """(argv prefix, click command) of every runnable command, depth first."""
    children = getattr(command, "commands", None)
    if not children:
        yield list(path), command
        return
    for name, child in children.items():
        yield from _leaves(child, (*path, name))


def _groups(command, path=()):
    children = getattr(command, "commands", None)
    if children:
        yield list(path), command
        for name, child in children.items():
            yield from _groups(child, (*path, name))


ROOT_COMMAND = typer.main.get_command(app)
LEAVES = list(_leaves(ROOT_COMMAND))
GROUPS = list(_groups(ROOT_COMMAND))


def _base_type(param) -> type | None:
    """The element type of a parameter's annotation: ``Optional[int]`` and ``list[int]`` give ``int``."""
    annotation = param.type_descriptor.annotation
    while typing.get_origin(annotation) in (typing.Union, list, tuple) or type(annotation).__name__ == "UnionType":
        arguments = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(arguments) != 1:
            return None
        annotation = arguments[0]
    return annotation if isinstance(annotation, type) else None


def _options(command):
    return [p for p in command.params if p.param_type_name == "option" and not getattr(p, "is_flag", False)]


def _bad_value_cases():
    """(argv, option) for every int/float option given text, a value out of its range, or a choice it lacks."""
    cases = []
    for path, command in LEAVES:
        for param in _options(command):
            option = max(param.opts, key=len)
            kind = _base_type(param)
            descriptor = param.type_descriptor
            if kind in (int, float):
                cases.append((path + [option, "notanumber"], option))
            if kind is float:  # nan passes every range check unless refused (fresh-user report, item 14)
                cases += [(path + [option, "nan"], option), (path + [option, "inf"], option)]
                if descriptor.parameter_info.min is not None:
                    cases.append((path + [option, str(descriptor.parameter_info.min - 1)], option))
                if descriptor.parameter_info.max is not None:
                    cases.append((path + [option, str(descriptor.parameter_info.max + 1)], option))
            elif descriptor.is_choice:
                cases.append((path + [option, "no-such-choice"], option))
    return cases


BAD_VALUES = _bad_value_cases()


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_usage_error(code: int, out: str, err: str) -> None:
    assert code == 2, out + err
    assert "Traceback" not in out + err, out + err
    assert "error:" in err, err


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    # Nothing here should get as far as opening a store; if it did, it stays in the test's folder.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LABELFIX_DB", raising=False)


def test_the_app_has_the_commands_we_expect_to_cover():
    names = {" ".join(path) for path, _ in LEAVES}
    assert {"ingest coco", "ingest table", "export coco", "status", "train", "review", "suggest",
            "fiftyone push", "bench", "embed"} <= names
    assert len(BAD_VALUES) > 20


@pytest.mark.parametrize("path", [path for path, _ in LEAVES + GROUPS], ids=lambda p: " ".join(p) or "labelfix")
def test_unknown_option_is_a_usage_error(capsys, path):
    code, out, err = _run(capsys, path + ["--no-such-option"])
    _assert_usage_error(code, out, err)
    assert "No such option: --no-such-option" in err
    assert f"see `{' '.join(['labelfix', *path])} --help`" in err


@pytest.mark.parametrize("path", [path for path, _ in GROUPS], ids=lambda p: " ".join(p) or "labelfix")
def test_unknown_command_is_a_usage_error(capsys, path):
    code, out, err = _run(capsys, path + ["no-such-command"])
    _assert_usage_error(code, out, err)
    assert "No such command 'no-such-command'" in err


@pytest.mark.parametrize("argv,option", BAD_VALUES, ids=[" ".join(argv) for argv, _ in BAD_VALUES])
def test_bad_option_value_is_a_usage_error(capsys, argv, option):
    code, out, err = _run(capsys, argv)
    _assert_usage_error(code, out, err)
    assert f"Invalid value for '{option}'" in err


REQUIRED = [(path, command) for path, command in LEAVES if any(p.required for p in command.params)]


@pytest.mark.parametrize("path", [path for path, _ in REQUIRED], ids=lambda p: " ".join(p))
def test_missing_required_parameter_is_a_usage_error(capsys, path):
    code, out, err = _run(capsys, path)
    _assert_usage_error(code, out, err)
    assert "Missing" in err


@pytest.mark.parametrize("path", [path for path, _ in LEAVES + GROUPS], ids=lambda p: " ".join(p) or "labelfix")
def test_help_of_every_command_exits_0(capsys, path):
    code, out, err = _run(capsys, path + ["--help"])
    assert code == 0, err
    assert "Usage" in out and "Traceback" not in out + err
    assert "<bool>" not in out  # a flag takes no value: no placeholder (issue 13)


# -- the examples of the issue, with their exact values ------------------------------------------

@pytest.mark.parametrize("argv,expected", [
    (["ingset"], "No such command 'ingset'. Did you mean 'ingest'"),
    (["ingest", "coco"], "Missing argument"),
    (["train", "--epochs", "abc"], "Invalid value for '--epochs'"),
    (["review", "--port", "notaport"], "Invalid value for '--port'"),
    (["ingest", "coco", "ann.json", "--check-images", "fast"], "Invalid value for --check-images: use full, header "
                                                                 "or none"),
    (["ingest", "table", "t.csv", "--images", ".", "--split", "training"], "Invalid value for --split: use train, "
                                                                             "val or test"),
    (["--db", "s.duckdb", "demo-data"], "`labelfix demo-data` does not use a store"),
    (["--db", "s.duckdb"], "Missing command"),
    (["review", "--port", "70000"], "Invalid value for '--port'"),
    (["demo-data", "--n-train", "-5"], "Invalid value for '--n-train'"),
])
def test_issue_examples(capsys, argv, expected):
    code, out, err = _run(capsys, argv)
    _assert_usage_error(code, out, err)
    assert expected in err
    assert "Usage: labelfix" in err
    assert not Path("s.duckdb").exists()


def test_check_images_is_refused_before_a_store_is_created(capsys, tiny_coco):
    code, out, err = _run(capsys, ["ingest", "coco", str(tiny_coco), "--images", str(tiny_coco.parent / "images"),
                                   "--check-images", "fast", "--db", "new.duckdb"])
    _assert_usage_error(code, out, err)
    assert not Path("new.duckdb").exists()


@pytest.mark.parametrize("path", [[], ["ingest"], ["export"], ["fiftyone"]], ids=lambda p: " ".join(p) or "labelfix")
def test_a_group_without_a_command_prints_its_help_and_exits_2(capsys, path):
    # click's convention (8.2+) for a group called with no arguments: the help, and the usage-error code.
    code, out, err = _run(capsys, path)
    assert code == 2
    assert "Usage: labelfix" in out and "Commands" in out
    assert "Traceback" not in out + err


def test_version_option_and_command(capsys):
    assert _run(capsys, ["--version"]) == (0, f"{__version__}\n", "")
    assert _run(capsys, ["version"]) == (0, f"{__version__}\n", "")


def test_db_before_the_command(capsys, tiny_coco):
    images = str(tiny_coco.parent / "images")
    assert main(["--db", "first.duckdb", "ingest", "coco", str(tiny_coco), "--images", images]) == 0
    assert Path("first.duckdb").is_file()
    capsys.readouterr()
    code, out, err = _run(capsys, ["--db", "first.duckdb", "status"])
    assert code == 0, err
    assert "first.duckdb" in out
    # --db given twice, wherever, is refused: a command opens one store (fresh-user report, item 14).
    code, out, err = _run(capsys, ["--db", "missing.duckdb", "status", "--db", "first.duckdb"])
    assert code == 2 and "--db given twice (missing.duckdb, first.duckdb)" in err
    code, out, err = _run(capsys, ["--db", "missing.duckdb", "status"])
    assert code == 2 and "missing.duckdb" in err and "no labelfix store here" in err
    assert not Path("missing.duckdb").exists()


# -- file-system slips ---------------------------------------------------------------------------

@pytest.fixture
def store_with_data(tiny_coco) -> Path:
    db = Path("store.duckdb").resolve()
    assert main(["ingest", "coco", str(tiny_coco), "--images", str(tiny_coco.parent / "images"), "--db", str(db)]) == 0
    return db


def _assert_clear(code: int, out: str, err: str, *, names: str, says: str) -> None:
    _assert_usage_error(code, out, err)
    assert names in err and says in err and "fix:" in err, err


def test_export_out_naming_an_existing_file(capsys, store_with_data, tmp_path):
    target = tmp_path / "labels.json"
    target.write_text("keep me")
    code, out, err = _run(capsys, ["export", "coco", "--out", str(target), "--db", str(store_with_data)])
    _assert_clear(code, out, err, names=str(target), says="is a file, not a folder")
    assert target.read_text() == "keep me"


def test_export_out_below_a_file(capsys, store_with_data, tmp_path):
    target = tmp_path / "labels.json"
    target.write_text("keep me")
    code, out, err = _run(capsys, ["export", "coco", "--out", str(target / "sub"), "--db", str(store_with_data)])
    _assert_clear(code, out, err, names=str(target), says="is a file")


def test_export_out_unwritable(capsys, store_with_data, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # Root ignores permission bits, so the unwritable folder is simulated.
    monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == locked else real_access(path, mode))
    code, out, err = _run(capsys, ["export", "coco", "--out", str(locked / "out"), "--db", str(store_with_data)])
    _assert_clear(code, out, err, names=str(locked / "out"), says="permission denied")
    assert not (locked / "out").exists()


@pytest.mark.parametrize("command", [["ingest", "coco"], ["ingest", "table"], ["ingest", "features"]])
def test_input_naming_a_folder(capsys, command, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    argv = [*command, str(folder), "--db", "new.duckdb"] + (["--images", str(folder)] if command[1] != "features"
                                                           else [])
    code, out, err = _run(capsys, argv)
    _assert_clear(code, out, err, names=str(folder), says="is a folder, not a file")
    assert not Path("new.duckdb").exists()


@pytest.mark.parametrize("command", [["ingest", "coco"], ["ingest", "table"], ["ingest", "features"]])
def test_input_missing(capsys, command, tmp_path):
    argv = [*command, str(tmp_path / "nope.json"), "--db", "new.duckdb"] + (
        ["--images", str(tmp_path)] if command[1] != "features" else [])
    code, out, err = _run(capsys, argv)
    _assert_clear(code, out, err, names="nope.json", says="does not exist")
    assert not Path("new.duckdb").exists()


def test_images_folder_missing_or_a_file(capsys, tiny_coco):
    code, out, err = _run(capsys, ["ingest", "coco", str(tiny_coco), "--images", "nope", "--db", "new.duckdb"])
    _assert_clear(code, out, err, names="nope", says="the images folder does not exist")
    code, out, err = _run(capsys, ["ingest", "coco", str(tiny_coco), "--images", str(tiny_coco), "--db", "new.duckdb"])
    _assert_clear(code, out, err, names=str(tiny_coco), says="is a file, not a folder")
    assert not Path("new.duckdb").exists()


def test_input_permission_denied(capsys, tiny_coco, monkeypatch):
    import labelfix.internal.paths as paths

    real_open = open

    def denied(path, *args, **kwargs):
        if Path(path) == tiny_coco:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    # Root can read a chmod 000 file, so the denial is simulated where labelfix first opens the file.
    monkeypatch.setattr(paths, "open", denied, raising=False)
    code, out, err = _run(capsys, ["ingest", "coco", str(tiny_coco), "--images", str(tiny_coco.parent / "images"),
                                   "--db", "new.duckdb"])
    _assert_clear(code, out, err, names=str(tiny_coco), says="cannot read the COCO file: permission denied")
    assert not Path("new.duckdb").exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_input_permission_denied_for_real(capsys, tiny_coco):
    tiny_coco.chmod(0)
    try:
        code, out, err = _run(capsys, ["ingest", "coco", str(tiny_coco), "--images", str(tiny_coco.parent / "images"),
                                       "--db", "new.duckdb"])
    finally:
        tiny_coco.chmod(0o644)
    _assert_clear(code, out, err, names=str(tiny_coco), says="permission denied")


def test_an_unexpected_os_error_on_a_user_path_is_one_message(capsys, tiny_coco, monkeypatch):
    import labelfix.ingest

    def fail(*args, **kwargs):
        raise IsADirectoryError(21, "Is a directory", "images/odd.png")

    monkeypatch.setattr(labelfix.ingest, "ingest_coco", fail)
    code, out, err = _run(capsys, ["ingest", "coco", str(tiny_coco), "--images", str(tiny_coco.parent / "images"),
                                   "--db", "new.duckdb"])
    _assert_clear(code, out, err, names="images/odd.png", says="is a directory")
    assert "name a file, not a folder" in err
    assert not Path("new.duckdb").exists()  # the store the failed command created is gone


# -- Python warnings become labelfix lines ---------------------------------------------------------

def test_python_warnings_are_one_labelfix_line(capsys, store_with_data, monkeypatch):
    import labelfix.store.labels

    real = labelfix.store.labels.label_counts

    def noisy(store):
        warnings.warn("something [looks] odd\n  in two lines", UserWarning, stacklevel=1)
        return real(store)

    monkeypatch.setattr(labelfix.store.labels, "label_counts", noisy)
    before = warnings.showwarning
    code, out, err = _run(capsys, ["status", "--db", str(store_with_data)])
    assert code == 0, err
    assert err == "warning: something [looks] odd in two lines\n"
    assert warnings.showwarning is before  # the handler is only installed while a command runs


# -- the real console script: exit code and output as a user sees them -----------------------------

def _console_script() -> list[str]:
    script = Path(sys.executable).with_name("labelfix")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from labelfix.cli.main import entry_point; entry_point()"]


@pytest.mark.parametrize("argv,code,expected", [
    (["ingset"], 2, "No such command 'ingset'"),
    (["ingest", "coco"], 2, "Missing argument"),
    (["train", "--epochs", "abc"], 2, "Invalid value for '--epochs'"),
    ([], 2, "Usage: labelfix"),
    (["--version"], 0, __version__),
    (["--db", "s.duckdb", "status"], 2, "no labelfix store here"),
    (["ingest", "coco", "."], 2, "is a folder, not a file"),
])
def test_console_script(tmp_path, argv, code, expected):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LABELFIX_DB": str(tmp_path / "unused.duckdb"),
           "COLUMNS": "200"}
    completed = subprocess.run([*_console_script(), *argv], cwd=tmp_path, env=env, capture_output=True, text=True,
                               timeout=300)
    output = completed.stdout + completed.stderr
    assert completed.returncode == code, output
    assert expected in output
    assert "Traceback" not in output
    assert not list(tmp_path.glob("*.duckdb*"))


def test_ingest_coco_without_images_folder_is_refused_unless_files_are_not_checked(tmp_path, capsys) -> None:
    """Without --images no file can be checked: refused (exit 2, the fix) instead of failing later at embed."""
    from labelfix.cli.main import main

    annotations = tmp_path / "ann.json"
    annotations.write_text('{"images": [{"id": 1, "file_name": "a.png", "width": 4, "height": 4}], '
                           '"categories": [{"id": 1, "name": "cat"}], '
                           '"annotations": [{"id": 1, "image_id": 1, "category_id": 1}]}')
    db = tmp_path / "s.duckdb"
    assert main(["ingest", "coco", str(annotations), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "needs --images" in err and "fix:" in err and "Traceback" not in err
    assert not db.exists()
    assert main(["ingest", "coco", str(annotations), "--db", str(db), "--check-images", "none"]) == 0


@pytest.mark.parametrize("address", ["999.1.1.1", "not an address"])
def test_review_refuses_an_address_it_cannot_listen_on(tmp_path, capsys, address) -> None:
    from labelfix.cli.main import main

    db = tmp_path / "s.duckdb"
    assert main(["init", "--db", str(db)]) == 0
    assert main(["review", "--address", address, "--port", "8611", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "is not an address this machine can listen on" in err and "fix:" in err and "Traceback" not in err


def test_review_refuses_a_port_in_use(tmp_path, capsys) -> None:
    import socket

    from labelfix.cli.main import main

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        db = tmp_path / "s.duckdb"
        assert main(["init", "--db", str(db)]) == 0
        assert main(["review", "--port", str(port), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "the port is in use" in err and "another --port" in err


# -- command-line slips of the fresh-user report (item 14) ------------------------------------------

def test_every_command_group_takes_db_before_its_command():
    for path, group in GROUPS:
        assert any(param.name == "db" for param in group.params), " ".join(path) or "labelfix"


def test_db_after_the_group_name(capsys, tiny_coco, tmp_path):
    images = str(tiny_coco.parent / "images")
    code, out, err = _run(capsys, ["ingest", "--db", "g.duckdb", "coco", str(tiny_coco), "--images", images])
    assert code == 0, err
    code, out, err = _run(capsys, ["export", "--db", "g.duckdb", "coco", "--out", "exp"])
    assert code == 0, err
    assert Path("exp/labels.json").is_file() and not Path("labelfix.duckdb").exists()
    code, out, err = _run(capsys, ["reviewers", "--db", "g.duckdb", "list"])
    assert code == 0, err
    code, out, err = _run(capsys, ["fiftyone", "--db", "g.duckdb", "launch"])
    _assert_usage_error(code, out, err)
    assert "`labelfix fiftyone launch` does not use a store" in err
    code, out, err = _run(capsys, ["ingest", "--db", "g.duckdb", "coco", str(tiny_coco), "--images", images,
                                   "--db", "h.duckdb"])
    assert code == 2 and "--db given twice" in err and not Path("h.duckdb").exists()


@pytest.mark.parametrize("argv", [["--db", "a.duckdb", "--db", "b.duckdb", "status"],
                                  ["--db=a.duckdb", "status", "--db=b.duckdb"],
                                  ["status", "--db", "a.duckdb", "--db", "b.duckdb"]])
def test_db_given_twice_is_refused(capsys, argv):
    code, out, err = _run(capsys, argv)
    assert code == 2 and "Traceback" not in out + err
    assert "--db given twice (a.duckdb, b.duckdb)" in err and "fix: give --db once" in err
    assert not list(Path().glob("*.duckdb"))


@pytest.mark.parametrize("value", ["abc", "-5", "nan", "inf"])
def test_a_bad_lock_timeout_is_one_message(capsys, monkeypatch, value, tiny_coco):
    monkeypatch.setenv("LABELFIX_LOCK_TIMEOUT", value)
    code, out, err = _run(capsys, ["init", "--db", "new.duckdb"])
    assert code == 2 and "Traceback" not in out + err
    assert f"$LABELFIX_LOCK_TIMEOUT is {value!r}: it must be a number of seconds, 0 or more" in err
    assert "fix:" in err and not Path("new.duckdb").exists()


@pytest.mark.parametrize("value", ["0", "2.5", " 7 ", ""])
def test_a_good_lock_timeout_is_used(capsys, monkeypatch, value):
    from labelfix.store.database import lock_timeout_default

    monkeypatch.setenv("LABELFIX_LOCK_TIMEOUT", value)
    assert lock_timeout_default() == (float(value) if value.strip() else 10.0)
    assert _run(capsys, ["init", "--db", "new.duckdb"])[0] == 0


def test_a_blank_store_path_is_one_message(capsys, monkeypatch):
    monkeypatch.setenv("LABELFIX_DB", "  ")
    code, out, err = _run(capsys, ["status"])
    assert code == 2 and "Traceback" not in out + err
    assert "$LABELFIX_DB is set to white space only ('  ')" in err and "unset LABELFIX_DB" in err
    monkeypatch.delenv("LABELFIX_DB")
    code, out, err = _run(capsys, ["init", "--db", "  "])
    assert code == 2 and "the store path given is empty ('  ')" in err
    assert not list(Path().iterdir())


def test_option_errors_name_the_option_not_the_field(capsys, store_with_data):
    code, out, err = _run(capsys, ["suggest", "--target-precision", "0", "--db", str(store_with_data)])
    assert code == 2 and "--target-precision: must be more than 0 (given 0.0)" in err
    assert "target_precision" not in err
    code, out, err = _run(capsys, ["suggest", "--target-precision", "nan", "--db", str(store_with_data)])
    assert code == 2 and "Invalid value for '--target-precision': nan is not a number" in err
    code, out, err = _run(capsys, ["suggest", "--val-hide-fraction", "1", "--db", str(store_with_data)])
    assert code == 2 and "--val-hide-fraction: must be less than 1" in err


def test_a_bad_config_file_is_one_line_per_key(capsys, store_with_data):
    Path("train.toml").write_text('lr = "abc"\nepochs = 0\nlrr = 3\n')
    code, out, err = _run(capsys, ["train", "--config", "train.toml", "--db", str(store_with_data)])
    assert code == 2 and "Traceback" not in out + err
    assert "pydantic" not in err and "http" not in err
    assert "    epochs: must be at least 1 (given 0)\n" in err
    assert "    lr: input should be a valid number" in err
    assert "    lrr: not a setting (did you mean 'lr'?)\n" in err
    assert err.startswith("error: train.toml: invalid settings:")


def test_demo_data_prints_a_summary_for_a_person(capsys):
    code, out, err = _run(capsys, ["demo-data", "--out", "demo", "--n-train", "6", "--n-val", "2", "--n-test", "2"])
    assert code == 0, err
    assert "DemoDataset(" not in out and "PosixPath" not in out
    assert out.startswith("wrote the demo dataset to demo: 6 train, 2 val, 2 test images")
    assert "next: labelfix ingest coco demo/instances_observed.json --images demo/images" in out


@pytest.mark.parametrize("argv", [["review", "--reviewer", "a/b"], ["fiftyone", "pull", "--reviewer", "fiftyone:a/b"]])
def test_reviewer_names_on_the_command_line_follow_the_one_rule(capsys, argv):
    code, out, err = _run(capsys, argv + ["--db", "none.duckdb"])
    assert code == 2 and "'a/b' is not a reviewer name we accept" in err
    assert not Path("none.duckdb").exists()


@pytest.mark.parametrize("path", [path for path, _ in GROUPS], ids=lambda p: " ".join(p) or "labelfix")
def test_a_group_db_without_its_value_is_a_usage_error(capsys, path):
    code, out, err = _run(capsys, path + ["--db"])
    _assert_usage_error(code, out, err)
    assert "Option '--db' requires an argument" in err
