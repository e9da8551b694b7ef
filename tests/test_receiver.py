"""The embedded reference receiver, exercised over real HTTP on 127.0.0.1 with httpx."""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from pathlib import Path

import httpx
import pytest

from tailer.errors import ConfigError, TailerError
from tailer.receiver.embedded import EmbeddedReceiver
from tailer.receiver.server import ReceiverConfig

TOKEN = "test-token"
AUTH = {"Authorization": TOKEN}


def body(nonce: str = "n-1", **data_overrides) -> dict:
    data = {"oper_id": "1504000120618", "gid": 5, "target_id": "c1", "uid": 42, "ext1": "9", "ext2": "web"}
    data.update(data_overrides)
    return {"ts": int(time.time()), "nonce": nonce, "data": data}


@pytest.fixture
def client():
    with httpx.Client(timeout=10) as c:
        yield c


def test_accepted_record_is_stored_and_returned(receiver, client):
    sent = body("abc")
    resp = client.post(receiver.url, json=sent, headers=AUTH)
    assert resp.status_code == 200
    assert resp.json() == {"ret": 0, "msg": "ok"}
    assert receiver.records() == [sent]
    assert receiver.count() == 1
    assert receiver.stats == {200: 1}


def test_records_come_back_in_arrival_order(receiver, client):
    nonces = [f"n{i}" for i in range(5)]
    for nonce in nonces:
        assert client.post(receiver.url, json=body(nonce), headers=AUTH).status_code == 200
    assert [r["nonce"] for r in receiver.records()] == nonces


@pytest.mark.parametrize("headers", [{}, {"Authorization": "wrong"}, {"Authorization": f"Bearer {TOKEN}"}])
def test_missing_or_wrong_token_is_401_and_not_stored(receiver, client, headers):
    resp = client.post(receiver.url, json=body(), headers=headers)
    assert resp.status_code == 401
    assert resp.json() == {"ret": 401, "msg": "bad token"}
    assert receiver.count() == 0


