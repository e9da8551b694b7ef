"""The ``tailer`` command: click commands that parse options and call the library.

Library errors (``TailerError``) become ``Error: ...`` and exit 1, never a traceback; usage errors exit 2.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click

from tailer import __version__
from tailer.cli.common import (
    EventTime,
    common_options,
    exit_if_stopped,
    fail_cleanly,
    grace_option,
    settings_from,
)
from tailer.cli.dlq import dlq
from tailer.cli.exitcodes import EXIT_DEAD_LETTERED
from tailer.cli.logs import setup_logging
from tailer.cli.rules import check, match, test_rules


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tailer")
def main() -> None:
    """Follow legacy application logs and report user operations to the OperReport API.

    \b
    Quick start (rules.yaml ships with url: embedded, an in-process receiver):
      tailer test                   # prove the rules with their own test cases
      tailer replay samples/logs    # backfill the sample logs
      tailer run                    # follow the logs live
    """


@main.command()
@common_options
@grace_option(5.0)
def run(config_path: Path, log_format: str, log_level: str, grace: float) -> None:
    """Follow the sources' files and send every operation, through rotations and restarts.

    \b
    Example:  tailer run -c /etc/oper-tailer/rules.yaml --log-format json
    SIGTERM/SIGINT stop cleanly (checkpoint written); SIGHUP reloads rules.yaml.
    """
    from tailer.run.live import run as run_live

    settings = settings_from(config_path, log_format, log_level)
    sys.exit(asyncio.run(run_live(settings, config_path=config_path, grace=grace)) or 0)


@main.command()
@common_options
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--since", type=EventTime(), help="Only operations at or after this event time.")
@click.option("--until", type=EventTime(), help="Only operations before this event time.")
@click.option(
    "--rate", type=click.FloatRange(min=0, min_open=True), help="Records per second (overrides rate_limit)."
)
@click.option(
    "--dry-run", is_flag=True, help="Print each payload as a JSON line; send nothing, write no state."
)
@click.option("--shard", metavar="K/N", help="Take a stable K-th of N shares of the files (1 <= K <= N).")
@click.option("--restart", is_flag=True, help="Forget this replay's saved progress and start over.")
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="At the end, write the counters here in the node-exporter textfile format (name it *.prom).",
)
@click.option(
    "--list",
    "list_only",
    is_flag=True,
    help="Print the order the files would be replayed in (index, path, first event time, why); send nothing.",
)
@grace_option(10.0)
def replay(
    config_path, log_format, log_level, paths, since, until, rate, dry_run, shard, restart, list_only, grace,
    metrics_file,
) -> None:
    """Send what historical files (plain or .gz) hold, oldest first, resumably.

    \b
    Examples:
      tailer replay samples/logs
      tailer replay /var/log/app/app.log* --since 2026-10-01 --until 2026-11-01 --rate 200
      tailer replay /var/log/app --dry-run | head
      tailer replay /var/log/app --shard 2/4
      tailer replay /var/log/app --dry-run --list    # check the order first
    A rerun continues where the last stopped; a finished file is never sent again (--restart forgets).
    """
    from tailer.run.replay import ReplayOptions
    from tailer.run.replay import replay as do_replay
    from tailer.run.replay_order import parse_shard

    try:
        shard_kn = parse_shard(shard) if shard else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--shard") from exc
    settings = settings_from(config_path, log_format, log_level)
    if list_only:
        from tailer.run.replay_files import plan_files
        from tailer.run.replay_order import format_plan

        for line in format_plan(plan_files(list(paths), settings, shard=shard_kn)):
            click.echo(line)
        return
    options = ReplayOptions(
        since=since, until=until, rate=rate, dry_run=dry_run, shard=shard_kn, restart=restart, grace=grace
    )
    progress = sys.stderr if sys.stderr.isatty() else None
    summary = asyncio.run(
        do_replay(settings, list(paths), options, out=sys.stdout, progress_to=progress, metrics_file=metrics_file)
    )
    out = sys.stderr if dry_run else sys.stdout
    for line in summary.lines_text():
        click.echo(line, file=out)
    if settings.endpoint.url == "embedded" and not dry_run:
        from tailer.state.statedir import StateDir

        click.echo(
            f"records     stored by the embedded receiver in {StateDir(settings.state_dir).receiver_db}", file=out
        )
    exit_if_stopped(summary, "continue")
    if summary.files_failed:
        raise click.ClickException(f"{summary.files_failed} file(s) could not be read to the end (see above)")
    if summary.dead_lettered and not dry_run:
        sys.exit(EXIT_DEAD_LETTERED)  # finished, but `tailer dlq list` has records to look at


@main.command()
@common_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document for scripts.")
def status(config_path: Path, log_format: str, log_level: str, as_json: bool) -> None:
    """Show every followed file: identity, size, checkpoint, bytes behind, last acknowledgement.

    \b
    Example:  tailer status --json | jq '.files[] | select(.behind > 0)'
    Reads only the checkpoint file, so it works while `tailer run` runs.
    """
    from tailer.run.status import render_status

    click.echo(render_status(settings_from(config_path, log_format, log_level), as_json=as_json))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option(
    "--token",
    envvar="OPER_TOKEN",
    default="dev-token",
    show_envvar=True,
    help="The token clients must send (never printed).",
)
@click.option("--auth-scheme", default="", help='e.g. "Bearer": expect "Authorization: Bearer <token>".')
@click.option(
    "--db", type=click.Path(dir_okay=False, path_type=Path), help="SQLite file (default: in memory)."
)
@click.option(
    "--ts-window", type=float, help="Refuse records whose ts is further than this many seconds from now."
)
@click.option("--ts-unit", type=click.Choice(["s", "ms"]), default="s", show_default=True)
@click.option(
    "--fail-rate", type=click.FloatRange(0, 1), default=0.0, help="Fault injection: share of requests failed."
)
@click.option("--fail-status", type=int, default=503, show_default=True)
@click.option("--latency", type=float, default=0.0, help="Fault injection: seconds added to every answer.")
@fail_cleanly
def receiver(host, port, token, auth_scheme, db, ts_window, ts_unit, fail_rate, fail_status, latency) -> None:
    """Run the reference OperReport server (token, validation, nonce uniqueness, SQLite storage).

    \b
    Example:  OPER_TOKEN=secret tailer receiver --port 8080 --db received.sqlite3
    """
    from tailer.receiver.server import ReceiverConfig, serve

    setup_logging("text", "info")
    cfg = ReceiverConfig(
        token=token,
        db_path=db,
        ts_window=ts_window,
        ts_unit=ts_unit,
        auth_scheme=auth_scheme,
        fail_rate=fail_rate,
        fail_status=fail_status,
        latency=latency,
    )
    serve(cfg, host, port)


main.add_command(check)
main.add_command(dlq)
main.add_command(test_rules)
main.add_command(match)

if __name__ == "__main__":  # pragma: no cover
    main(prog_name=os.path.basename(sys.argv[0]))
