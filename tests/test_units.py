"""The service samples (systemd unit, Kubernetes manifests) say what the CLI and rules.yaml can do, and
sd_notify reaches a real AF_UNIX datagram socket. ``kubectl --dry-run`` is not available here: the
fields that matter are checked against the real CLI and the real config loader instead."""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import socket
import stat
import subprocess
import uuid
from pathlib import Path

import click
import pytest
import yaml

from tailer.cli.main import main
from tailer.config.settings import load_settings
from tailer.run import sdnotify
from tailer.run.replay_order import parse_shard

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "samples" / "systemd"
K8S = ROOT / "samples" / "kubernetes"


def command_for(argv: list[str]) -> click.Command:
    """The click command ``argv`` (after the program name) names; every option it passes must exist."""
    cmd: click.Command = main
    args = list(argv)
    while isinstance(cmd, click.Group) and args and not args[0].startswith("-"):
        name = args.pop(0)
        assert name in cmd.commands, f"`tailer {name}` is not a command"
        cmd = cmd.commands[name]
    known = {opt for param in cmd.params for opt in (*param.opts, *param.secondary_opts)}
    for arg in args:
        if arg.startswith("-"):
            assert arg.split("=")[0] in known, f"{arg} is not an option of `tailer {cmd.name}`"
    return cmd


def option_value(argv: list[str], *names: str) -> str:
    for i, arg in enumerate(argv):
        if arg in names:
            return argv[i + 1]
    raise AssertionError(f"none of {names} in {argv}")


# --- systemd ---------------------------------------------------------------------------------------------


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True, comment_prefixes=("#", ";"))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(SYSTEMD / "oper-tailer.service", encoding="utf-8")
    return parser


def test_systemd_unit_runs_a_real_command_as_a_notify_service_that_reloads_on_sighup():
    service = unit()["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/tailer")
    run = command_for(argv[1:])
    assert run.name == "run"
    assert option_value(argv, "-c", "--config") == "/etc/oper-tailer/rules.yaml"
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert int(service["WatchdogSec"].removesuffix("s")) >= 5  # pinged every checkpoint tick (1 s)
    assert re.fullmatch(r"(/usr)?/bin/kill -HUP \$MAINPID", service["ExecReload"])
    assert service["Restart"] == "on-failure"
    grace = float(option_value(argv, "--grace"))
    assert float(service["TimeoutStopSec"].removesuffix("s")) > grace  # drain + checkpoint before SIGKILL
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_unit_is_hardened_with_its_own_user_a_state_directory_and_a_credential():
    service = unit()["Service"]
    assert service.get("DynamicUser") == "yes" or service.get("User") not in (None, "", "root")
    assert service["StateDirectory"] == "oper-tailer" and service["StateDirectoryMode"] == "0700"
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices", "RestrictSUIDSGID"):
        assert service[key] == "yes", key
    assert service["ProtectSystem"] == "strict"  # everything read-only but the StateDirectory
    assert service["CapabilityBoundingSet"] == ""
    name, _, source = service["LoadCredential"].partition(":")
    assert name == "token" and source.startswith("/etc/oper-tailer/")
    assert "${CREDENTIALS_DIRECTORY" in (SYSTEMD / "rules.yaml").read_text()


def test_systemd_rules_read_the_token_credential_and_keep_state_in_the_state_directory(tmp_path):
    """What systemd sets ($CREDENTIALS_DIRECTORY with a 0400 token, $STATE_DIRECTORY) is what rules.yaml uses."""
    creds, state = tmp_path / "credentials", tmp_path / "state"
    creds.mkdir()
    (creds / "token").write_text("s3cret\n")
    os.chmod(creds / "token", stat.S_IRUSR)
    env = {"CREDENTIALS_DIRECTORY": str(creds), "STATE_DIRECTORY": str(state)}
    settings = load_settings(SYSTEMD / "rules.yaml", environ=env)
    assert settings.endpoint.token.reveal() == "s3cret"
    assert settings.state_dir == state
    assert settings.endpoint.url.startswith("https://")


# --- sd_notify -------------------------------------------------------------------------------------------


