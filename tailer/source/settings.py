"""What one source is (``sources:`` item): which files, how to decode them, where a new one starts."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SourceSettings:
    paths: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    encoding: str = "utf-8"
    start_at: str = "beginning"
    max_line_bytes: int = 65536
    poll: bool = False

    def matches(self, path: str | Path) -> bool:
        """The absolute path matches a glob (fnmatch: ``*`` also crosses ``/``) and no exclude pattern
        matches its name or its full path."""
        full = os.path.abspath(os.fspath(path))
        if not any(fnmatch.fnmatchcase(full, g) for g in self.paths):
            return False
        name = os.path.basename(full)
        return not any(fnmatch.fnmatchcase(name, x) or fnmatch.fnmatchcase(full, x) for x in self.exclude)


def source_for(sources: Iterable[SourceSettings], path: str | Path) -> SourceSettings:
    """How ``path`` is read: the first source whose globs match it, or match its name without ``.gz`` (a
    rotated, compressed file keeps its source's encoding); defaults when none does. ``exclude`` is not
    applied: it decides which files are followed live, not how a file is decoded."""
    full = os.path.abspath(os.fspath(path))
    names = (full, full[:-3]) if full.endswith(".gz") else (full,)
    for source in sources:
        if any(fnmatch.fnmatchcase(name, glob) for name in names for glob in source.paths):
            return source
    return SourceSettings(paths=())
