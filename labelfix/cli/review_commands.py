"""`labelfix review` (the Streamlit app) and `labelfix fiftyone push|pull` (the FiftyOne round trip)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Optional

import typer

from labelfix.cli.common import DbOption, console, group_options
from labelfix.errors import LabelfixError
from labelfix.store import open_store
from labelfix.store.database import DB_ENV_VAR, resolve_db_path
from labelfix.store.suggestions import count_suggestions

fiftyone_app = typer.Typer(no_args_is_help=True, help="Review suggestions in the FiftyOne App and pull decisions back.")
fiftyone_app.callback()(group_options)  # `labelfix fiftyone --db X CMD` works too

DatasetOption = Annotated[str, typer.Option("--name", help="FiftyOne dataset name.")]
FIFTYONE_ADDRESS_HELP = ("Address of the FiftyOne App: 127.0.0.1 (this machine only; share it with an ssh "
                         "tunnel) or e.g. 0.0.0.0 (everyone who can reach the port; the App has no sign-in).")


APP_ENV_VAR = "LABELFIX_APP"


def app_script() -> Path:
    """The Streamlit script ``review_app.py`` of the installed package (or ``$LABELFIX_APP``).

    The app ships inside the package (``labelfix/review/app/``), so an installed ``labelfix`` serves it
    from any folder; ``$LABELFIX_APP`` points at another script (e.g. a customised copy).
    """
    override = os.environ.get(APP_ENV_VAR)
    # A package installed from a wheel or a checkout lives on the file system, so the resource is a real file.
    path = Path(override) if override else Path(str(resources.files("labelfix.review.app") / "review_app.py"))
    if not path.is_file():
        fix = (f"point ${APP_ENV_VAR} at an existing review_app.py" if override
               else f"reinstall labelfix (pip install .), or set ${APP_ENV_VAR} to the app script")
        raise LabelfixError(f"the review app script {path} is missing", fix=fix)
    return path


def streamlit_command(*, db: Path, port: int, address: str, team: bool = False, export_dir: Path | None = None,
                      session_hours: float = 12.0, idle_minutes: float = 120.0) -> list[str]:
    """The command line that serves the review app on ``address:port`` for the store ``db``.

    What the app must know about its server (team mode, the export folder, session limits) goes to the
    script as its own arguments after ``--``. In team mode the browser gets no tracebacks (exception types
    only) and Streamlit's cross-site protections are on whatever a config file says.
    """
    command = [sys.executable, "-m", "streamlit", "run", str(app_script()),
               "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--client.toolbarMode", "viewer", "--server.fileWatcherType", "none",
               "--server.port", str(port), "--server.address", address]
    if team:
        command += ["--client.showErrorDetails", "type", "--server.enableXsrfProtection", "true",
                    "--server.enableCORS", "true"]
    command += ["--", "--db", str(db)]
    if export_dir is not None:
        command += ["--export-dir", str(export_dir)]
    if team:
        command += ["--team", "--session-hours", str(session_hours), "--idle-minutes", str(idle_minutes)]
    return command


def review_command(
    db: DbOption = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port of the review app.")] = 8501,
    address: Annotated[str, typer.Option(
        "--address", help="Address to listen on. Any address other machines can reach (e.g. 0.0.0.0 for a "
                          "team) turns on team mode: reviewers sign in (see `labelfix reviewers`).")]
    = "127.0.0.1",
    reviewer: Annotated[Optional[str], typer.Option(
        "--reviewer", help="Name offered in each browser's name prompt (loopback only; in team mode reviewers "
                           "sign in).")]
    = None,
    team: Annotated[bool, typer.Option(
        "--team", help="Team mode on a loopback address too (e.g. behind a reverse proxy on this machine).")]
    = False,
    export_dir: Annotated[Optional[Path], typer.Option(
        "--export-dir", help="The one folder the app exports into (default: exports/ beside the store).",
        show_default=False)] = None,
    session_hours: Annotated[float, typer.Option(
        "--session-hours", min=0.1, max=720.0, help="Team mode: a sign-in lasts at most this long.")] = 12.0,
    idle_minutes: Annotated[float, typer.Option(
        "--idle-minutes", min=1.0, max=43200.0, help="Team mode: a session idle this long ends.")] = 120.0,
) -> None:
    """Open the review app: decide on suggestions class by class, tail classes first (keys A/X/S/U)."""
    from labelfix.review.auth import count_enabled_reviewers, is_loopback
    from labelfix.review.export_folder import default_export_dir, prepare_export_dir, store_folder_name

    check_listen_address(address=address, port=port, bind=False)  # a typo fails before anything else
    if reviewer is not None:
        from labelfix.review.auth import check_name

        reviewer = check_name(reviewer)  # the app's name rule, so the name it offers is one it accepts
    path = resolve_db_path(db).resolve()
    shared = not is_loopback(address)
    team = team or shared
    if team and reviewer:
        raise LabelfixError("--reviewer names the reviewer of a loopback review app; in team mode reviewers sign "
                            "in and their decisions carry that name", fix="drop --reviewer")
    with open_store(path, create=False) as store:  # fails clearly on a missing store; migrates an old one
        pending = count_suggestions(store)
        n_reviewers = count_enabled_reviewers(store)
    if team and not n_reviewers:
        why = (f"--address {address} lets other machines reach the review app" if shared
               else "--team asks reviewers to sign in")
        raise LabelfixError(
            f"{why}, and this store has no reviewers to sign in", file=path,
            fix=f"add them first: `labelfix reviewers add NAME --role lead --db {path}` (and annotators with "
                f"--role annotator), or serve on 127.0.0.1 (the default) for yourself only")
    check_listen_address(address=address, port=port)
    folder = prepare_export_dir(export_dir if export_dir is not None else default_export_dir(path))
    if not pending:
        console.print("[yellow]this store has no suggestions yet: run `labelfix suggest` (or `labelfix demo`) first[/]")
    env = {**os.environ, DB_ENV_VAR: str(path)}
    if team:
        env.pop("LABELFIX_REVIEWER", None)  # never a default name for decisions in team mode
    if reviewer:
        env["LABELFIX_REVIEWER"] = reviewer
    console.print(f"review app for {path} on http://{address}:{port}  (Ctrl+C stops it)", highlight=False)
    if team:
        exports = folder / store_folder_name(path)
        console.print(f"team mode: {n_reviewers} reviewer(s) can sign in; exports go to {exports}. The app has no "
                      f"TLS of its own: put it behind a reverse proxy with TLS (README, Security).", highlight=False)
    command = streamlit_command(db=path, port=port, address=address, team=team, export_dir=folder,
                                session_hours=session_hours, idle_minutes=idle_minutes)
    process = subprocess.Popen(command, env=env)
    # Stop with the server: SIGTERM is passed on, and we wait so the store's lock is free when we exit.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: process.send_signal(signum))
    try:
        while True:
            try:
                code = process.wait()
                break
            except KeyboardInterrupt:
                process.send_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if code:
        raise typer.Exit(code)


def check_listen_address(*, address: str, port: int, bind: bool = True) -> None:
    """Refuse, before anything starts, an address this machine cannot listen on or a port in use.

    Raises
    ------
    LabelfixError
        ``address`` does not resolve, or (with ``bind``) ``address:port`` cannot be bound here.
    """
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise LabelfixError(f"--address {address!r} is not an address this machine can listen on ({error})",
                            fix="use 127.0.0.1 (this machine only), 0.0.0.0 (every interface) or one of this "
                                "machine's addresses (`hostname -I`)") from error
    if not bind:
        return
    family, _, _, _, sockaddr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a socket in TIME_WAIT is no conflict
        try:
            probe.bind(sockaddr)
        except OSError as error:
            in_use = error.errno == errno.EADDRINUSE
            raise LabelfixError(
                f"cannot listen on {address}:{port}: " + ("the port is in use" if in_use else str(error.strerror)),
                fix=("pass another --port, or stop the server that uses this one" if in_use else
                     "use 127.0.0.1, 0.0.0.0 or one of this machine's addresses (`hostname -I`)")) from error


def fiftyone_share_note(*, address: str, port: int) -> str:
    """What `labelfix fiftyone` prints about who can reach the FiftyOne App it starts (it has no sign-in)."""
    from labelfix.review.auth import is_loopback

    if is_loopback(address):
        return (f"only this machine can open it; to share it safely, each viewer runs "
                f"`ssh -N -L {port}:127.0.0.1:{port} USER@THIS_HOST` and opens http://localhost:{port}")
    return (f"warning: the FiftyOne App has no sign-in: anyone who reaches {address}:{port} can see the images and "
            f"tag suggestions; prefer the default --address 127.0.0.1 and an SSH tunnel (ssh -L)")


@fiftyone_app.command("push")
def fiftyone_push_command(
    name: DatasetOption = "labelfix",
    db: DbOption = None,
    run: Annotated[Optional[int], typer.Option("--run", min=1, help="Suggestion run (default: the latest).")] = None,
    include_decided: Annotated[bool, typer.Option("--include-decided",
                                                  help="Also push accepted/rejected suggestions.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a dataset of that name.")] = False,
    launch: Annotated[bool, typer.Option("--launch", help="Serve the FiftyOne App afterwards.")] = False,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port of the FiftyOne App.")] = 5151,
    address: Annotated[str, typer.Option("--address", help=FIFTYONE_ADDRESS_HELP)] = "127.0.0.1",
) -> None:
    """Create a FiftyOne dataset: images, current labels, source boxes, add / remove suggestions (tag them)."""
    from labelfix.review import fiftyone_sync

    with open_store(db, create=False) as store:
        dataset = fiftyone_sync.push(store, dataset_name=name, run_id=run, include_decided=include_decided,
                                     overwrite=overwrite)
    info = dataset.info["labelfix"]
    console.print(f"dataset {name!r}: {info['n_samples']} images, {info['n_labels']} labels, "
                  f"{info['n_boxes']} source boxes, {info['n_add']} add / {info['n_remove']} remove suggestions; "
                  f"saved views: {', '.join(info['views']) or 'none'}")
    console.print("suggest_add (green): tag 'accept' to ADD the label, 'reject' if absent; suggest_remove (red): "
                  "'accept' REMOVES the label, 'reject' keeps it;", highlight=False)
    console.print(f"then: labelfix fiftyone pull --name {name} --reviewer YOU", highlight=False)
    if launch:
        _serve_fiftyone(name, port=port, address=address)


@fiftyone_app.command("pull")
def fiftyone_pull_command(
    reviewer: Annotated[str, typer.Option("--reviewer", help="Who tagged; recorded as fiftyone:<name>.")],
    name: DatasetOption = "labelfix",
    db: DbOption = None,
) -> None:
    """Record the accept / reject tags of the dataset's suggestions as review events (each once)."""
    from labelfix.review import fiftyone_sync
    from labelfix.review.auth import check_name

    # The one reviewer-name rule (as the app and `reviewers add`); "fiftyone:" is added by the pull.
    bare = reviewer.strip()
    reviewer = check_name(bare[len(fiftyone_sync.REVIEWER_PREFIX):] if bare.startswith(
        fiftyone_sync.REVIEWER_PREFIX) else bare)
    with open_store(db, create=False) as store:  # waits while a review server is between two requests
        summary = fiftyone_sync.pull(store, dataset_name=name, reviewer=reviewer)
    console.print(f"{summary.reviewer}: {len(summary.recorded)} decisions recorded, "
                  f"{summary.already} already in the store, {len(summary.conflicts)} conflicts")
    for suggestion_id, why in sorted(summary.conflicts.items()):
        console.print(f"  suggestion {suggestion_id}: {why}")


@fiftyone_app.command("launch")
def fiftyone_launch_command(
    name: DatasetOption = "labelfix",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port of the FiftyOne App.")] = 5151,
    address: Annotated[str, typer.Option("--address", help=FIFTYONE_ADDRESS_HELP)] = "127.0.0.1",
) -> None:
    """Serve the FiftyOne App for a pushed dataset (on this machine only, unless --address says otherwise)."""
    _serve_fiftyone(name, port=port, address=address)


def _serve_fiftyone(name: str, *, port: int, address: str) -> None:
    """Serve the App until Ctrl+C, SIGTERM or SIGHUP, then stop the App server it started."""
    from labelfix.review import fiftyone_app

    console.print(f"FiftyOne App on http://{address}:{port}  (Ctrl+C stops it)", highlight=False)
    console.print(fiftyone_share_note(address=address, port=port), highlight=False, markup=False)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds session.wait(), so the App server is stopped on the way out

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        fiftyone_app.launch(name, port=port, address=address)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def register(app: typer.Typer) -> None:
    """Add `review` and the `fiftyone` sub-app to the labelfix CLI."""
    app.command("review")(review_command)
    app.add_typer(fiftyone_app, name="fiftyone")
