"""The exception tree callers can catch.

    TailerError                  everything the tool raises on purpose
    ├── ConfigError              rules.yaml or an override is wrong; names file, line and rule
    ├── CheckpointError          a state file cannot be written (a corrupt one is not an error: it is re-read)
    │   └── StateDirBusy         another process owns that state (its lock names the pid)
    ├── ShipError                the shipper cannot go on (closed, misconfigured)
    └── ReplayError              replay arguments or files are unusable

Lower-layer errors (OSError, yaml.YAMLError, re.error, httpx.HTTPError) are translated at the
module boundary with ``raise ... from`` so the CLI can print one clean ``Error:`` line.
"""

from __future__ import annotations


class TailerError(Exception):
    """Base of every error oper-tailer raises on purpose."""


class ConfigError(TailerError):
    """A configuration or rule problem, located as precisely as we can: ``file:line: rule 'x': why``."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, rule: str | None = None
    ):
        self.message = message
        self.file = file
        self.line = line
        self.rule = rule
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        elif self.line:
            where = f"line {self.line}: "
        rule = f"rule '{self.rule}': " if self.rule else ""
        return f"{where}{rule}{self.message}"


class CheckpointError(TailerError):
    """A checkpoint or replay state file could not be written."""


class StateDirBusy(CheckpointError):
    """Another live process holds the state file's lock: two owners would send every record twice."""


class ShipError(TailerError):
    """The shipper cannot accept or deliver records (for example it is closed)."""


class ReplayError(TailerError):
    """Replay was given arguments or files it cannot use."""
