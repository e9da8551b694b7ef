"""The ``tailer`` command: click commands that parse options and call the library.

Library errors (``TailerError``) become ``Error: ...`` and exit 1, never a traceback; usage errors exit 2.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
from datetime import datetime
from pathlib import Path

import click

from . import __version__
from .config import Settings, load_settings
from .errors import TailerError
from .logs import setup_logging
from .record import build_payload


def _fail_cleanly(fn):
    """Turn every error we raise on purpose into click's clean ``Error: ...`` line."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TailerError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


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
    return _fail_cleanly(fn)


def _settings(config_path: Path, log_format: str, log_level: str) -> Settings:
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
@click.option(
    "--grace",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds in-flight requests may take to finish on SIGTERM/SIGINT.",
)
def run(config_path: Path, log_format: str, log_level: str, grace: float) -> None:
    """Follow the sources' files and send every operation, through rotations and restarts.

    \b
    Example:  tailer run -c /etc/oper-tailer/rules.yaml --log-format json
    SIGTERM/SIGINT stop cleanly (checkpoint written); SIGHUP reloads rules.yaml.
    """
    from .live import run as run_live

    settings = _settings(config_path, log_format, log_level)
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
    "--grace",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds in-flight requests may take to finish on SIGTERM/SIGINT.",
)
def replay(
    config_path, log_format, log_level, paths, since, until, rate, dry_run, shard, restart, grace
) -> None:
    """Send what historical files (plain or .gz) hold, oldest first, resumably.

    \b
    Examples:
      tailer replay samples/logs
      tailer replay /var/log/app/app.log* --since 2026-10-01 --until 2026-11-01 --rate 200
      tailer replay /var/log/app --dry-run | head
      tailer replay /var/log/app --shard 2/4
    A rerun continues where the last stopped; a finished file is never sent again (--restart forgets).
    """
    from .replay import ReplayOptions
    from .replay import replay as do_replay
    from .rotation import parse_shard

    try:
        shard_kn = parse_shard(shard) if shard else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--shard") from exc
    settings = _settings(config_path, log_format, log_level)
    options = ReplayOptions(
        since=since, until=until, rate=rate, dry_run=dry_run, shard=shard_kn, restart=restart
    )
    progress = sys.stderr if sys.stderr.isatty() else None
    summary = asyncio.run(do_replay(settings, list(paths), options, out=sys.stdout, progress_to=progress))
    out = sys.stderr if dry_run else sys.stdout
    for line in summary.lines_text():
        click.echo(line, file=out)
    if settings.endpoint.url == "embedded" and not dry_run:
        from .embedded import receiver_db

        click.echo(
            f"records     stored by the embedded receiver in {receiver_db(settings.state_dir)}", file=out
        )
    if summary.interrupted:
        raise click.ClickException("interrupted: run the same command again to continue")
    if summary.files_failed:
        raise click.ClickException(f"{summary.files_failed} file(s) could not be read to the end (see above)")


@main.command()
@common_options
def check(config_path: Path, log_format: str, log_level: str) -> None:
    """Load rules.yaml and report what it configures; exit 1 with file:line on any problem.

    \b
    Example:  tailer check -c rules.yaml
    """
    import glob

    settings = _settings(config_path, log_format, log_level)
    e = settings.endpoint
    click.echo(f"{config_path}: OK")
    click.echo(
        f"  endpoint  {e.url} (concurrency {e.concurrency}, rate {e.rate_limit or 'unlimited'}, "
        f"ts {e.ts_unit}/{e.ts_source}, nonce {e.nonce})"
    )
    for src in settings.sources:
        count = len(
            {p for pattern in src.paths for p in glob.glob(pattern, recursive=True) if src.matches(p)}
        )
        click.echo(f"  source    {', '.join(src.paths)} ({src.encoding}): {count} file(s) now")
    cases = sum(len(r.cases) for r in settings.rules.rules)
    click.echo(
        f"  rules     {len(settings.rules.rules)} ({cases} test cases): "
        + ", ".join(r.name for r in settings.rules.rules)
    )
    click.echo(f"  state     {settings.state_dir}")


@main.command("test")
@common_options
def test_rules(config_path: Path, log_format: str, log_level: str) -> None:
    """Run every rule's test cases; show a diff for each failure; exit 1 if any fails.

    \b
    Example:  tailer test -c rules.yaml
    """
    from .rules import run_cases

    settings = _settings(config_path, log_format, log_level)
    results = run_cases(settings.rules, ts_unit=settings.endpoint.ts_unit)
    failed = [r for r in results if not r.ok]
    for r in failed:
        where = f"{config_path}:{r.yaml_line}" if r.yaml_line else str(config_path)
        click.echo(f"FAIL {where} rule '{r.rule}': {r.line}")
        click.echo(r.diff)
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        sys.exit(1)


@main.command()
@common_options
@click.argument("lines", nargs=-1, required=True)
def match(config_path: Path, log_format: str, log_level: str, lines: tuple[str, ...]) -> None:
    """Show which rule matches each LINE and the payload it gives, or why none does (- reads stdin).

    \b
    Examples:
      tailer match '2026-11-28 10:00:01,123 [x] INFO VoteService - VOTE_JOIN voteId=9 groupId=5 ...'
      grep VOTE app.log | tailer match -
    Exit 1 when some line gives no record.
    """
    import time

    settings = _settings(config_path, log_format, log_level)
    texts = [t.rstrip("\r\n") for t in sys.stdin] if lines == ("-",) else list(lines)
    e, missed = settings.endpoint, 0
    for text in texts:
        m = settings.rules.match(text)
        if m is not None and m.record is not None:
            payload = build_payload(
                m.record, ts_unit=e.ts_unit, ts_source=e.ts_source, nonce=e.nonce, now=time.time()
            )
            click.echo(f"rule {m.rule}: {json.dumps(payload, ensure_ascii=False)}")
            continue
        missed += 1
        if m is not None:
            click.echo(f"rule {m.rule} matched but gives no record: {m.problem}")
        else:
            click.echo(
                "no rule matched: "
                + "; ".join(f"{name}: {why}" for name, why in settings.rules.explain(text))
            )
    if missed:
        sys.exit(1)


@main.command()
@common_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document for scripts.")
def status(config_path: Path, log_format: str, log_level: str, as_json: bool) -> None:
    """Show every followed file: identity, size, checkpoint, bytes behind, last acknowledgement.

    \b
    Example:  tailer status --json | jq '.files[] | select(.behind > 0)'
    Reads only the checkpoint file, so it works while `tailer run` runs.
    """
    from .status import render_status

    click.echo(render_status(_settings(config_path, log_format, log_level), as_json=as_json))


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
@_fail_cleanly
def receiver(host, port, token, auth_scheme, db, ts_window, ts_unit, fail_rate, fail_status, latency) -> None:
    """Run the reference OperReport server (token, validation, nonce uniqueness, SQLite storage).

    \b
    Example:  OPER_TOKEN=secret tailer receiver --port 8080 --db received.sqlite3
    """
    from .receiver import ReceiverConfig, serve

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


if __name__ == "__main__":  # pragma: no cover
    main(prog_name=os.path.basename(sys.argv[0]))
