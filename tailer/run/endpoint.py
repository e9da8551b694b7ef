"""Where records go: the configured URL, or for ``url: embedded`` the reference receiver started in-process
so the whole chain works on a laptop. It keeps what it accepts in ``state_dir/receiver.sqlite3``."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

from tailer.receiver.embedded import EmbeddedReceiver
from tailer.receiver.server import ReceiverConfig
from tailer.ship.settings import EndpointSettings

log = logging.getLogger("tailer.embedded")

EMBEDDED = "embedded"


@contextlib.contextmanager
def resolve_endpoint(endpoint: EndpointSettings, db: Path) -> Iterator[EndpointSettings]:
    """Yield the endpoint to send to: unchanged, or for ``embedded`` the URL of a receiver started here,
    storing into ``db`` (``StateDir.receiver_db``)."""
    if endpoint.url != EMBEDDED:
        yield endpoint
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    cfg = ReceiverConfig(token=endpoint.token.reveal(), db_path=db, auth_scheme=endpoint.auth_scheme)
    with EmbeddedReceiver(cfg) as receiver:
        log.info("embedded receiver listening on %s; accepted records are stored in %s", receiver.url, db)
        yield dataclasses.replace(endpoint, url=receiver.url)
