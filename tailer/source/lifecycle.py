"""The life of one logical file as an explicit state machine: the states, the legal transitions, and the
part of :class:`~tailer.source.tailfile.TailedFile` that needs no descriptor to change state.

The follower (``tailer.source.fileset``) decides *when* a file changes state, from what fstat, stat and the
scan of the globs say; a TailedFile only lets it happen from the states listed in :data:`TRANSITIONS`.
Anything else raises :class:`LifecycleError`: an engine bug, caught where it happens instead of a
descriptor leaked or a file read twice much later::

    DETACHED | TRUNCATED_AWAY | DONE --attach--> FOLLOWING
    FOLLOWING | MOVED ---mark_moved--> MOVED             (the path names something else: the scan decides)
    MOVED | DRAINING ----renamed_to--> FOLLOWING         (found in the globs under that name)
    FOLLOWING | MOVED ---rotated_away--> DRAINING        (not found in the globs)
    FOLLOWING | MOVED | DRAINING --deleted--> DELETED
    DRAINING | DELETED --finish--> FINISHED              (at its end: the partial last line is flushed)
    FINISHED, settled ---retire--> DONE                  (closed; ``done`` in the checkpoint)
    any open state ------truncated_away--> TRUNCATED_AWAY   (its descriptor goes on as a new file)
    any open state ------detach / close--> DETACHED      (stopping, a read error)

A checkpoint entry comes back DETACHED, or DONE when it says ``done`` (the only state that is persisted).
Two clocks ride on the state, both started by the caller's ``now`` (no clock here): how long a DRAINING file
has been idle at its end (``idle_for``), and how long a file without descriptor has been settled
(``gone_for``, to forget it). Every transition stops the clock.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    """Where a logical file is in its life; the first five hold a descriptor, the last three do not."""

    FOLLOWING = "following"  # open, read as it grows
    MOVED = "moved"  # reconcile saw its path name something else, or nothing: the next scan decides
    DRAINING = "draining"  # rotated away (its inode is no longer matched): read to EOF, then finish
    DELETED = "deleted"  # st_nlink == 0: read to EOF through the descriptor, then finish (no waiting)
    FINISHED = "finished"  # drained and its partial last line flushed: closed once its lines settle
    DETACHED = "detached"  # no descriptor yet (from a checkpoint) or any more (stopped, read error)
    TRUNCATED_AWAY = "truncated away"  # truncated under us: a copy with its head may continue it
    DONE = "done"  # finished, settled and closed; found again, it may resume where it stood


OPEN_STATES = frozenset({State.FOLLOWING, State.MOVED, State.DRAINING, State.DELETED, State.FINISHED})
_CLOSED_STATES = frozenset(State) - OPEN_STATES

# transition -> (the states it may start from, the state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[State], State]] = {
    "attach": (_CLOSED_STATES, State.FOLLOWING),
    "mark_moved": (frozenset({State.FOLLOWING, State.MOVED}), State.MOVED),
    "renamed_to": (frozenset({State.MOVED, State.DRAINING}), State.FOLLOWING),
    "rotated_away": (frozenset({State.FOLLOWING, State.MOVED}), State.DRAINING),
    "deleted": (frozenset({State.FOLLOWING, State.MOVED, State.DRAINING}), State.DELETED),
    "finish": (frozenset({State.DRAINING, State.DELETED}), State.FINISHED),
    "retire": (frozenset({State.FINISHED}), State.DONE),
    "truncated_away": (OPEN_STATES, State.TRUNCATED_AWAY),
    "detach": (OPEN_STATES, State.DETACHED),
    "close": (OPEN_STATES, State.DETACHED),
}


class LifecycleError(RuntimeError):
    """An illegal lifecycle transition: a bug in the caller, never a user error (so not a TailerError)."""


class Lifecycle:
    """The state of one logical file, and the transitions that take or give no descriptor. TailedFile adds
    the ones that do: ``attach``, ``finish``, ``retire``, ``truncated_away``, ``detach``, ``close``."""

    path: str

    def __init__(self, *, done: bool) -> None:
        self._state = State.DONE if done else State.DETACHED  # changed only through _enter
        # When the state's clock started (the caller's monotonic time): idle at EOF while DRAINING,
        # settled without a descriptor while DETACHED / TRUNCATED_AWAY / DONE.
        self._since: float | None = None

    @property
    def state(self) -> State:
        return self._state

    @property
    def attached(self) -> bool:
        return self._state in OPEN_STATES

    @property
    def done(self) -> bool:
        """No descriptor will read it again, and everything read is settled (kept in the checkpoint)."""
        return self._state is State.DONE

    def _require(self, transition: str, allowed: frozenset[State]) -> None:
        if self._state not in allowed:
            names = ", ".join(sorted(s.name for s in allowed))
            raise LifecycleError(f"{transition}: {self!r} is {self._state.name}, not {names}")

    def _check(self, transition: str) -> None:
        self._require(transition, TRANSITIONS[transition][0])

    def _enter(self, transition: str) -> None:
        allowed, target = TRANSITIONS[transition]
        self._require(transition, allowed)
        self._state, self._since = target, None

    def mark_moved(self) -> None:
        """Its path names another file, or nothing (a repeated look says so again)."""
        self._enter("mark_moved")

    def renamed_to(self, path: str) -> None:
        """The scan found it in the globs under ``path``: followed there. A rotated-away file found in
        the globs again (renamed back into them, or the globs changed) is followed instead of drained."""
        self._enter("renamed_to")
        self.path = path

    def rotated_away(self) -> None:
        """The scan did not find it in the globs: drain it (the writer may still add its last lines)."""
        self._enter("rotated_away")

    def deleted(self) -> None:
        """Unlinked (``st_nlink == 0``): drained through the descriptor and finished at its end without
        the rotation wait (a writer that still holds it open is not waited for)."""
        self._enter("deleted")

    def idle_for(self, now: float) -> float:
        """Seconds a draining file has been idle at its end, counted from ``now`` the first time."""
        self._require("idle_for", frozenset({State.DRAINING}))
        if self._since is None:
            self._since = now
        return now - self._since

    def busy(self) -> None:
        """A draining file read lines, or is not at its end yet: its idle clock starts again."""
        self._require("busy", frozenset({State.DRAINING, State.DELETED}))
        self._since = None

    def gone_for(self, now: float) -> float:
        """Seconds a file without descriptor has been seen settled, counted from ``now`` the first time
        (the caller asks only while it is settled: nothing is read without a descriptor)."""
        self._require("gone_for", _CLOSED_STATES)
        if self._since is None:
            self._since = now
        return now - self._since
