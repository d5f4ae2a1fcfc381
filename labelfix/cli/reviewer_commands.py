"""``labelfix reviewers add|remove|list|password``: the accounts that sign in to a team review server."""

from __future__ import annotations

import enum
import sys
from typing import Annotated

import typer

from labelfix.cli.common import DbOption, console, err_console, group_options
from labelfix.errors import LabelfixError
from labelfix.store import open_store

reviewers_app = typer.Typer(no_args_is_help=True, help="Reviewer accounts for team mode (`labelfix review` "
                                                       "on a shared address signs them in).")
reviewers_app.callback()(group_options)  # `labelfix reviewers --db X CMD` works too


class Role(str, enum.Enum):
    annotator = "annotator"
    lead = "lead"


NameArgument = Annotated[str, typer.Argument(help="Reviewer name (letters, digits, '.', '_', '@', '-').",
                                             show_default=False)]
PasswordStdinOption = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from the first line of standard input (for scripts).")]
GenerateOption = Annotated[bool, typer.Option(
    "--generate", help="Generate a random password and print it once (hand it to the reviewer).")]


def _password(*, stdin: bool, generate: bool) -> tuple[str, bool]:
    """The new password and whether it was generated: from stdin, generated, or typed twice at a prompt.

    Never from a command-line argument, which would end up in the shell history and in `ps`.
    """
    from labelfix.review.auth import generate_token

    if stdin and generate:
        raise LabelfixError("--password-stdin and --generate exclude each other", fix="give one of them")
    if generate:
        return generate_token(), True
    if stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if not sys.stdin.isatty():
        raise LabelfixError("no terminal to ask for the password",
                            fix="pipe it in with --password-stdin, or use --generate")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True), False


@reviewers_app.command("add")
def add_command(
    name: NameArgument,
    role: Annotated[Role, typer.Option("--role", help="annotator: decides and undoes own decisions; lead: also "
                                                      "sees the team, reverts and exports.")] = Role.annotator,
    password_stdin: PasswordStdinOption = False,
    generate: GenerateOption = False,
    db: DbOption = None,
) -> None:
    """Add a reviewer; the password is asked at a prompt (or read from stdin, or generated) and stored hashed."""
    from labelfix.review.auth import add_reviewer, check_name

    name = check_name(name)  # before the prompt: a bad name should not cost the user a password
    password, generated = _password(stdin=password_stdin, generate=generate)
    with open_store(db, create=False) as store:
        reviewer = add_reviewer(store, name=name, role=role.value, password=password)
    console.print(f"reviewer {reviewer.name!r} added as {reviewer.role}", highlight=False)
    if generated:
        # Printed once, on its own line, so it can be copied; it is not stored anywhere in clear.
        err_console.print("password (shown once; hand it to the reviewer):", highlight=False)
        console.print(password, highlight=False, markup=False)


@reviewers_app.command("password")
def password_command(name: NameArgument, password_stdin: PasswordStdinOption = False,
                     generate: GenerateOption = False, db: DbOption = None) -> None:
    """Give a reviewer a new password (their sessions end)."""
    from labelfix.review.auth import set_password

    password, generated = _password(stdin=password_stdin, generate=generate)
    with open_store(db, create=False) as store:
        set_password(store, name=name, password=password)
    console.print(f"new password set for {name!r}; their sessions ended", highlight=False)
    if generated:
        err_console.print("password (shown once; hand it to the reviewer):", highlight=False)
        console.print(password, highlight=False, markup=False)


@reviewers_app.command("remove")
def remove_command(name: NameArgument, db: DbOption = None) -> None:
    """Remove a reviewer (their sessions end; decisions they made keep their name)."""
    from labelfix.review.auth import remove_reviewer

    with open_store(db, create=False) as store:
        remove_reviewer(store, name=name)
    console.print(f"reviewer {name!r} removed", highlight=False)


@reviewers_app.command("list")
def list_command(db: DbOption = None) -> None:
    """List reviewers: name, role, created, disabled, open sessions (never passwords)."""
    from rich.table import Table

    from labelfix.review.auth import list_reviewers

    with open_store(db, create=False) as store:
        rows = list_reviewers(store)
    if not rows:
        console.print("no reviewers: add one with `labelfix reviewers add NAME --role lead`", highlight=False)
        return
    table = Table("name", "role", "created (UTC)", "disabled", "open sessions")
    for row in rows:
        table.add_row(row.name, row.role, row.created_at.strftime("%Y-%m-%d %H:%M"), "yes" if row.disabled else "",
                      str(row.active_sessions))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the `reviewers` sub-app to the labelfix CLI."""
    app.add_typer(reviewers_app, name="reviewers")
