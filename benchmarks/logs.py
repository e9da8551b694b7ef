"""Generated logs and the config that reads them: the shipped rules.yaml's rules, sources pointing here.

``write_log`` writes log4j-style lines (layout A of samples/logs/app.log, plus a share of the gateway's
layout B) where ``ops`` of the lines (3% by default) are operations the shipped rules turn into records;
the rest is noise: near misses of every rule (ERROR "VOTE_CREATE failed ...", DEBUG echoes, refused gateway
calls, unmapped actions), Chinese text, health checks, and Java stack traces whose lines repeat an
operation's words without its anchored prefix. Seeded: the same arguments give the same bytes.
"""

from __future__ import annotations

import random
from pathlib import Path

import yaml

from benchmarks import ROOT, TOKEN

T = "2026-11-{d:02d} {h:02d}:{m:02d}:{s:02d},{ms:03d}"
G = "[{d:02d}/Nov/2026:{h:02d}:{m:02d}:{s:02d} +0800]"
VOTE_ACTS = ("VOTE_CREATE", "VOTE_START", "VOTE_JOIN", "VOTE_DELETE")
LOTTERY_ACTS = ("lottery.create", "lottery.start", "lottery.join", "lottery.delete")

OPS = (
    "{t} [http-nio-8080-exec-{x}] INFO  c.a.vote.VoteService - {va} voteId={n} groupId={g} channelId=c{g} uid={u} title=周末聚餐",
    "{t} [http-nio-8080-exec-{x}] INFO  c.a.lottery.LotteryService - {la} lotteryId={n} gid={g} channel=c{g} operator={u} prize=红包x10",
    '{gt} 10.12.3.{x} "POST /api/v2/vote/{n}/join HTTP/1.1" 200 rt=0.012 op=vote_join vote_id={n} group={g} chan=c{g} user={u} nick="张伟" ua="okhttp/4.9.3" msg="用户参与投票"',
)
NOISE = (
    '{t} [http-nio-8080-exec-{x}] DEBUG c.a.web.HealthController - GET /actuator/health 200 {{"status":"UP"}}',
    "{t} [http-nio-8080-exec-{x}] INFO  c.a.web.AccessLogFilter - 查询投票列表 groupId={g} channelId=c{g} uid={u} size=20",
    "{t} [http-nio-8080-exec-{x}] INFO  c.a.web.AccessLogFilter - GET /api/channels/{g}/messages 200 {x}ms",
    "{t} [HikariPool-1 housekeeper] DEBUG com.zaxxer.hikari.pool.HikariPool - HikariPool-1 - Pool stats (total=10, active={x}, idle=8, waiting=0)",
    "{t} [main] INFO  c.a.Scheduler - 用户{u}的消息已投递 channelId=c{g} 内容=今晚八点开会，请准时参加",
    "{t} [http-nio-8080-exec-{x}] DEBUG c.a.cache.RedisCache - hit key=user:{u} ttl=300",
    # near misses: every rule's words, but not its whole shape
    "{t} [http-nio-8080-exec-{x}] ERROR c.a.vote.VoteService - VOTE_CREATE failed voteId={n} groupId={g} channelId=c{g} uid={u} reason=标题包含敏感词",
    "{t} [http-nio-8080-exec-{x}] DEBUG c.a.vote.VoteEventBus - will publish VOTE_JOIN",
    "{t} [http-nio-8080-exec-{x}] WARN  c.a.vote.VoteService - VOTE_JOIN rejected voteId={n} groupId={g} channelId=c{g} uid={u} reason=重复投票",
    "{t} [vote-archiver-1] INFO  c.a.vote.VoteService - VOTE_ARCHIVE voteId={n} groupId={g} channelId=c{g} uid=0",
    "{t} [http-nio-8080-exec-{x}] INFO  c.a.lottery.LotteryService - lottery.join lotteryId= gid={g} channel=c{g} operator={u}",
    "{t} [http-nio-8080-exec-{x}] INFO  c.a.lottery.LotteryController - 用户参与抽奖 uid={u}",
    '{gt} 10.12.7.{x} "POST /api/v2/vote/{n}/join HTTP/1.1" 409 rt=0.003 op=vote_join vote_id={n} group={g} chan=c{g} user={u} nick="𠀀仔" ua="okhttp/4.9.3" msg="重复参与投票"',
    '{gt} 127.0.0.1 "GET /healthz HTTP/1.1" 200 rt=0.000 op=- ua="kube-probe/1.27" msg="ok"',
)
TRACE = (
    "{t} [http-nio-8080-exec-{x}] ERROR c.a.vote.VoteController - 投票失败 uid={u}\n"
    "c.a.vote.VoteClosedException: VOTE_JOIN voteId={n} groupId={g} channelId=c{g} uid={u} 投票已结束\n"
    "\tat c.a.vote.VoteService.join(VoteService.java:142)\n"
    "\tat c.a.vote.VoteController.join(VoteController.java:57)\n"
    "\tat sun.reflect.GeneratedMethodAccessor88.invoke(Unknown Source)\n"
    "\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)\n"
    "\t... 48 common frames omitted"
)
TRACE_LINES = TRACE.count("\n") + 1


