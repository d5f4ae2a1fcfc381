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

from labelfix.cli.common import DbOption, console
from labelfix.errors import LabelfixError
from labelfix.store import open_store
from labelfix.store.database import DB_ENV_VAR, resolve_db_path
from labelfix.store.suggestions import count_suggestions

fiftyone_app = typer.Typer(no_args_is_help=True, help="Review suggestions in the FiftyOne App and pull decisions back.")

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


def streamlit_command(*, db: Path, port: int, address: str) -> list[str]:
    """The command line that serves the review app on ``address:port`` for the store ``db``."""
    return [sys.executable, "-m", "streamlit", "run", str(app_script()),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "viewer",
            "--server.port", str(port), "--server.address", address, "--", "--db", str(db)]


def review_command(
    db: DbOption = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port of the review app.")] = 8501,
    address: Annotated[str, typer.Option("--address", help="Address to listen on (0.0.0.0 for a team).")]
    = "127.0.0.1",
    reviewer: Annotated[Optional[str], typer.Option("--reviewer", help="Default reviewer name in the app.")]
    = None,
) -> None:
    """Open the review app: decide on suggestions class by class, tail classes first (keys A/X/S/U)."""
    path = resolve_db_path(db).resolve()
    with open_store(path, create=False) as store:  # fails clearly on a missing store; migrates an old one
        pending = count_suggestions(store)
    if not pending:
        console.print("[yellow]this store has no suggestions yet: run `labelfix suggest` (or `labelfix demo`) first[/]")
    env = {**os.environ, DB_ENV_VAR: str(path)}
    if reviewer:
        env["LABELFIX_REVIEWER"] = reviewer
    console.print(f"review app for {path} on http://{address}:{port}  (Ctrl+C stops it)")
    process = subprocess.Popen(streamlit_command(db=path, port=port, address=address), env=env)
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
    if address in ("127.0.0.1", "localhost", "::1"):
        console.print(f"only this machine can open it; from another one, tunnel over ssh: "
                      f"ssh -N -L {port}:127.0.0.1:{port} YOU@THIS-HOST, then open http://localhost:{port}",
                      highlight=False)
    else:
        console.print(f"[yellow]listening on {address}: anyone who can reach port {port} sees and tags the "
                      f"dataset (the FiftyOne App has no sign-in); prefer the default 127.0.0.1 and an ssh "
                      f"tunnel[/]")

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
