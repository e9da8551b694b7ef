#!/usr/bin/env python3
"""Regenerate the sample logs and the records they must give.

    python samples/make_samples.py              # rewrites samples/logs/* and samples/expected.jsonl
    python samples/make_samples.py --out DIR    # writes DIR/logs/* and DIR/expected.jsonl instead

Two legacy layouts, each holding all 8 operations of the OperReport spec plus the noise and near-misses a
rule must survive (failed operations, DEBUG echoes without ids, a missing lottery id, action words the map
lacks, a Java stack trace whose continuation lines repeat the ids, Chinese text):

* layout A, a Java/log4j service log, UTF-8, as logrotate leaves it: ``app.log`` (newest day),
  ``app.log.1`` (the day before), ``app.log.2.gz`` (the oldest day, gzip);
* layout B, a key=value gateway access log in gb18030 (with characters outside GBK): ``gateway.log``.

The expected records are computed here from what was written, never by the engine under test, so
``tests/test_samples.py`` compares two independent answers. Seeded: the same script writes the same text
(the .gz bytes may still differ across zlib versions, so the test compares its decompressed content).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

SEED = 20261128
SHANGHAI = ZoneInfo("Asia/Shanghai")
GATEWAY_TZ = timezone(timedelta(hours=8))  # the gateway writes a numeric offset: +0800
VOTE = {
    "create": "1504000120618",
    "start": "1504000120678",
    "join": "1504000120679",
    "delete": "1504000120617",
}
LOTTERY = {
    "create": "1505000120618",
    "start": "1505000120678",
    "join": "1505000120679",
    "delete": "1505000120617",
}
USERS = {42: "张伟", 43: "李娜", 1001: "小明", 10086: "王芳", 20077: "陈静", 31337: "欧阳修"}
# Only the gateway (gb18030) has these: 𠀀 (U+20000) and 㐀 (U+3400) are outside GBK.
GATEWAY_USERS = {**USERS, 52000: "𠀀仔", 52001: "林㐀"}
CHANNELS = [(5, "c1"), (5, "c9"), (12, "ch-7f3a"), (88, "c88")]  # (group id, channel id)
TITLES = ["周末聚餐", "年会节目投票", "团建去哪儿", "午饭吃什么"]
PRIZES = ["红包x10", "京东卡100元", "定制T恤", "年会头奖"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
UAS = [
    "Mozilla/5.0 (Linux; Android 12; V2118A) MicroMessenger/8.0.44",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) MicroMessenger/8.0.43",
    "okhttp/4.9.3",
]


@dataclass(slots=True)
class Event:
    at: datetime
    lines: list[str]
    record: dict | None = None  # the payload data the first line must give, or None


class Day:
    """Events of one day, sorted by time when written (stable: equal times keep the order they were added)."""

    def __init__(self, rng: random.Random, day: date, tz: tzinfo):
        self.rng, self.day, self.tz = rng, day, tz
        self.events: list[Event] = []

    def at(self, seconds: float) -> datetime:
        seconds = min(seconds, 86399.999)
        start = datetime.combine(self.day, time(), tzinfo=self.tz)
        return start + timedelta(milliseconds=int(seconds * 1000))

    def add(self, at: datetime, line: str | list[str], record: dict | None = None) -> None:
        self.events.append(Event(at, [line] if isinstance(line, str) else line, record))

    def write(self) -> tuple[str, list[dict]]:
        self.events.sort(key=lambda e: e.at)
        text = "".join(line + "\n" for e in self.events for line in e.lines)
        records = [{"ts": int(e.at.timestamp()), "data": e.record} for e in self.events if e.record]
        return text, records


def data(oper_id: str, gid: int, chan: str, uid: int, ext1: int, ext2: str) -> dict:
    return {"oper_id": oper_id, "gid": gid, "target_id": chan, "uid": uid, "ext1": str(ext1), "ext2": ext2}


# --- layout A: log4j "%d{yyyy-MM-dd HH:mm:ss,SSS} [%t] %-5p %c{1.} - %m%n" ---------------------------------


def app(at: datetime, thread: str, level: str, logger: str, msg: str) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S},{at.microsecond // 1000:03d} [{thread}] {level:<5} {logger} - {msg}"


def exec_thread(rng: random.Random) -> str:
    return f"http-nio-8080-exec-{rng.randint(1, 20)}"


def app_vote_story(d: Day, vid: int, t0: float, *, delete: bool, trace: bool, fail_first: bool) -> None:
    rng, svc = d.rng, "c.a.vote.VoteService"
    gid, chan = rng.choice(CHANNELS)
    owner = rng.choice(list(USERS))
    ids = f"voteId={vid} groupId={gid} channelId={chan}"
    th = exec_thread(rng)
    if fail_first:  # near-miss: the operation failed, nothing happened
        reason = "标题包含敏感词"
        d.add(
            d.at(t0 - 20),
            app(d.at(t0 - 20), th, "ERROR", svc, f"VOTE_CREATE failed {ids} uid={owner} reason={reason}"),
        )
    title = rng.choice(TITLES)
    msg = f"用户创建投票 uid={owner} nick={USERS[owner]} title={title}"
    d.add(d.at(t0), app(d.at(t0), th, "INFO", "c.a.vote.VoteController", msg))
    line = app(d.at(t0 + 0.004), th, "INFO", svc, f"VOTE_CREATE {ids} uid={owner} title={title}")
    d.add(d.at(t0 + 0.004), line, data(VOTE["create"], gid, chan, owner, vid, "app"))
    t = t0 + rng.randint(30, 1800)
    line = app(d.at(t), exec_thread(rng), "INFO", svc, f"VOTE_START {ids} uid={owner} options=3")
    d.add(d.at(t), line, data(VOTE["start"], gid, chan, owner, vid, "app"))
    voters = rng.sample([u for u in USERS if u != owner], 3)
    for uid in voters:
        t += rng.randint(5, 900)
        th = exec_thread(rng)
        # near-miss: the event bus echoes the action at DEBUG, without ids
        d.add(d.at(t), app(d.at(t), th, "DEBUG", "c.a.vote.VoteEventBus", "will publish VOTE_JOIN"))
        line = app(d.at(t + 0.002), th, "INFO", svc, f"VOTE_JOIN {ids} uid={uid} option={rng.randint(1, 3)}")
        d.add(d.at(t + 0.002), line, data(VOTE["join"], gid, chan, uid, vid, "app"))
    t += rng.randint(5, 300)
    again = voters[0]
    d.add(
        d.at(t),
        app(d.at(t), exec_thread(rng), "WARN", svc, f"VOTE_JOIN rejected {ids} uid={again} reason=重复投票"),
    )
    if trace:  # near-miss: a stack trace whose message repeats a well-formed action, on continuation lines
        t += rng.randint(5, 300)
        late = rng.choice([u for u in USERS if u not in voters])
        lines = [
            app(d.at(t), exec_thread(rng), "ERROR", svc, f"VOTE_JOIN failed {ids} uid={late}"),
            f"c.a.vote.VoteClosedException: VOTE_JOIN {ids} uid={late} 投票已结束",
            "\tat c.a.vote.VoteService.join(VoteService.java:142)",
            "\tat c.a.vote.VoteController.join(VoteController.java:57)",
            "\tat sun.reflect.GeneratedMethodAccessor212.invoke(Unknown Source)",
            "\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:883)",
            f"Caused by: java.lang.IllegalStateException: vote {vid} closed at {d.at(t - 60):%H:%M:%S}",
            "\tat c.a.vote.VoteState.check(VoteState.java:31)",
            "\t... 48 common frames omitted",
        ]
        d.add(d.at(t), lines)
    t += rng.randint(60, 3600)
    if delete:
        line = app(d.at(t), exec_thread(rng), "INFO", svc, f"VOTE_DELETE {ids} uid={owner}")
        d.add(d.at(t), line, data(VOTE["delete"], gid, chan, owner, vid, "app"))
    else:  # near-miss: an action word the map does not contain (matched, unmapped, counted)
        d.add(d.at(t), app(d.at(t), "vote-archiver-1", "INFO", svc, f"VOTE_ARCHIVE {ids} uid=0"))


def app_lottery_story(d: Day, lid: int, t0: float, *, delete: bool, missing_id: bool) -> None:
    rng, svc = d.rng, "c.a.lottery.LotteryService"
    gid, chan = rng.choice(CHANNELS)
    owner = rng.choice(list(USERS))
    ids = f"lotteryId={lid} gid={gid} channel={chan}"
    prize = rng.choice(PRIZES)
    line = app(
        d.at(t0), exec_thread(rng), "INFO", svc, f"lottery.create {ids} operator={owner} prize={prize}"
    )
    d.add(d.at(t0), line, data(LOTTERY["create"], gid, chan, owner, lid, "app"))
    t = t0 + rng.randint(30, 1800)
    line = app(d.at(t), "lottery-scheduler-1", "INFO", svc, f"lottery.start {ids} operator={owner}")
    d.add(d.at(t), line, data(LOTTERY["start"], gid, chan, owner, lid, "app"))
    for uid in rng.sample([u for u in USERS if u != owner], 3):
        t += rng.randint(5, 900)
        th = exec_thread(rng)
        d.add(d.at(t), app(d.at(t), th, "INFO", "c.a.lottery.LotteryController", f"用户参与抽奖 uid={uid}"))
        line = app(
            d.at(t + 0.003),
            th,
            "INFO",
            svc,
            f"lottery.join {ids} operator={uid} ticket={rng.randint(1, 999)}",
        )
        d.add(d.at(t + 0.003), line, data(LOTTERY["join"], gid, chan, uid, lid, "app"))
    if missing_id:  # near-miss: the client sent no lottery id (once empty, once absent)
        t += rng.randint(5, 300)
        d.add(
            d.at(t),
            app(
                d.at(t),
                exec_thread(rng),
                "INFO",
                svc,
                f"lottery.join lotteryId= gid={gid} channel={chan} operator=43",
            ),
        )
        d.add(
            d.at(t + 1),
            app(
                d.at(t + 1),
                exec_thread(rng),
                "INFO",
                svc,
                f"lottery.join gid={gid} channel={chan} operator=43",
            ),
        )
    t += rng.randint(60, 1800)
    # near-miss: drawing the winners is not an operation the platform asks for (unmapped word)
    d.add(
        d.at(t), app(d.at(t), "lottery-scheduler-1", "INFO", svc, f"lottery.draw {ids} operator=0 winners=3")
    )
    if delete:
        t += rng.randint(60, 3600)
        line = app(d.at(t), exec_thread(rng), "INFO", svc, f"lottery.delete {ids} operator={owner}")
        d.add(d.at(t), line, data(LOTTERY["delete"], gid, chan, owner, lid, "app"))


def app_noise(d: Day, first_day: bool) -> None:
    rng = d.rng
    if first_day:
        d.add(
            d.at(2),
            app(d.at(2), "main", "INFO", "c.a.VoteApplication", "Starting VoteApplication v3.2.1 on app-01"),
        )
        d.add(
            d.at(9.5),
            app(d.at(9.5), "main", "INFO", "c.a.VoteApplication", "Started VoteApplication in 7.412 seconds"),
        )
    for minute in range(0, 24 * 60, 10):  # Kubernetes probe every 10 minutes
        t = minute * 60 + rng.randint(0, 5000) / 1000
        d.add(
            d.at(t),
            app(
                d.at(t),
                exec_thread(rng),
                "DEBUG",
                "c.a.web.HealthController",
                'GET /actuator/health 200 {"status":"UP"}',
            ),
        )
    for minute in range(15, 24 * 60, 30):
        t, active = minute * 60, rng.randint(0, 4)
        stats = f"HikariPool-1 - Pool stats (total=10, active={active}, idle={10 - active}, waiting=0)"
        d.add(
            d.at(t),
            app(d.at(t), "HikariPool-1 housekeeper", "DEBUG", "com.zaxxer.hikari.pool.HikariPool", stats),
        )
    for _ in range(40):
        t, uid = rng.uniform(0, 86399), rng.choice(list(USERS))
        gid, chan = rng.choice(CHANNELS)
        msg = rng.choice(
            [
                f"GET /api/v1/groups/{gid}/members 200 {rng.randint(3, 90)}ms",
                f"用户 {USERS[uid]} 在频道 {chan} 发送消息 uid={uid}",
                f"slow redis command GET vote:list:{gid} took {rng.randint(200, 900)}ms",
                f"查询投票列表 groupId={gid} channelId={chan} uid={uid} size=20",
            ]
        )
        level = "WARN" if msg.startswith("slow") else "INFO"
        d.add(d.at(t), app(d.at(t), exec_thread(rng), level, "c.a.web.AccessLogFilter", msg))


def layout_a(
    rng: random.Random, day: date, first: bool, vote_base: int, lottery_base: int
) -> tuple[str, list[dict]]:
    d = Day(rng, day, SHANGHAI)
    app_noise(d, first)
    for i, t0 in enumerate([35 * 60 + 1.5, 9 * 3600 + 712.25, 15 * 3600 + 40.875]):
        app_vote_story(d, vote_base + i, t0, delete=i != 1, trace=i == 1, fail_first=i == 0)
    for i, t0 in enumerate([2 * 3600 + 9.5, 11 * 3600 + 3.125, 19 * 3600 + 77.0]):
        app_lottery_story(d, lottery_base + i, t0, delete=i != 2, missing_id=i == 1)
    return d.write()


# --- layout B: gateway access log, key=value, gb18030 ------------------------------------------------------


def gw(at: datetime, ip: str, req: str, status: int, rt: float, kv: str, ua: str, msg: str) -> str:
    stamp = f"{at.day:02d}/{MONTHS[at.month - 1]}/{at.year}:{at:%H:%M:%S %z}"  # %b without the locale
    return f'[{stamp}] {ip} "{req} HTTP/1.1" {status} rt={rt:.3f} {kv} ua="{ua}" msg="{msg}"'


def gw_op(d: Day, t: float, req: str, status: int, kv: str, msg: str, record: dict | None = None) -> None:
    ip = f"10.12.{d.rng.randint(0, 9)}.{d.rng.randint(2, 250)}"
    d.add(
        d.at(t), gw(d.at(t), ip, req, status, d.rng.randint(2, 80) / 1000, kv, d.rng.choice(UAS), msg), record
    )


def gw_story(d: Day, kind: str, oid: int, t0: float, *, fail: bool, missing: bool, unmapped: bool) -> None:
    rng, ops = d.rng, VOTE if kind == "vote" else LOTTERY
    gid, chan = rng.choice(CHANNELS)
    owner = rng.choice(list(GATEWAY_USERS))
    word = "投票" if kind == "vote" else "抽奖"
    ids = f"{kind}_id={oid} group={gid} chan={chan}"

    def op(t: float, action: str, uid: int, req: str, msg: str, status: int = 200) -> None:
        kv = f'op={kind}_{action} {ids} user={uid} nick="{GATEWAY_USERS[uid]}"'
        record = (
            data(ops[action], gid, chan, uid, oid, "gateway") if status == 200 and action in ops else None
        )
        gw_op(d, t, req, status, kv, msg, record)

    op(t0, "create", owner, f"POST /api/v2/{kind}/create", f"用户创建{word}")
    t = t0 + rng.randint(30, 1800)
    op(t, "start", owner, f"POST /api/v2/{kind}/{oid}/start", f"用户发起{word}")
    voters = rng.sample([u for u in GATEWAY_USERS if u != owner], 3)
    for uid in voters:
        t += rng.randint(5, 900)
        op(t, "join", uid, f"POST /api/v2/{kind}/{oid}/join", f"用户参与{word}")
    if fail:  # near-miss: the gateway logged the op but the backend refused it
        op(t + 7, "join", voters[0], f"POST /api/v2/{kind}/{oid}/join", f"重复参与{word}", status=409)
    if missing:  # near-miss: no id in the request
        kv = f'op={kind}_join group={gid} chan={chan} user=43 nick="{GATEWAY_USERS[43]}"'
        gw_op(d, t + 11, f"POST /api/v2/{kind}/join", 200, kv, f"{word}ID缺失")
    t += rng.randint(60, 3600)
    if unmapped:  # near-miss: an op word the map lacks
        op(t, "archive", owner, f"POST /api/v2/{kind}/{oid}/archive", f"归档{word}")
    else:
        op(t, "delete", owner, f"DELETE /api/v2/{kind}/{oid}", f"用户删除{word}")


def layout_b(rng: random.Random, day: date) -> tuple[str, list[dict]]:
    d = Day(rng, day, GATEWAY_TZ)
    for minute in range(0, 24 * 60, 10):
        t = minute * 60 + rng.randint(0, 59)
        d.add(d.at(t), gw(d.at(t), "127.0.0.1", "GET /healthz", 200, 0.0, "op=-", "kube-probe/1.27", "ok"))
    for _ in range(50):
        t, uid = rng.uniform(0, 86399), rng.choice(list(GATEWAY_USERS))
        gid, chan = rng.choice(CHANNELS)
        kv, req, msg = rng.choice(
            [
                (
                    f"op=msg_send group={gid} chan={chan} user={uid}",
                    f"POST /api/v2/msg/{chan}",
                    "大家好，今晚开会",
                ),
                (f"op=login user={uid}", "POST /api/v2/login", f"{GATEWAY_USERS[uid]} 登录成功"),
                (
                    f"op=vote_list group={gid} chan={chan} user={uid}",
                    f"GET /api/v2/vote?group={gid}",
                    "查询投票列表",
                ),
            ]
        )
        gw_op(d, t, req, 200, kv, msg)
    for i, t0 in enumerate([8 * 3600 + 5, 13 * 3600 + 1200, 20 * 3600 + 30]):
        gw_story(d, "vote", 9100 + i, t0, fail=i == 0, missing=False, unmapped=i == 2)
    for i, t0 in enumerate([60 * 7, 10 * 3600 + 15, 17 * 3600 + 600]):
        gw_story(d, "lottery", 7700 + i, t0, fail=i == 1, missing=i == 0, unmapped=False)
    return d.write()


def main(out: Path) -> None:
    rng = random.Random(SEED)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    files: list[tuple[str, list[dict]]] = []
    # Oldest first, as rotation left them: app.log.2.gz (26th), app.log.1 (27th), app.log (28th).
    for i, (name, day) in enumerate(
        [
            ("app.log.2.gz", date(2026, 11, 26)),
            ("app.log.1", date(2026, 11, 27)),
            ("app.log", date(2026, 11, 28)),
        ]
    ):
        text, records = layout_a(rng, day, i == 0, 900 + 10 * i, 7000 + 10 * i)
        raw = text.encode("utf-8")
        if name.endswith(".gz"):
            with (logs / name).open("wb") as f, gzip.GzipFile("app.log.2", "wb", 9, f, mtime=0) as gz:
                gz.write(raw)  # mtime=0: the same input gives the same bytes
        else:
            (logs / name).write_bytes(raw)
        files.append((name, records))
    text, records = layout_b(rng, date(2026, 11, 28))
    (logs / "gateway.log").write_bytes(text.encode("gb18030"))
    files.append(("gateway.log", records))
    with (out / "expected.jsonl").open("w", encoding="utf-8") as f:
        for name, records in files:
            for r in records:
                f.write(json.dumps({"file": f"logs/{name}", **r}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    main(parser.parse_args().out)
