"""systemd's sd_notify protocol without a dependency: datagrams to ``$NOTIFY_SOCKET``.

``Type=notify`` units learn from these that the service is ready (``READY=1``), still alive
(``WATCHDOG=1``, at least every ``WatchdogSec``), stopping (``STOPPING=1``), and what it is doing
(``STATUS=...``, shown by ``systemctl status``). The socket is an AF_UNIX datagram socket: a path, or an
abstract name written with a leading ``@`` (systemd's notation for a leading NUL byte).

Every function is a no-op returning False when ``NOTIFY_SOCKET`` is unset (not under systemd, or
``Type=simple``), and never raises: a service must not fail because its supervisor went away; a failed
send is logged at debug level and returns False.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("tailer.sdnotify")


def _address(name: str) -> str | bytes:
    if name.startswith("@"):  # abstract namespace: the kernel's name starts with a NUL byte
        return b"\0" + name[1:].encode()
    return name


def notify(*states: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``states`` (e.g. ``"READY=1"``, ``"STATUS=following 3 files"``) as one datagram.

    True when sent; False when NOTIFY_SOCKET is unset or the send failed."""
    name = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not name or not states:
        return False
    message = "\n".join(state.replace("\n", " ") for state in states).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message, _address(name))
    except OSError as exc:
        log.debug("cannot notify systemd at %s: %s", name, exc)
        return False
    return True


def ready(status: str | None = None, *, environ: Mapping[str, str] | None = None) -> bool:
    """The service is up: systemd starts ordering dependent units after it."""
    return notify("READY=1", *([f"STATUS={status}"] if status else []), environ=environ)


def watchdog(*, environ: Mapping[str, str] | None = None) -> bool:
    """Still alive: resets systemd's watchdog timer (``WatchdogSec=``)."""
    return notify("WATCHDOG=1", environ=environ)


def stopping(status: str | None = None, *, environ: Mapping[str, str] | None = None) -> bool:
    """Shutting down (after SIGTERM, before the final drain and checkpoint)."""
    return notify("STOPPING=1", *([f"STATUS={status}"] if status else []), environ=environ)


def status(text: str, *, environ: Mapping[str, str] | None = None) -> bool:
    """A one-line description shown by ``systemctl status``."""
    return notify(f"STATUS={text}", environ=environ)


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings that keep systemd content (half of WatchdogSec), or None when the
    watchdog is off for this process (``WATCHDOG_USEC`` unset, or ``WATCHDOG_PID`` names another one)."""
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 2_000_000
