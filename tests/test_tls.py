"""TLS: verification stays on; ``endpoint.ca_file`` trusts a private CA. A real HTTPS server on 127.0.0.1 with
a certificate from a CA made here by the openssl command line."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from aiohttp import web

from tailer.config.settings import load_settings
from tailer.record import Origin, Record
from tailer.ship.deadletter import DeadLetterWriter
from tailer.ship.shipper import Shipper

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def make_ca_and_server_cert(d: Path) -> tuple[Path, Path, Path]:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=oper-tailer test CA")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")  # fmt: skip
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")  # fmt: skip
    return d / "ca.pem", d / "server.pem", d / "server.key"


def test_private_ca_is_trusted_with_ca_file_and_refused_without(tmp_path):
    ca, cert, key = make_ca_and_server_cert(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    seen: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.json_response({"ret": 0, "msg": "ok"})

    async def ship(config_text: str) -> tuple[int, int]:
        (tmp_path / "rules.yaml").write_text(config_text)
        settings = load_settings(tmp_path / "rules.yaml", environ={})
        acked = []
        dlq = DeadLetterWriter(tmp_path / "dead-letter.jsonl")
        async with Shipper(settings.endpoint, dead_letter=dlq, on_settled=lambda r, o: acked.append(o)) as s:
            await s.submit(Record("r", "1", {"ext1": "x"}, None, Origin("f", "p", 1)))
            await s.drain(3.0)  # False when TLS never lets it through
            return len(acked), s.stats.transport_errors

    async def main() -> tuple[tuple[int, int], tuple[int, int]]:
        app = web.Application()
        app.router.add_post("/api/v1/OperReport", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
        await site.start()
        port = runner.addresses[0][1]
        base = f"endpoint:\n  url: https://127.0.0.1:{port}/api/v1/OperReport\n  token: t\n  max_backoff: 0.1\n"
        rules = "rules:\n  - {name: r, pattern: 'x', oper_id: '1'}\n"
        try:
            with_ca = await ship(base + f"  ca_file: {ca}\n" + rules)
            without = await ship(base + rules)
        finally:
            await runner.cleanup()
        return with_ca, without

    with_ca, without = asyncio.run(asyncio.wait_for(main(), 60))
    assert with_ca == (1, 0) and len(seen) == 1  # verified against the private CA, delivered
    assert without[0] == 0 and without[1] >= 1 and len(seen) == 1  # the default trust store refuses it
