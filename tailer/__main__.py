"""``python -m tailer`` is the ``tailer`` command."""

from .cli import main

main(prog_name="tailer")
