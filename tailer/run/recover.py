"""``tailer run``'s start-up catch-up: what rotation compressed while it was stopped (source/archives.py) is
read once, through the live pipeline, before following goes on.

Records of an archive carry the names live would have given them (its key and head are the original
file's), so with ``nonce: deterministic`` a line the dead process had sent already is acknowledged, not
stored twice. An archive is marked done in the checkpoint only once all its records settled; until then the
checkpoint keeps the original file's saved offset (an archive of a file we never saw is entered at 0 before
it is read), so a crash during the catch-up reads the archive again from there, resending at most what it
had sent of it, and never skips it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from tailer.run.pipeline import FileLane, Pipeline
from tailer.source.archives import Archive, rotated_archives
from tailer.source.fileset import Follower
from tailer.source.lifecycle import State
from tailer.source.reader import LineReader, open_log
from tailer.source.settings import SourceSettings
from tailer.source.tailfile import TailedFile
from tailer.state.checkpoint import FileCheckpoint

log = logging.getLogger("tailer.live")


class CompressedRotations:
    def __init__(
        self, sources: tuple[SourceSettings, ...], entries: Mapping[str, FileCheckpoint], since: float | None
    ) -> None:
        self.sources, self.entries, self.since = sources, dict(entries), since
        self.read_files = 0
        self._todo: list[Archive] = []  # found by discover, not read yet
        self._pending: list[tuple[Archive, FileLane, int]] = []  # read to its end, maybe not all settled

    def discover(self, follower: Follower) -> None:
        """After the first scan, before the first checkpoint write: find the archives that hold lines of
        ours (none on a first start) and enter those of files we never saw in the checkpoint at 0, so a
        stop before they are done has the next start continue them (they may be older than its since)."""
        if self.since is None:  # a first start: old archives are for tailer replay
            return
        followed = {tf.key for tf in follower.open_files()}
        self._todo = rotated_archives(self.sources, self.entries, since=self.since, followed=followed)
        for arc in self._todo:
            if not arc.known:
                follower.files.setdefault(arc.key, TailedFile(arc.key, arc.path, offset=arc.start))

    async def read(self, pipeline: Pipeline, stopping: Callable[[], bool]) -> None:
        """Read what ``discover`` found, each archive to its end, through the pipeline."""
        todo, self._todo = self._todo, []
        for arc in todo:
            if stopping():
                return
            what = "the rest of a file" if arc.known else "a file rotated"
            log.warning("%s holds %s compressed while tailer run was stopped: reading it from offset %d",
                        arc.path, what, arc.start)  # fmt: skip
            lane = FileLane(arc.path, arc.key, arc.head, arc.start, None)
            try:
                with open_log(arc.path, arc.start) as stream:
                    reader = LineReader(stream, offset=arc.start, encoding=arc.source.encoding,
                                        max_line_bytes=arc.source.max_line_bytes)  # fmt: skip
                    if await pipeline.pump(lane, reader, stopping=stopping):
                        self._pending.append((arc, lane, reader.offset))
                        self.read_files += 1
            except (OSError, EOFError, LookupError) as exc:
                log.error("%s: %s (what was read before is kept; the rest is not read)", arc.path, exc)

    def settle(self, follower: Follower) -> None:
        """Mark done, for the checkpoint, each archive whose records have all settled."""
        still = []
        for arc, lane, end in self._pending:
            if lane.watermark.in_flight or lane.watermark.offset < end:
                still.append((arc, lane, end))
                continue
            prior = follower.files.get(arc.key)
            if prior is not None and prior.state not in (State.DETACHED, State.TRUNCATED_AWAY, State.DONE):
                continue  # followed again meanwhile (a twin head): that descriptor owns the key now
            follower.files[arc.key] = TailedFile(
                arc.key, arc.path, offset=end, fingerprint=prior.fingerprint if prior else None,
                size=end, last_ack_at=lane.last_ack_at, done=True,
            )  # fmt: skip
            log.info("%s: read to its end and settled; done", arc.path)
        self._pending = still
