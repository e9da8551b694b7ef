"""Rule authoring commands: ``tailer check``, ``tailer test``, ``tailer match`` (registered by cli.py)."""

from __future__ import annotations

import glob
import json
import sys
import time
from pathlib import Path

import click

from tailer.cli.common import common_options, settings_from
from tailer.record import build_payload


@click.command()
@common_options
def check(config_path: Path, log_format: str, log_level: str) -> None:
    """Load rules.yaml and report what it configures; exit 1 with file:line on any problem.

    \b
    Example:  tailer check -c rules.yaml
    """
    settings = settings_from(config_path, log_format, log_level)
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


@click.command("test")
@common_options
def test_rules(config_path: Path, log_format: str, log_level: str) -> None:
    """Run every rule's test cases; show a diff for each failure; exit 1 if any fails.

    \b
    Example:  tailer test -c rules.yaml
    """
    from tailer.rules.cases import run_cases

    settings = settings_from(config_path, log_format, log_level)
    results = run_cases(settings.rules, ts_unit=settings.endpoint.ts_unit)
    failed = [r for r in results if not r.ok]
    for r in failed:
        where = f"{config_path}:{r.yaml_line}" if r.yaml_line else str(config_path)
        click.echo(f"FAIL {where} rule '{r.rule}': {r.line}")
        click.echo(r.diff)
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        sys.exit(1)


@click.command()
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
    settings = settings_from(config_path, log_format, log_level)
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