def write_log(path: Path, lines: int, *, ops: float = 0.03, seed: int = 7) -> int:
    """Write about ``lines`` lines (stack traces come whole); returns how many are operations."""
    rng = random.Random(seed)
    hits = written = 0
    with open(path, "w", encoding="utf-8") as out:
        buf: list[str] = []
        while written < lines:
            i = written
            s = i // 10
            v = {
                "t": T.format(d=1 + s // 86400 % 28, h=s // 3600 % 24, m=s // 60 % 60, s=s % 60, ms=i % 1000),
                "gt": G.format(d=1 + s // 86400 % 28, h=s // 3600 % 24, m=s // 60 % 60, s=s % 60),
                "x": rng.randrange(1, 200),
                "n": rng.randrange(10**6),
                "g": rng.randrange(1, 500),
                "u": rng.randrange(1, 10**6),
                "va": rng.choice(VOTE_ACTS),
                "la": rng.choice(LOTTERY_ACTS),
            }
            r = rng.random()
            if r < ops:
                buf.append(OPS[0 if r < ops * 0.5 else 1 if r < ops * 0.8 else 2].format(**v))
                hits += 1
                written += 1
            elif r < ops + 0.004:
                buf.append(TRACE.format(**v))
                written += TRACE_LINES
            else:
                buf.append(rng.choice(NOISE).format(**v))
                written += 1
            if len(buf) >= 4096:
                out.write("\n".join(buf) + "\n")
                buf.clear()
        if buf:
            out.write("\n".join(buf) + "\n")
    return hits


def write_config(
    path: Path,
    logs: list[str],
    *,
    url: str = "http://127.0.0.1:9/api/v1/OperReport",
    state: Path | None = None,
    poll: bool = False,
    max_backoff: float = 1.0,
    concurrency: int = 32,
    start_at: str = "beginning",
) -> Path:
    """The shipped rules.yaml with its endpoint and sources replaced: ``logs`` globs, utf-8."""
    cfg = yaml.safe_load((ROOT / "rules.yaml").read_text(encoding="utf-8"))
    cfg["endpoint"].update(
        {"url": url, "token": TOKEN, "concurrency": concurrency, "max_backoff": max_backoff, "timeout": 10}
    )
    cfg["sources"] = [
        {"paths": logs, "encoding": "utf-8", "start_at": start_at, "poll": poll, "max_line_bytes": 65536}
    ]
    cfg["state_dir"] = str(state or path.parent / "state")
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def rule_patterns() -> list[str]:
    cfg = yaml.safe_load((ROOT / "rules.yaml").read_text(encoding="utf-8"))
    return [rule["pattern"] for rule in cfg["rules"]]
