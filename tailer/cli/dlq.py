"""``tailer dlq``: the dead-letter file's commands (the work is in tailer/run/dlq.py and tailer/ship/dlq.py)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from tailer.cli.common import EventTime, common_options, exit_if_stopped, grace_option, settings_from
from tailer.cli.exitcodes import EXIT_DEAD_LETTERED


@click.group()
def dlq() -> None:
    """Inspect, resend and purge the dead-letter file (records the platform rejected).

    \b
    Example:  tailer dlq list && tailer dlq resend
    The file is state_dir/dead-letter.jsonl; every command is safe while `tailer run` appends to it.
    """


@dlq.command("list")
@common_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document for scripts (payloads included).")
def list_letters(config_path: Path, log_format: str, log_level: str, as_json: bool) -> None:
    """One line per dead-lettered record: when, rule, oper_id, the platform's answer, origin.

    \b
    Example:  tailer dlq list --json | jq '.records[] | select(.status == 400) | .payload'
    """
    from tailer.run.dlq import dead_letter_file, render_list

    click.echo(render_list(dead_letter_file(settings_from(config_path, log_format, log_level)), as_json=as_json))


@dlq.command()
@common_options
@grace_option(10.0)
def resend(config_path: Path, log_format: str, log_level: str, grace: float) -> None:
    """Send every dead-lettered record again, as it was (same nonce and ts), through the same policy.

    \b
    Example:  tailer dlq resend -c /etc/oper-tailer/rules.yaml
    What is acknowledged leaves the file; what is rejected again stays, with its new answer (exit 3).
    Interrupted (even by SIGKILL), it loses nothing: run it again to send the rest.
    """
    from tailer.run.dlq import resend as do_resend

    settings = settings_from(config_path, log_format, log_level)
    summary = asyncio.run(do_resend(settings, grace=grace))
    for line in summary.lines_text():
        click.echo(line)
    exit_if_stopped(summary, "send the rest")
    if summary.dead_lettered:
        sys.exit(EXIT_DEAD_LETTERED)


@dlq.command()
@common_options
@click.option("--before", type=EventTime(), required=True, help="Remove records dead-lettered before this time.")
def purge(config_path: Path, log_format: str, log_level: str, before: float) -> None:
    """Remove the records dead-lettered before a time (ISO time or epoch seconds), for good.

    \b
    Example:  tailer dlq purge --before 2026-11-01
    """
    from tailer.run.dlq import dead_letter_file
    from tailer.ship.dlq import purge_before

    dlq_file = dead_letter_file(settings_from(config_path, log_format, log_level))
    removed, kept = purge_before(dlq_file, before)
    click.echo(f"purged {removed:,} record(s), {kept:,} kept in {dlq_file.path}")
