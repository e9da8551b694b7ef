"""Exit codes of ``tailer`` (documented in README.md, "Exit codes")."""

from tailer.run import stopper

EXIT_OK = 0
EXIT_ERROR = 1  # click.ClickException: one "Error: ..." line
EXIT_USAGE = 2  # click.UsageError: a wrong option or argument
EXIT_DEAD_LETTERED = 3  # finished, but some records were dead-lettered (replay, dlq resend)
# A second SIGINT/SIGTERM: left without waiting for in-flight records (run.stopper says so for all commands).
EXIT_ABORTED = stopper.EXIT_ABORTED
