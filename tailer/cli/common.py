"""What every ``tailer`` command shares: -c/--config and logging options, clean errors, time arguments."""

from __future__ import annotations

import functools
import sys
from datetime import datetime
from pathlib import Path

import click

from tailer.cli.exitcodes import EXIT_ABORTED
from tailer.cli.logs import setup_logging
from tailer.config.settings import Settings, load_settings
from tailer.errors import TailerError


def fail_cleanly(fn):
    """Turn every error we raise on purpose into click's clean ``Error: ...`` line."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TailerError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:  # a file or directory the library did not expect to fail: still one line
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from exc

    return wrapper


def grace_option(default: float):
    """--grace, for the commands that drain in-flight records when stopped (run, replay, dlq resend)."""
    return click.option(
        "--grace",
        type=float,
        default=default,
        show_default=True,
        help="Seconds in-flight requests may take to finish on SIGTERM/SIGINT.",
    )


def common_options(fn):
    """-c/--config and logging options, shared by every command that reads rules.yaml."""
    fn = click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default="rules.yaml",
        envvar="TAILER_CONFIG",
        show_default=True,
        show_envvar=True,
        help="The rules file.",
    )(fn)
    fn = click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Log lines on stderr: human text or one JSON object per line.",
    )(fn)
    fn = click.option(
        "--log-level",
        type=click.Choice(["debug", "info", "warning", "error"]),
        default="info",
        show_default=True,
    )(fn)
    return fail_cleanly(fn)


def settings_from(config_path: Path, log_format: str, log_level: str) -> Settings:
    setup_logging(log_format, log_level)
    return load_settings(config_path)


class EventTime(click.ParamType):
    """An ISO date or date-time (naive means this machine's local time) or epoch seconds."""

    name = "TIME"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            self.fail(
                f"{value!r} is not an ISO time (2026-11-01, 2026-11-01T10:00:00+08:00) or epoch seconds",
                param,
                ctx,
            )


def exit_if_stopped(summary: object, rest: str) -> None:
    """A replay or resend a signal stopped: 130 after a second signal, else ``Error: interrupted`` (1);
    either way the same command continues where it stopped. ``rest``: what a rerun does."""
    if getattr(summary, "aborted", False):
        click.echo(f"Error: aborted: run the same command again to {rest}", err=True)
        sys.exit(EXIT_ABORTED)
    if getattr(summary, "interrupted", False):
        raise click.ClickException(f"interrupted: run the same command again to {rest}")
