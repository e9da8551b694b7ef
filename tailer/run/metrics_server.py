"""``/metrics`` and ``/healthz`` over plain HTTP on one thread (http.server, single-threaded on purpose:
scrapes are rare and sequential, and one thread is one thing to stop and join at shutdown)."""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import choose_encoder

from tailer.errors import TailerError
from tailer.run.metrics import LOOP_TIMEOUT, LiveCollector, agent_facts, judge_health, loop_answers

if TYPE_CHECKING:
    from tailer.run.live import Agent

log = logging.getLogger("tailer.metrics")


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` (validated at config load)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class _Handler(BaseHTTPRequestHandler):
    server: MetricsServer
    timeout = 5  # a client that stalls cannot hold the (single) serving thread, or a shutdown, for long

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, ctype = choose_encoder(self.headers.get("Accept", ""))
            self._answer(200, encoder(self.server.registry), ctype)
        elif path == "/healthz":
            reasons = self.server.health()
            body = "ok\n" if not reasons else "unhealthy: " + "; ".join(reasons) + "\n"
            self._answer(503 if reasons else 200, body.encode(), "text/plain; charset=utf-8")
        else:
            self._answer(404, b"not found: try /metrics or /healthz\n", "text/plain; charset=utf-8")

    def _answer(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.debug("metrics: " + format, *args)


class MetricsServer(HTTPServer):
    """``/metrics`` and ``/healthz`` on one thread; ``stop()`` shuts it down and joins the thread."""

    def __init__(self, listen: str, registry: CollectorRegistry, health: Callable[[], list[str]]) -> None:
        host, port = parse_listen(listen)
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.registry, self.health = registry, health
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            raise TailerError(f"cannot serve metrics on {listen}: {exc.strerror or exc}") from exc
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.2}, name="tailer-metrics", daemon=True
        )

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # not HTTPServer's: its getfqdn() may wait on DNS
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), port

    @property
    def address(self) -> str:
        host, port = self.server_address[:2]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"

    def start(self) -> MetricsServer:
        self._thread.start()
        log.info("serving /metrics and /healthz on http://%s", self.address)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.shutdown()
            self._thread.join()
        self.server_close()


def serve_agent(agent: Agent, listen: str, loop: Any) -> MetricsServer:
    """Start serving a live Agent's metrics and health on ``listen`` (raises TailerError if it cannot bind)."""
    registry = CollectorRegistry()
    registry.register(LiveCollector(agent))
    ProcessCollector(registry=registry)  # process_resident_memory_bytes, process_open_fds, ...

    def health() -> list[str]:
        reasons = judge_health(agent_facts(agent))
        if not loop_answers(loop):
            reasons.append(f"the event loop did not answer within {LOOP_TIMEOUT:.0f}s")
        return reasons

    return MetricsServer(listen, registry, health).start()
