"""Historical files are replayed oldest first, and shards are stable.

These are the name conventions alone (what orders files with no timed line); event times come first and
are tested in tests/test_replay_order.py."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tailer.run.replay_order import in_shard, name_key, order_files, parse_shard


def names(paths):
    return [p.name for p in paths]


def test_numbered_rotation_oldest_first_whatever_the_given_order():
    given = [Path("/l/app.log"), Path("/l/app.log.1"), Path("/l/app.log.2.gz"), Path("/l/app.log.10.gz")]
    for _ in range(5):
        random.shuffle(given)
        assert names(order_files(given)) == ["app.log.10.gz", "app.log.2.gz", "app.log.1", "app.log"]


def test_dated_rotation_earliest_first_then_the_live_file():
    given = [Path("/l/gw.log"), Path("/l/gw.log-20261128"), Path("/l/gw.log-20261127.gz")]
    assert names(order_files(given)) == ["gw.log-20261127.gz", "gw.log-20261128", "gw.log"]


def test_log4j2_index_is_newer_the_higher_it_is_then_the_live_file():
    # DefaultRolloverStrategy's default fileIndex="max": app-1 is the oldest archive.
    given = [Path("/l/app-3.log.gz"), Path("/l/app.log"), Path("/l/app-10.log.gz"), Path("/l/app-1.log")]
    for _ in range(5):
        random.shuffle(given)
        assert names(order_files(given)) == ["app-1.log", "app-3.log.gz", "app-10.log.gz", "app.log"]


def test_logback_and_log4j2_dated_names_by_date_then_index_then_the_live_file():
    given = [
        Path("/l/app.log"),
        Path("/l/app.2026-11-27.1.log.gz"),
        Path("/l/app.2026-11-26.0.log.gz"),
        Path("/l/app.2026-11-27.0.log.gz"),
        Path("/l/app.2026-11-27.10.log.gz"),
        Path("/l/app.2026-11-25.log"),
    ]
    assert names(order_files(given)) == [
        "app.2026-11-25.log",
        "app.2026-11-26.0.log.gz",
        "app.2026-11-27.0.log.gz",
        "app.2026-11-27.1.log.gz",
        "app.2026-11-27.10.log.gz",
        "app.log",
    ]
    log4j2 = [
        Path("/l/svc-2026-11-28-1.log.gz"),
        Path("/l/svc-2026-11-27-10.log.gz"),
        Path("/l/svc-2026-11-27-9.log"),
    ]
    assert names(order_files(log4j2)) == [
        "svc-2026-11-27-9.log",
        "svc-2026-11-27-10.log.gz",
        "svc-2026-11-28-1.log.gz",
    ]


def test_python_timed_rotating_suffixes_earliest_first():
    given = [
        Path("/l/py.log"),
        Path("/l/py.log.2026-11-27_10-00-00"),
        Path("/l/py.log.2026-11-27_09-30-00.gz"),
        Path("/l/py.log.2026-11-26"),
    ]
    assert names(order_files(given)) == [
        "py.log.2026-11-26",
        "py.log.2026-11-27_09-30-00.gz",
        "py.log.2026-11-27_10-00-00",
        "py.log",
    ]


def test_a_dot_index_before_the_extension_is_not_guessed():
    # logback FixedWindowRollingPolicy makes app.1.log the newest, log4j2 would make it the oldest.
    assert {name_key(Path(f"/l/app.{n}.log")).set for n in (1, 2)} == {"/l/app.1.log", "/l/app.2.log"}


def test_separate_sets_stay_grouped_and_duplicates_collapse():
    given = [Path("/l/b.log"), Path("/l/a.log.1"), Path("/l/a.log"), Path("/l/b.log.1"), Path("/l/a.log")]
    assert names(order_files(given)) == ["a.log.1", "a.log", "b.log.1", "b.log"]


@pytest.mark.parametrize("text,expected", [("1/1", (1, 1)), ("2/4", (2, 4)), (" 3 / 3 ", (3, 3))])
def test_parse_shard_accepts_k_of_n(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/4", "5/4", "a/b", "1", "1/0"])
def test_parse_shard_refuses_nonsense(text):
    with pytest.raises(ValueError, match="K/N"):
        parse_shard(text)


def test_shards_partition_the_files():
    keys = [f"fingerprint-{i}" for i in range(200)]
    shares = [[k for k in keys if in_shard(k, shard, 4)] for shard in range(1, 5)]
    assert sorted(k for share in shares for k in share) == sorted(keys)
    assert all(share for share in shares)  # 200 keys over 4 shards: none empty
    assert shares[1] == [k for k in keys if in_shard(k, 2, 4)]  # stable
