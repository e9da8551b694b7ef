"""The CLI says what it does: --version, an example in every --help, exit codes and completion as the README
documents them, and a README that names every command and every long option (walked from the click tree,
so a new command or option fails here until it is documented)."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from helpers import run_tailer

from tailer import __version__
from tailer.cli import exitcodes
from tailer.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def walk(cmd: click.Command, path: tuple[str, ...] = ()):
    """(path, command) for ``tailer`` and every command and subcommand under it."""
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from walk(sub, (*path, name))


COMMANDS = [path for path, _ in walk(main) if path]


def long_options(cmd: click.Command) -> list[str]:
    return [opt for param in cmd.params for opt in (*param.opts, *param.secondary_opts) if opt.startswith("--")]


def test_the_tree_has_the_commands_this_test_walks():
    assert {("run",), ("replay",), ("dlq",), ("dlq", "list"), ("dlq", "resend"), ("dlq", "purge")} <= set(COMMANDS)


def test_version_is_the_package_version():
    result = run_tailer("--version", timeout=60)
    assert result.code == 0
    assert result.stdout.strip() == f"tailer, version {__version__}"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["version"] == __version__


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_help_has_an_example(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    match = re.search(r"^\s*Examples?:\s*(\S.*)?$", result.output, re.M)
    assert match, f"`tailer {' '.join(path)} --help` has no Example:"
    example = match[1] or result.output[match.end() :].strip().splitlines()[0]
    assert example.strip().startswith(("tailer", "OPER_TOKEN=", "grep")), example


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda p: " ".join(("tailer", *p)))
def test_readme_names_every_command_and_every_long_option(path):
    cmd = main
    for name in path:
        cmd = cmd.commands[name]
    name = " ".join(("tailer", *path))
    assert f"`{name}" in README, f"`{name}` is missing from README.md"
    for option in long_options(cmd):
        assert re.search(re.escape(option) + r"(?![\w-])", README), f"{name} {option} is missing from README.md"


def test_readme_documents_every_exit_code():
    table = README[README.index("### Exit codes") :]
    codes = {v for k, v in vars(exitcodes).items() if k.startswith("EXIT_")}
    assert codes == {0, 1, 2, 3, 130}
    for code in codes:
        assert re.search(rf"^\| {code} \|", table, re.M), f"exit code {code} is not in the README table"


def test_usage_errors_exit_2_and_library_errors_exit_1(tmp_path):
    runner = CliRunner()
    assert runner.invoke(main, ["replay"]).exit_code == 2  # missing PATH
    assert runner.invoke(main, ["dlq", "purge", "-c", str(tmp_path / "x.yaml")]).exit_code == 2  # no --before
    assert runner.invoke(main, ["dlq", "purge", "--before", "someday"]).exit_code == 2
    missing = runner.invoke(main, ["dlq", "list", "-c", str(tmp_path / "absent.yaml")])
    assert missing.exit_code == 1 and missing.output.startswith("Error: ")


def test_bash_completion_works_as_the_readme_says():
    assert 'eval "$(_TAILER_COMPLETE=bash_source tailer)"' in README
    source = run_tailer(env=os.environ | {"_TAILER_COMPLETE": "bash_source"}, timeout=60)
    assert source.code == 0 and "complete -o nosort -F _tailer_completion tailer" in source.stdout
    # What the generated function asks at a TAB after "tailer dlq ": the subcommands.
    words = run_tailer(
        env=os.environ | {"_TAILER_COMPLETE": "bash_complete", "COMP_WORDS": "tailer dlq ", "COMP_CWORD": "2"},
        timeout=60,
    )
    assert {"plain,list", "plain,resend", "plain,purge"} <= set(words.stdout.split())