@pytest.fixture
def notify_socket(tmp_path):
    """A real AF_UNIX datagram socket, as systemd listens on: (its $NOTIFY_SOCKET value, the socket)."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    yield str(path), sock
    sock.close()


def test_sdnotify_sends_ready_watchdog_status_and_stopping_datagrams(notify_socket):
    name, sock = notify_socket
    env = {"NOTIFY_SOCKET": name}
    assert sdnotify.ready("following 2 files", environ=env)
    assert sock.recv(4096) == b"READY=1\nSTATUS=following 2 files"
    assert sdnotify.watchdog(environ=env)
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert sdnotify.status("3 records in flight\nsecond line", environ=env)
    assert sock.recv(4096) == b"STATUS=3 records in flight second line"  # one line: newlines separate states
    assert sdnotify.stopping(environ=env)
    assert sock.recv(4096) == b"STOPPING=1"


def test_sdnotify_reaches_an_abstract_socket_named_with_at():
    name = f"oper-tailer-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(10)
        assert sdnotify.ready(environ={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"READY=1"


def test_sdnotify_is_a_no_op_without_notify_socket_and_never_raises(tmp_path, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.ready() is False and sdnotify.watchdog() is False
    assert sdnotify.notify("READY=1", environ={"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")}) is False


def test_watchdog_interval_is_half_of_watchdog_sec_for_this_process_only():
    me = str(os.getpid())
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": me}) == 15.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert sdnotify.watchdog_interval({}) is None


# --- Kubernetes ------------------------------------------------------------------------------------------


def manifests() -> dict[tuple[str, str], dict]:
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def pod_spec(kind: str, name: str) -> dict:
    return manifests()[(kind, name)]["spec"]["template"]["spec"]


def container_env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def rules_settings(container: dict, tmp_path: Path):
    """The ConfigMap's rules.yaml loaded with the container's environment (secret values stand in)."""
    cfg = tmp_path / "rules.yaml"
    cfg.write_text(manifests()[("ConfigMap", "oper-tailer-rules")]["data"]["rules.yaml"], encoding="utf-8")
    env = container_env(container) | {"OPER_TOKEN": "from-the-secret"}
    return load_settings(cfg, environ=env)


def check_volumes_and_secret(spec: dict) -> dict[str, tuple[dict, dict]]:
    """Every mount names a volume, the ConfigMap and Secret they use exist; {mountPath: (mount, volume)}."""
    docs = manifests()
    volumes = {v["name"]: v for v in spec["volumes"]}
    [container] = spec["containers"]
    mounts = {}
    for mount in container["volumeMounts"]:
        assert mount["name"] in volumes, f"volumeMount {mount['name']} has no volume"
        mounts[mount["mountPath"]] = (mount, volumes[mount["name"]])
    rules = mounts["/etc/oper-tailer"][1]
    assert ("ConfigMap", rules["configMap"]["name"]) in docs
    for env in container["env"]:
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["key"] in docs[("Secret", ref["name"])]["stringData"]
    return mounts


def test_daemonset_follows_hostpath_logs_keeps_state_on_the_node_and_probes_healthz_on_the_metrics_port(
    tmp_path,
):
    spec = pod_spec("DaemonSet", "oper-tailer")
    [container] = spec["containers"]
    argv = container["command"] + container.get("args", [])
    assert argv[0] == "tailer" and command_for(argv[1:]).name == "run"
    mounts = check_volumes_and_secret(spec)
    settings = rules_settings(container, tmp_path)
    state_mount, state_volume = mounts[str(settings.state_dir)]
    assert state_volume["hostPath"]["type"] == "DirectoryOrCreate" and not state_mount.get("readOnly")
    for source in settings.sources:
        for glob in source.paths:
            logs = [(m, v) for path, (m, v) in mounts.items() if glob.startswith(path.rstrip("/") + "/")]
            assert logs, f"source {glob} is not under a mounted volume"
            assert "hostPath" in logs[0][1] and logs[0][0]["readOnly"] is True
    probe = container["livenessProbe"]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    port = ports.get(probe["port"], probe["port"])
    assert probe["path"] == "/healthz"
    assert settings.metrics_listen == f"0.0.0.0:{port}" and port == 9464
    assert spec["terminationGracePeriodSeconds"] > float(option_value(argv, "--grace"))


def test_indexed_job_gives_every_pod_its_own_one_based_shard_of_n(tmp_path):
    job = manifests()[("Job", "oper-tailer-replay")]["spec"]
    spec = job["template"]["spec"]
    assert job["completionMode"] == "Indexed" and spec["restartPolicy"] == "Never"
    [container] = spec["containers"]
    check_volumes_and_secret(spec)
    settings = rules_settings(container, tmp_path)
    assert settings.state_dir in {Path(m["mountPath"]) for m in container["volumeMounts"]}
    # Run the container's command with a stand-in `tailer` that prints its argv, once per index.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "tailer"
    fake.write_text('#!/usr/bin/env python3\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n')
    fake.chmod(0o755)
    n = job["completions"]
    shards = []
    for index in range(n):
        env = container_env(container) | {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
        env["JOB_COMPLETION_INDEX"] = str(index)
        out = subprocess.run(container["command"], env=env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        argv = json.loads(out.stdout)
        assert command_for(argv).name == "replay"
        k, total = parse_shard(option_value(argv, "--shard"))
        assert (k, total) == (index + 1, n)
        shards.append(k)
    assert sorted(shards) == list(range(1, n + 1))  # every file in exactly one shard, no shard twice
