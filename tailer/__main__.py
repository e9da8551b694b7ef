"""``python -m tailer`` is the ``tailer`` command."""

from tailer.cli.main import main

main(prog_name="tailer")
