"""`labelfix reviewers ...` and the team-mode checks of `labelfix review` (issue 15), without starting a server."""

from __future__ import annotations

import io
import sys

import pytest
from review_helpers import make_review_store

from labelfix.cli.main import main
from labelfix.review.auth import list_reviewers, verify_password
from labelfix.store import open_store


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.delenv("LABELFIX_DB", raising=False)
    monkeypatch.delenv("LABELFIX_REVIEWER", raising=False)
    return make_review_store(tmp_path)


def run(capsys, monkeypatch, argv, stdin: str | None = None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def accounts(db):
    with open_store(db, create=False) as store:
        return {row.name: row for row in list_reviewers(store)}


def test_add_list_remove(capsys, monkeypatch, db):
    code, out, err = run(capsys, monkeypatch, ["reviewers", "add", "lee", "--role", "lead", "--password-stdin",
                                               "--db", str(db)], stdin="lee-password-1\n")
    assert code == 0, err
    assert "reviewer 'lee' added as lead" in out and "lee-password-1" not in out + err
    assert verify_password("lee-password-1", accounts(db)["lee"].password_hash)
    code, out, err = run(capsys, monkeypatch, ["--db", str(db), "reviewers", "add", "ana", "--generate"])
    assert code == 0, err
    generated = out.strip().splitlines()[-1]
    assert len(generated) == 24 and "shown once" in err
    assert accounts(db)["ana"].role == "annotator" and verify_password(generated, accounts(db)["ana"].password_hash)
    code, out, err = run(capsys, monkeypatch, ["reviewers", "list", "--db", str(db)])
    assert code == 0 and "ana" in out and "annotator" in out and "lee" in out and "lead" in out
    assert "scrypt" not in out and generated not in out
    code, out, err = run(capsys, monkeypatch, ["reviewers", "password", "ana", "--password-stdin", "--db", str(db)],
                         stdin="another-password\n")
    assert code == 0 and verify_password("another-password", accounts(db)["ana"].password_hash)
    code, out, err = run(capsys, monkeypatch, ["reviewers", "remove", "ana", "--db", str(db)])
    assert code == 0 and set(accounts(db)) == {"lee"}


@pytest.mark.parametrize("argv,stdin,expected", [
    (["add", "bad/name", "--password-stdin"], "long-enough-pw\n", "not a reviewer name"),
    (["add", "bob", "--password-stdin"], "short\n", "too short"),
    (["add", "bob", "--password-stdin", "--generate"], "", "exclude each other"),
    (["add", "bob"], "", "no terminal to ask for the password"),
    (["add", "bob", "--role", "admin"], "", "Invalid value for '--role'"),
    (["remove", "nobody"], None, "no reviewer 'nobody'"),
    (["password", "nobody", "--password-stdin"], "long-enough-pw\n", "no reviewer 'nobody'"),
])
def test_bad_requests_exit_2(capsys, monkeypatch, db, argv, stdin, expected):
    code, out, err = run(capsys, monkeypatch, ["reviewers", *argv, "--db", str(db)], stdin=stdin)
    assert code == 2, out + err
    assert expected in err and "Traceback" not in out + err
    assert accounts(db) == {}


def test_a_duplicate_name_exits_2(capsys, monkeypatch, db):
    assert run(capsys, monkeypatch, ["reviewers", "add", "ana", "--generate", "--db", str(db)])[0] == 0
    code, out, err = run(capsys, monkeypatch, ["reviewers", "add", "ana", "--generate", "--db", str(db)])
    assert code == 2 and "exists already" in err


@pytest.mark.parametrize("again", ["Ana", "ANA", " ana "])
def test_reviewer_names_are_one_reviewer_whatever_their_case(capsys, monkeypatch, db, again):
    """ana / Ana / ANA are one account, shown as created; sign-in and account commands find it by any case."""
    from labelfix.review.auth import sign_in

    assert run(capsys, monkeypatch, ["reviewers", "add", "ana", "--password-stdin", "--db", str(db)],
               stdin="ana-password-1\n")[0] == 0
    code, out, err = run(capsys, monkeypatch, ["reviewers", "add", again, "--generate", "--db", str(db)])
    assert code == 2 and "exists already" in err and "Traceback" not in err
    assert again.strip() == "ana" or "as 'ana' (names are not case-sensitive)" in err
    assert set(accounts(db)) == {"ana"}
    with open_store(db) as store:
        reviewer, _ = sign_in(store, name=again, password="ana-password-1")
    assert reviewer.name == "ana"
    assert run(capsys, monkeypatch, ["reviewers", "remove", again.strip().upper(), "--db", str(db)])[0] == 0
    assert accounts(db) == {}


def test_the_review_service_treats_names_case_insensitively(db):
    """In the app (no accounts), the first-written name is kept: Ana's lease is ana's, her decisions are one."""
    from labelfix.review.service import ReviewService

    with open_store(db) as store:
        service = ReviewService(store)
        assert service.known_reviewer(name=" Bo ") == "Bo"  # a new name, as typed
        first = service.next_items(reviewer="Ana", n=1)[0]
        assert service.known_reviewer(name="ana") == "Ana"  # known from her lease
        again = service.next_items(reviewer=service.known_reviewer(name="ana"), n=1)[0]
        assert again.suggestion_id == first.suggestion_id and again.lease_reviewer == "Ana"
        service.decide(suggestion_id=first.suggestion_id, decision="accept", reviewer="Ana")
        service.release(reviewer="Ana")
        assert service.known_reviewer(name="ANA") == "Ana"  # known from her decision
        assert store.fetchall("SELECT DISTINCT reviewer FROM review_events") == [("Ana",)]


class FakeServer:
    """Stands in for the streamlit subprocess: records the command line, exits at once."""

    commands: list[list[str]] = []
    envs: list[dict] = []

    def __init__(self, command, env):
        FakeServer.commands.append(command)
        FakeServer.envs.append(env)

    def wait(self):
        return 0

    def send_signal(self, signum):
        pass


@pytest.fixture
def fake_server(monkeypatch):
    import labelfix.cli.review_commands as review_commands

    FakeServer.commands, FakeServer.envs = [], []
    monkeypatch.setattr(review_commands.subprocess, "Popen", FakeServer)
    return FakeServer


@pytest.mark.parametrize("argv,why", [
    (["--address", "0.0.0.0"], "--address 0.0.0.0 lets other machines reach the review app"),
    (["--address", "192.0.2.7"], "--address 192.0.2.7 lets other machines reach the review app"),
    (["--address", "::"], "--address :: lets other machines reach the review app"),
    (["--team"], "--team asks reviewers to sign in"),
])
def test_team_mode_without_reviewers_refuses_to_start(capsys, monkeypatch, db, fake_server, argv, why):
    code, out, err = run(capsys, monkeypatch, ["review", "--db", str(db), *argv])
    assert code == 2, out + err
    assert why in err and "this store has no reviewers to sign in" in err
    assert "fix: add them first: `labelfix reviewers add NAME --role lead" in err and "127.0.0.1" in err
    assert "Traceback" not in out + err
    assert fake_server.commands == []  # no server started
    assert not (db.parent / "exports").exists()


def test_team_mode_with_reviewers_passes_the_mode_to_the_app(capsys, monkeypatch, db, fake_server, tmp_path):
    run(capsys, monkeypatch, ["reviewers", "add", "lee", "--role", "lead", "--generate", "--db", str(db)])
    monkeypatch.setenv("LABELFIX_REVIEWER", "someone")
    code, out, err = run(capsys, monkeypatch, ["review", "--db", str(db), "--address", "0.0.0.0",
                                               "--export-dir", str(tmp_path / "out"), "--session-hours", "8"])
    assert code == 0, err
    command = fake_server.commands[0]
    script_args = command[command.index("--") + 1:]
    assert script_args == ["--db", str(db), "--export-dir", str(tmp_path / "out"), "--team", "--session-hours", "8.0",
                           "--idle-minutes", "120.0"]
    assert command[command.index("--server.address") + 1] == "0.0.0.0"
    assert command[command.index("--client.showErrorDetails") + 1] == "type"
    assert "LABELFIX_REVIEWER" not in fake_server.envs[0]  # no default name in team mode
    assert "team mode: 1 reviewer(s) can sign in" in out and "reverse proxy" in out
    assert (tmp_path / "out").is_dir()
    # --reviewer means a typed default name: not in team mode
    code, out, err = run(capsys, monkeypatch, ["review", "--db", str(db), "--team", "--reviewer", "x"])
    assert code == 2 and "in team mode reviewers sign in" in err


def test_loopback_stays_as_before(capsys, monkeypatch, db, fake_server):
    code, out, err = run(capsys, monkeypatch, ["review", "--db", str(db), "--reviewer", "me"])
    assert code == 0, err
    command = fake_server.commands[0]
    assert "--team" not in command and "--client.showErrorDetails" not in command
    assert command[command.index("--export-dir") + 1] == str(db.parent / "exports")
    assert fake_server.envs[0]["LABELFIX_REVIEWER"] == "me"
    assert (db.parent / "exports").is_dir()


def test_an_export_dir_that_is_a_file_exits_2(capsys, monkeypatch, db, fake_server, tmp_path):
    (tmp_path / "afile").write_text("x")
    code, out, err = run(capsys, monkeypatch, ["review", "--db", str(db), "--export-dir", str(tmp_path / "afile")])
    assert code == 2 and "export folder" in err and "--export-dir" in err
    assert fake_server.commands == []


@pytest.mark.parametrize("argv,address,note", [
    ([], "127.0.0.1", "only this machine can open it; to share it safely, each viewer runs `ssh -N -L 5151:127.0.0.1:5151"),
    (["--address", "0.0.0.0", "--port", "6000"], "0.0.0.0", "warning: the FiftyOne App has no sign-in: anyone who "
                                                             "reaches 0.0.0.0:6000"),
])
def test_fiftyone_launch_binds_to_loopback_unless_told(capsys, monkeypatch, argv, address, note):
    from labelfix.review import fiftyone_app

    launched = []
    monkeypatch.setattr(fiftyone_app, "launch", lambda name, **kwargs: launched.append((name, kwargs)))
    code, out, err = run(capsys, monkeypatch, ["fiftyone", "launch", *argv])
    assert code == 0, err
    assert launched == [("labelfix", {"port": int(argv[-1]) if argv else 5151, "address": address})]
    assert note in out