def test_auth_scheme_bearer_requires_the_prefix(make_receiver, client):
    rx = make_receiver(auth_scheme="Bearer")
    assert client.post(rx.url, json=body("a"), headers=AUTH).status_code == 401
    assert (
        client.post(rx.url, json=body("b"), headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    )
    assert [r["nonce"] for r in rx.records()] == ["b"]


def test_non_ascii_authorization_header_is_refused_not_crashing(receiver, client):
    resp = client.post(receiver.url, json=body(), headers={"Authorization": "tëst-token".encode()})
    assert resp.status_code == 401


def test_set_token_at_runtime_switches_the_accepted_token(receiver, client):
    receiver.set_token("rotated")
    assert client.post(receiver.url, json=body("a"), headers=AUTH).status_code == 401
    assert client.post(receiver.url, json=body("b"), headers={"Authorization": "rotated"}).status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(receiver, client, content_type):
    headers = dict(AUTH)
    if content_type:
        headers["Content-Type"] = content_type
    resp = client.post(receiver.url, content=json.dumps(body()).encode(), headers=headers)
    assert resp.status_code == 415
    assert resp.json()["ret"] == 415


def test_json_content_type_with_charset_is_accepted(receiver, client):
    headers = {**AUTH, "Content-Type": "application/json; charset=utf-8"}
    resp = client.post(receiver.url, content=json.dumps(body()).encode(), headers=headers)
    assert resp.status_code == 200


def test_oversize_body_with_content_length_is_413(make_receiver, client):
    rx = make_receiver(max_body=1024)
    big = body(ext3="x" * 2000)
    resp = client.post(rx.url, json=big, headers=AUTH)
    assert resp.status_code == 413
    assert resp.json()["ret"] == 413
    assert rx.count() == 0


def test_oversize_chunked_body_is_413(make_receiver, client):
    rx = make_receiver(max_body=1024)
    raw = json.dumps(body(ext3="x" * 4000)).encode()

    def chunks():  # a generator makes httpx send Transfer-Encoding: chunked, no Content-Length
        for i in range(0, len(raw), 512):
            yield raw[i : i + 512]

    resp = client.post(rx.url, content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status_code == 413


def test_body_just_under_the_cap_is_accepted(make_receiver, client):
    rx = make_receiver(max_body=1024)
    raw = json.dumps(body(ext3="")).encode()
    raw = json.dumps(body(ext3="x" * (1024 - len(raw)))).encode()
    assert len(raw) == 1024
    resp = client.post(rx.url, content=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status_code == 200


def _mutate(path: str, value):
    """A valid body with ``path`` (e.g. "data.gid") set to value, or removed when value is DELETE."""

    def make():
        b = body()
        target, key = (b["data"], path[5:]) if path.startswith("data.") else (b, path)
        if value is DELETE:
            del target[key]
        else:
            target[key] = copy.deepcopy(value)
        return b

    return make


DELETE = object()


@pytest.mark.parametrize(
    ("make", "msg"),
    [
        (_mutate("ts", 1.5), "ts must be an integer"),
        (_mutate("ts", True), "ts must be an integer"),
        (_mutate("ts", "1700000000"), "ts must be an integer"),
        (_mutate("ts", -1), "ts out of range"),
        (_mutate("ts", 2**64), "ts out of range"),
        (_mutate("nonce", DELETE), "nonce is required"),
        (_mutate("nonce", ""), "nonce must be a non-empty string"),
        (_mutate("nonce", 7), "nonce must be a non-empty string"),
        (_mutate("nonce", "x" * 129), "nonce longer than 128 characters"),
        (_mutate("data", ["oper_id"]), "data must be an object"),
        (_mutate("extra", 1), "unknown key 'extra'"),
        (_mutate("data.oper_id", DELETE), "data.oper_id is required"),
        (_mutate("data.oper_id", "15040x"), "data.oper_id must be a string of digits"),
        (_mutate("data.oper_id", 1504000120618), "data.oper_id must be a string of digits"),
        (_mutate("data.oper_id", "１５０４"), "data.oper_id must be a string of digits"),  # fullwidth digits
        (_mutate("data.gid", "5"), "data.gid must be an integer"),
        (_mutate("data.gid", False), "data.gid must be an integer"),
        (_mutate("data.uid", 42.0), "data.uid must be an integer"),
        (_mutate("data.color", "red"), "data has unknown key 'color'"),
        (_mutate("data.ext11", "x"), "data has unknown key 'ext11'"),
        (_mutate("data.target_id", 1), "data.target_id must be a string"),
        (_mutate("data.ext10", None), "data.ext10 must be a string"),
    ],
)
def test_shape_violation_is_400_with_a_specific_reason(receiver, client, make, msg):
    resp = client.post(receiver.url, json=make(), headers=AUTH)
    assert resp.status_code == 400
    assert resp.json() == {"ret": 400, "msg": msg}
    assert receiver.count() == 0


@pytest.mark.parametrize(
    ("raw", "msg_start"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (b'{"ts": NaN, "nonce": "n", "data": {"oper_id": "1"}}', "body is not valid JSON"),
        (b'{"ts": 1, "nonce": "a", "nonce": "b", "data": {"oper_id": "1"}}', "duplicate key 'nonce'"),
        (b"\xff\xfe\xfa", "body is not valid JSON"),
    ],
)
def test_unparseable_body_is_400(receiver, client, raw, msg_start):
    resp = client.post(receiver.url, content=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["msg"].startswith(msg_start)


def test_optional_fields_may_be_absent(receiver, client):
    minimal = {"ts": 1, "nonce": "m", "data": {"oper_id": "1505000120679"}}
    assert client.post(receiver.url, json=minimal, headers=AUTH).status_code == 200
    assert receiver.records() == [minimal]


def test_duplicate_nonce_is_409_and_stored_once(receiver, client):
    assert client.post(receiver.url, json=body("same"), headers=AUTH).status_code == 200
    resp = client.post(receiver.url, json=body("same", ext1="other"), headers=AUTH)
    assert resp.status_code == 409
    assert resp.json() == {"ret": 409, "msg": "duplicate nonce"}
    assert receiver.count() == 1
    assert receiver.records()[0]["data"]["ext1"] == "9"


def test_exact_resend_is_acknowledged_but_not_stored_twice(receiver, client):
    assert client.post(receiver.url, json=body("same"), headers=AUTH).status_code == 200
    resp = client.post(receiver.url, json=body("same"), headers=AUTH)
    assert resp.status_code == 200
    assert resp.json() == {"ret": 0, "msg": "duplicate: already stored"}
    assert receiver.count() == 1
    assert receiver.duplicates == 1


def test_duplicate_nonce_is_refused_after_restart_on_the_same_db(tmp_path, client):
    cfg = ReceiverConfig(token=TOKEN, db_path=tmp_path / "r.db")
    with EmbeddedReceiver(cfg) as first:
        assert client.post(first.url, json=body("kept"), headers=AUTH).status_code == 200
    with EmbeddedReceiver(cfg) as second:
        assert client.post(second.url, json=body("kept", ext1="x"), headers=AUTH).status_code == 409
        assert client.post(second.url, json=body("kept"), headers=AUTH).status_code == 200
        assert [r["nonce"] for r in second.records()] == ["kept"]
        assert second.duplicates == 1


def test_db_path_given_as_str_in_a_new_directory_works(tmp_path, client):
    cfg = ReceiverConfig(token=TOKEN, db_path=str(tmp_path / "new" / "r.db"))
    with EmbeddedReceiver(cfg) as rx:
        assert client.post(rx.url, json=body(), headers=AUTH).status_code == 200
    assert (tmp_path / "new" / "r.db").exists()


def test_in_memory_db_accepts_and_forgets_on_restart(client):
    cfg = ReceiverConfig(token=TOKEN)
    with EmbeddedReceiver(cfg) as first:
        assert client.post(first.url, json=body("m"), headers=AUTH).status_code == 200
    with EmbeddedReceiver(cfg) as second:
        assert second.count() == 0


@pytest.mark.parametrize(
    ("unit", "offset_s", "status"),
    [("s", 0, 200), ("s", -30, 200), ("s", -3600, 400), ("s", 3600, 400), ("ms", 0, 200), ("ms", -3600, 400)],
)
def test_ts_window(make_receiver, client, unit, offset_s, status):
    rx = make_receiver(ts_window=60, ts_unit=unit)
    scale = 1000 if unit == "ms" else 1
    sent = body()
    sent["ts"] = int((time.time() + offset_s) * scale)
    resp = client.post(rx.url, json=sent, headers=AUTH)
    assert resp.status_code == status
    if status == 400:
        assert resp.json() == {"ret": 400, "msg": "ts outside window"}


def test_ts_window_in_ms_refuses_a_ts_in_seconds(make_receiver, client):
    rx = make_receiver(ts_window=60, ts_unit="ms")
    resp = client.post(rx.url, json=body(), headers=AUTH)  # body() carries seconds
    assert resp.json() == {"ret": 400, "msg": "ts outside window"}


def test_fail_next_answers_status_with_retry_after_then_recovers(receiver, client):
    receiver.fail_next(2, 503, retry_after=1)
    first = client.post(receiver.url, json=body("r"), headers=AUTH)
    second = client.post(receiver.url, json=body("r"), headers=AUTH)
    third = client.post(receiver.url, json=body("r"), headers=AUTH)
    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert first.headers["Retry-After"] == "1"
    assert first.json() == {"ret": 503, "msg": "injected failure"}
    assert "Retry-After" not in third.headers
    assert receiver.count() == 1
    assert receiver.stats == {503: 2, 200: 1}


def test_fail_next_queues_in_order(receiver, client):
    receiver.fail_next(1, 429)
    receiver.fail_next(1, 500)
    codes = [client.post(receiver.url, json=body(f"q{i}"), headers=AUTH).status_code for i in range(3)]
    assert codes == [429, 500, 200]


def _statuses(rx: EmbeddedReceiver, client: httpx.Client, n: int, prefix: str = "s") -> list[int]:
    return [client.post(rx.url, json=body(f"{prefix}{i}"), headers=AUTH).status_code for i in range(n)]


def test_fail_rate_with_a_seed_gives_a_reproducible_mix(tmp_path, client):
    runs = []
    for i in range(2):
        cfg = ReceiverConfig(
            token=TOKEN, db_path=tmp_path / f"{i}.db", fail_rate=0.5, seed=7, fail_status=502
        )
        with EmbeddedReceiver(cfg) as rx:
            runs.append(_statuses(rx, client, 40))
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 502}


def test_set_faults_changes_behaviour_at_runtime_and_reseeds(receiver, client):
    receiver.set_faults(fail_rate=1.0, fail_status=500, retry_after=2.5)
    resp = client.post(receiver.url, json=body("f"), headers=AUTH)
    assert resp.status_code == 500
    assert resp.headers["Retry-After"] == "2.5"
    receiver.set_faults(fail_rate=0.5, seed=3)
    first = _statuses(receiver, client, 20, "a")
    receiver.set_faults(seed=3)
    second = _statuses(receiver, client, 20, "b")
    assert first == second
    assert set(first) == {200, 500}


def test_set_faults_refuses_token_unknown_fields_and_bad_values(receiver):
    with pytest.raises(TypeError):
        receiver.set_faults(token="x")
    with pytest.raises(TypeError):
        receiver.set_faults(nonsense=1)
    with pytest.raises(ConfigError):
        receiver.set_faults(fail_rate=2)


def test_healthz_is_200_and_other_paths_404(receiver, client):
    assert client.get(receiver.base_url + "/healthz").status_code == 200
    assert client.post(receiver.base_url + "/api/v1/Other", json=body(), headers=AUTH).status_code == 404


def test_token_never_appears_in_config_repr():
    cfg = ReceiverConfig(token="s3cret-value")
    assert "s3cret-value" not in repr(cfg)


def test_stop_releases_thread_socket_and_db(tmp_path, client):
    db = tmp_path / "leak.db"
    rx = EmbeddedReceiver(ReceiverConfig(token=TOKEN, db_path=db)).start()
    assert client.post(rx.url, json=body(), headers=AUTH).status_code == 200
    url = rx.url
    rx.stop()
    assert not [t for t in threading.enumerate() if t.name == "tailer-receiver"]
    open_targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            open_targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    assert not [t for t in open_targets if t.startswith(str(db))]
    with pytest.raises(httpx.ConnectError), httpx.Client() as fresh:
        fresh.post(url, json=body(), headers=AUTH)
    with pytest.raises(RuntimeError):
        rx.records()
    rx.stop()  # idempotent


def test_start_on_a_busy_port_fails_cleanly(receiver):
    with pytest.raises(TailerError, match="cannot listen"):
        EmbeddedReceiver(ReceiverConfig(token=TOKEN), port=receiver.port).start()


def test_unwritable_db_path_fails_start(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(TailerError, match="cannot open its database"):
        EmbeddedReceiver(ReceiverConfig(db_path=blocker / "sub" / "r.db")).start()


def test_latency_delays_the_answer_but_keeps_it(make_receiver, client):
    rx = make_receiver(latency=0.05)
    assert client.post(rx.url, json=body(), headers=AUTH).status_code == 200
    assert rx.count() == 1


def test_serve_prints_where_it_listens_without_the_token_and_exits_on_sigterm(tmp_path):
    import signal
    import subprocess
    import sys

    db = tmp_path / "served.db"
    code = (
        "from pathlib import Path; from tailer.receiver.server import ReceiverConfig, serve; "
        f"serve(ReceiverConfig(token='sekret-tok', db_path=Path({str(db)!r})), '127.0.0.1', 0)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[1],  # the repo root, so `tailer` imports even if not installed
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # serve prints exactly one line once it listens
        assert line.startswith("receiver listening on http://127.0.0.1:")
        assert str(db) in line
        url = line.split()[3].rstrip(",")
        with httpx.Client(timeout=10) as c:
            assert c.post(url, json=body(), headers={"Authorization": "sekret-tok"}).status_code == 200
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "sekret-tok" not in line + out + err
    with EmbeddedReceiver(ReceiverConfig(token=TOKEN, db_path=db)) as again:
        assert again.count() == 1
