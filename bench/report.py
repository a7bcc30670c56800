#!/usr/bin/env python3
"""report.py — writes docs/BENCHMARKS.md from one bench run's results.

    /usr/bin/python3 bench/report.py var/bench/<run> docs/BENCHMARKS.md

Every number in the report is read from the files bench/run.sh left in the
run directory (the load generator's JSON, chatd's /metrics and stderr, the
replay's report); the only constants here are the targets and anchors of the
issue, printed as such. Python 3 standard library only.
"""
from __future__ import annotations

import glob
import json
import os
import re
import sys
from collections import Counter

RUN, OUT = sys.argv[1], sys.argv[2]

# The targets (2 cores, loopback, MariaDB on the same machine).
T_RSS_BYTES = 8 * 1024
T_P99_1000_US = 5_000
T_P99_5000_US = 20_000
T_STORED_1TO1 = 10_000
T_DELIV_G100 = 100_000
T_FANOUT_US = 100_000
# The anchors, quoted beside the measured ceilings (not measured here).
ANCHORS = [
    "a bare libmicrohttpd long-poll server holds a parked poll in about 5 KB of RSS and wakes "
    "10,000 parked polls at 1,000/s with p99 ≈ 1.5 ms",
    "MariaDB commits about 20,000 single-row transactions/s at 8 threads",
    "Prosody: about 2,400 msg/s at 100% of a core, about 33 KB per idle session",
]


def load(name):
    p = os.path.join(RUN, name + ".json")
    if not os.path.exists(p):
        return None
    try:
        return json.load(open(p))
    except ValueError:
        return None


def failed(name):
    return os.path.exists(os.path.join(RUN, name + ".failed.json"))


def dbstat_delta(name):
    """MariaDB's status counters over one load-generator run (after - before),
    as a dict, or None when the run did not record them."""
    def read(suffix):
        p = os.path.join(RUN, f"{name}.dbstat-{suffix}")
        if not os.path.exists(p):
            return None
        out = {}
        for line in open(p):
            k, _, v = line.strip().partition("\t")
            try:
                out[k] = float(v)
            except ValueError:
                pass
        return out
    a, b = read("before"), read("after")
    if not a or not b:
        return None
    return {k: b[k] - a.get(k, 0) for k in b}


env = load("env") or {}
sizes = load("sizes") or {}


# ----------------------------------------------------------- formatting ---

def n0(x):
    return "—" if x is None else f"{x:,.0f}"


def ms(us):
    return "—" if us is None else (f"{us / 1000:,.2f} ms" if us < 10_000 else f"{us / 1000:,.1f} ms")


def kb(b):
    return "—" if b is None else f"{b / 1024:,.1f} KiB"


def pct(x):
    return "—" if x is None else f"{x:,.0f} %"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    r = a / b
    return f"{r:.2f}×" if r < 100 else f"{r:,.0f}×"


def verdict(ok, val, target, lower_is_better):
    if val is None:
        return "not measured"
    if ok:
        return "**met**"
    if lower_is_better:
        return f"**MISSED** ({val / target:.1f}× the target)"
    return f"**MISSED** ({val / target * 100:.0f} % of the target)"


def get(d, *path, default=None):
    for k in path:
        if d is None:
            return default
        if isinstance(k, int):
            d = d[k] if isinstance(d, list) and len(d) > k else None
        else:
            d = d.get(k) if isinstance(d, dict) else None
    return default if d is None else d


rows_summary = []   # (scenario, figure, measured, ceiling text, ratio, target, verdict)
notes = []


def summary(scn, fig, measured, ceiling="—", rto="—", target="—", verd="—"):
    rows_summary.append((scn, fig, measured, ceiling, rto, target, verd))


# ------------------------------------------------------------ ceilings ---

ceil_h = load("ceil-healthz")
ceil_n = load("ceil-nginx")
ceil_bh = load("bare-healthz")
ceil_db = {}
for p in glob.glob(os.path.join(RUN, "ceil-db-*.json")):
    m = re.findall(r"ceil-db-(\d+)\.json", p)
    if m:
        ceil_db[int(m[0])] = load(f"ceil-db-{m[0]}")
ceil_db.setdefault(64, None)
f2_db = load("f2-ceil-db-64")
nginx_missing = os.path.exists(os.path.join(RUN, "ceil-nginx.missing.json"))

rps_h = get(ceil_h, "requests_per_s")
rps_n = get(ceil_n, "requests_per_s")
rps_bh = get(ceil_bh, "requests_per_s")
cps64 = get(ceil_db[64], "commits_per_s")

# -------------------------------------------------------------- S1 park ---

s1 = []
s1_mem4 = load("s1-mem4-10000")
for p in sorted(glob.glob(os.path.join(RUN, "s1-[0-9]*.json")), key=lambda p: int(re.findall(r"s1-(\d+)", p)[0])):
    d = json.load(open(p))
    s1.append(d)
bare_s1 = load("bare-s1")
bare_s1_4 = load("bare-s1-mem4")
chat_mem = sizes.get("chat_connection_memory_kb")
chat_env = open(os.path.join(RUN, "chat_env.txt")).read().split() if os.path.exists(os.path.join(RUN, "chat_env.txt")) else []
bare_rss = get(bare_s1, "rss_bytes_per_poll")

# ----------------------------------------------------------- S2 latency ---

s2 = load("s2")
bare_s2 = load("bare-s2")


def phase_at(d, rate):
    for ph in get(d, "phases", default=[]):
        if abs(ph.get("rate", 0) - rate) < 0.5:
            return ph
    return None


# -------------------------------------------------------- S3 throughput ---

s3 = {g: load(f"s3-g{g}") for g in (1, 10, 100, 1000)}
f2_s3 = load("f2-s3-g1")
s4 = load("s4")
s5 = load("s5")

# ------------------------------------------------------------ S6 replay ---

s6 = None
s6_out = os.path.join(RUN, "s6.out")
if os.path.exists(s6_out):
    txt = open(s6_out, encoding="utf-8", errors="replace").read()
    rc = open(os.path.join(RUN, "s6.rc")).read().strip() if os.path.exists(os.path.join(RUN, "s6.rc")) else "?"
    s6 = {"text": txt, "rc": rc}

    def grab(rx, conv=lambda s: float(s.replace(",", ""))):
        m = re.search(rx, txt)
        return conv(m.group(1)) if m else None

    s6["throughput"] = grab(r"throughput: ([\d,\.]+) msg/s")
    s6["over_s"] = grab(r"msg/s over ([\d,\.]+) s")
    s6["setup_s"] = grab(r"setup \(registration, logins, groups\) ([\d,\.]+) s")
    s6["stored"] = grab(r"stored ([\d,]+) \(201\)")
    s6["expected"] = grab(r"deliveries: expected ([\d,]+)")
    s6["received"] = grab(r"received ([\d,]+)")
    s6["lost"] = grab(r"lost ([\d,]+)")
    s6["dup"] = grab(r"duplicated ([\d,]+)")
    s6["ooo"] = grab(r"out of order ([\d,]+)")
    s6["p50"] = grab(r"latency send→deliver: p50 ([\d,\.]+) ms")
    s6["p99"] = grab(r"latency send→deliver: p50 [\d,\.]+ ms, p99 ([\d,\.]+) ms")
    s6["receipts"] = grab(r"receipt ([\d,]+)")
    s6["inbox_errors"] = (re.search(r"inbox errors: (.*)", txt) or [None, None])[1]
    s6["result"] = (re.search(r"result: (.*)", txt) or [None, None])[1]
    s6["users"] = grab(r"users ([\d,]+)")
    t = os.path.join(RUN, "s6.time")
    if os.path.exists(t):
        f = open(t).read().split()
        if len(f) == 6:
            wall = float(f[3]) - float(f[0])
            s6["wall_s"] = wall
            s6["chatd_cpu_pct"] = (float(f[4]) - float(f[1])) / wall * 100 if wall > 0 else None
            s6["db_cpu_pct"] = (float(f[5]) - float(f[2])) / wall * 100 if wall > 0 else None
elif os.path.exists(os.path.join(RUN, "s6.rc")):
    s6 = {"text": "", "rc": open(os.path.join(RUN, "s6.rc")).read().strip()}

# ------------------------------------------------------------- summary ---

loaded = False
la0 = env.get("loadavg_start") or []
la1 = env.get("loadavg_end") or []
cores = env.get("cores") or 2
try:
    # The start only: by the end the bench itself has loaded the machine.
    loaded = float(la0[0]) > cores * 0.75
except (ValueError, IndexError):
    pass

# Ceilings
if ceil_h:
    summary("ceiling", "load generator → chatd `GET /healthz`, 64 connections",
            f"{n0(rps_h)} req/s (p99 {ms(get(ceil_h, 'latency', 'p99_us'))})",
            f"nginx `return 204`: {n0(rps_n)} req/s" if rps_n else "nginx: not measured",
            ratio(rps_h, rps_n))
if ceil_n:
    summary("ceiling", "load generator → nginx `return 204`, 64 connections",
            f"{n0(rps_n)} req/s (p99 {ms(get(ceil_n, 'latency', 'p99_us'))}); load generator CPU "
            f"{pct(get(ceil_n, 'loadgen_cpu_pct'))} of a core", "(the ceiling)", "1.00×")
elif nginx_missing:
    summary("ceiling", "load generator → nginx `return 204`", "not measured: nginx is not installed")
if ceil_bh:
    summary("ceiling", "load generator → bare libmicrohttpd `GET /healthz`",
            f"{n0(rps_bh)} req/s", f"nginx: {n0(rps_n)} req/s" if rps_n else "—", ratio(rps_bh, rps_n))
for t in sorted(ceil_db, reverse=True):
    d = ceil_db[t]
    if d:
        summary("ceiling", f"bare MariaDB single-row commits, {t} connections (flush=1)",
                f"{n0(d['commits_per_s'])} commits/s (p99 {ms(get(d, 'latency', 'p99_us'))})",
                "(the ceiling)" if t != 8 else "anchor: ≈ 20,000/s at 8 threads",
                "1.00×" if t != 8 else ratio(d["commits_per_s"], 20000))
if f2_db:
    summary("ceiling", "bare MariaDB single-row commits, 64 connections, flush=2",
            f"{n0(f2_db['commits_per_s'])} commits/s", f"flush=1: {n0(cps64)}/s",
            ratio(f2_db["commits_per_s"], cps64))

# S1
for d in s1:
    n = d["n"]
    per = d.get("rss_bytes_per_poll")
    ok = per is not None and per <= T_RSS_BYTES
    summary("S1 park", f"chatd RSS per parked poll, {n:,} parked ({d['procs']} load process{'es' if d['procs'] > 1 else ''})",
            kb(per), f"bare libmicrohttpd, {get(bare_s1, 'n', default=0):,} parked, same {chat_mem} KiB "
            f"connection memory: {kb(bare_rss)}" if bare_rss else "—",
            ratio(per, bare_rss), "≤ 8 KiB", verdict(ok, per, T_RSS_BYTES, True))
    if d is s1[-1] and bare_s1_4:
        summary("S1 park", f"bare libmicrohttpd with 4 KiB connection memory, {get(bare_s1_4, 'n', default=0):,} parked",
                kb(bare_s1_4.get("rss_bytes_per_poll")), f"with {chat_mem} KiB: {kb(bare_rss)}",
                ratio(bare_s1_4.get("rss_bytes_per_poll"), bare_rss), "≤ 8 KiB",
                verdict(bare_s1_4.get("rss_bytes_per_poll", 1e9) <= T_RSS_BYTES, bare_s1_4.get("rss_bytes_per_poll"), T_RSS_BYTES, True))
    if d is s1[-1] and s1_mem4:
        summary("S1 park", "experiment: chatd with `CHAT_CONNECTION_MEMORY_KB=4`, 10,000 parked",
                kb(s1_mem4.get("rss_bytes_per_poll")), f"bare libmicrohttpd, 4 KiB: {kb(get(bare_s1_4, 'rss_bytes_per_poll'))}",
                ratio(s1_mem4.get("rss_bytes_per_poll"), get(bare_s1_4, "rss_bytes_per_poll")), "≤ 8 KiB",
                verdict(s1_mem4.get("rss_bytes_per_poll", 1e9) <= T_RSS_BYTES, s1_mem4.get("rss_bytes_per_poll"), T_RSS_BYTES, True))
    summary("S1 park", f"chatd idle CPU with {n:,} parked", pct(d.get("idle_cpu_pct")) + " of a core",
            f"bare: {pct(get(bare_s1, 'idle_cpu_pct'))}" if bare_s1 and n == 10000 else "—")
if s1:
    big = s1[-1]
    parked = (big.get("parked_reported") or 0) - (big.get("parked_baseline") or 0)
    want = big["n"]
    summary("S1 park", "parked polls held at once (the file limit allows about "
            f"{sizes.get('nofile_hard', 0) - 1000:,} after a margin)",
            f"{parked:,} of {want:,} asked", f"open-file limit {n0(sizes.get('nofile_hard'))}",
            ratio(parked, sizes.get("nofile_hard")), f"≈ {want:,}",
            verdict(parked >= want, parked, want, False))

# S2
for rate, target in ((1000, T_P99_1000_US), (5000, T_P99_5000_US)):
    ph = phase_at(s2, rate)
    bph = phase_at(bare_s2, rate)
    if ph:
        p99 = get(ph, "deliver_latency", "p99_us")
        achieved = ph.get("stored_per_s")
        summary("S2 latency", f"send→deliver p99, {rate:,} msg/s, {get(s2, 'n', default=0):,} parked",
                f"{ms(p99)} (p50 {ms(get(ph, 'deliver_latency', 'p50_us'))}, p99.9 "
                f"{ms(get(ph, 'deliver_latency', 'p999_us'))}, max {ms(get(ph, 'deliver_latency', 'max_us'))}); "
                f"stored {n0(achieved)}/s",
                f"bare libmicrohttpd: p99 {ms(get(bph, 'deliver_latency', 'p99_us'))}" if bph else "—",
                ratio(p99, get(bph, "deliver_latency", "p99_us")), f"≤ {target // 1000} ms",
                verdict(p99 is not None and p99 <= target, p99, target, True))

# S3
for g in (1, 10, 100, 1000):
    d = s3[g]
    if not d:
        continue
    ph = d["phase"]
    name = "1:1" if g == 1 else f"groups of {g:,}"
    st = ph["stored_per_s"]
    tgt = f"≥ {T_STORED_1TO1:,}/s" if g == 1 else "—"
    ver = verdict(st >= T_STORED_1TO1, st, T_STORED_1TO1, False) if g == 1 else "—"
    summary("S3 throughput", f"messages stored/s, {name}, {d['senders']} senders (durable)",
            f"{n0(st)}/s (send p99 {ms(get(ph, 'send_latency', 'p99_us'))})",
            f"MariaDB commits @64: {n0(cps64)}/s", ratio(st, cps64), tgt, ver)
    dl = ph["deliveries_per_s"]
    summary("S3 throughput", f"deliveries/s, {name}", f"{n0(dl)}/s", "—",
            ratio(dl, T_DELIV_G100) + " of the target" if g == 100 else "—",
            f"≥ {T_DELIV_G100:,}/s" if g == 100 else "—",
            verdict(dl >= T_DELIV_G100, dl, T_DELIV_G100, False) if g == 100 else "—")
if f2_s3 and s3[1]:
    a = s3[1]["phase"]["stored_per_s"]
    b = f2_s3["phase"]["stored_per_s"]
    summary("S3 throughput", "messages stored/s, 1:1, database on flush=2 (not durable)",
            f"{n0(b)}/s", f"flush=1 (durable): {n0(a)}/s", ratio(b, a))

# S4
if s4:
    p50 = get(s4, "from_201_to_last", "p50_us")
    mx = get(s4, "from_201_to_last", "max_us")
    summary("S4 fan-out", f"201 → last of {s4['members']:,} parked members has it "
            f"({s4['complete']} of {s4['messages']} messages complete)",
            f"p50 {ms(p50)}, max {ms(mx)}", f"send → 201: p50 {ms(get(s4, 'from_send_to_201', 'p50_us'))}",
            "—", "≤ 100 ms",
            verdict(mx is not None and mx <= T_FANOUT_US, mx, T_FANOUT_US, True)
            if s4["complete"] == s4["messages"] else
            f"**MISSED** ({s4['messages'] - s4['complete']} of {s4['messages']} messages did not reach every "
            f"member within {s4.get('deliver_cap_s', 30):.0f} s)")
    summary("S4 fan-out", "receipt storm after each message (until no poll answer for 300 ms, capped)",
            f"p50 {ms(get(s4, 'receipts_settle', 'p50_us'))}, max {ms(get(s4, 'receipts_settle', 'max_us'))}",
            f"cap {s4.get('settle_cap_s', 0):.0f} s")

# S5
if s5:
    summary("S5 history", f"pages of 50 per second, {s5['conns']} connections, {s5['threads']} threads × {s5['depth']:,} messages",
            f"{n0(s5['pages_per_s'])} pages/s = {n0(s5['messages_per_s'])} messages/s (p99 {ms(get(s5, 'latency', 'p99_us'))})",
            f"chatd /healthz: {n0(rps_h)} req/s", ratio(s5["pages_per_s"], rps_h))

# S6
if s6 and s6.get("throughput") is not None:
    st1 = get(s3[1], "phase", "stored_per_s")
    summary("S6 replay", f"IRC replay at full speed ({s6.get('users') and int(s6['users']):,} users)",
            f"{n0(s6['throughput'])} msg/s; send→deliver p99 {s6.get('p99')} ms",
            f"S3 1:1: {n0(st1)}/s", ratio(s6["throughput"], st1))
elif s6:
    summary("S6 replay", "IRC replay", f"did not complete (exit {s6['rc']}); see s6.log")

# Search (bench/search.py): query latency over the IRC sample repeated, and
# what the indexer costs the send path (searchcost: S3 1:1, indexer off/on).
search = load("search")
if search:
    common = [c for c in search["cases"] if c["case"] == "common"]
    worst = max(c["p99_ms"] for c in common)
    summary("Search", f"p99 of a common word (“{common[0]['q']}”, in "
            f"{search['words']['common'][1]:.0%} of messages) over {n0(search['messages'])} messages",
            f"{worst} ms (worst of the two users)", "—", "—", "≤ 200 ms",
            verdict(worst <= 200, worst, 200, True))
sc = {}
for idx in ("false", "true"):
    v = [get(load(f"searchcost-{idx}-{r}"), "phase", "stored_per_s") for r in (1, 2)]
    v = [x for x in v if x is not None]
    if v:
        sc[idx] = sorted(v)[len(v) // 2] if len(v) % 2 else sum(v) / len(v)
if "false" in sc and "true" in sc:
    summary("Search cost", "S3 1:1 msg/s with the indexer on (mean of 2 alternating rounds)",
            f"{n0(sc['true'])}/s", f"indexer off: {n0(sc['false'])}/s",
            ratio(sc["true"], sc["false"]), "≥ 0.9× (within the ±15 % spread)",
            verdict(sc["true"] >= 0.9 * sc["false"], sc["true"] / sc["false"], 0.9, False))

# ------------------------------------------------------------- cluster ---
# bench/cluster.py (the step `cluster`): scripts/cluster.sh's three Galera
# nodes, Redis, three chatd and nginx, in one run.

cl_setup = load("cluster-setup")
cl_lat = load("cluster-latency")
cl_tp1 = load("cluster-tp-1")
cl_tp3 = load("cluster-tp-3")
cl_tplg = load("cluster-tp-1-loadgen")
cl_ws = load("cluster-writers-single")
cl_wm = load("cluster-writers-multi")
cl_park1 = load("cluster-park-1")
cl_park3 = {n: load(f"cluster-park-3-{n}") for n in ("c1", "c2", "c3")}
cl_park3s = load("cluster-park-3")   # the three nodes' /metrics sampled during it
cl_fo = load("cluster-failover")
T_CROSS_P99 = 1.5      # the issue's: cross-node p99 ≤ 1.5 × same-node p99
T_FAILOVER_S = 10.0    # the issue's: first successful send ≤ 10 s after the writer is killed


def galera_delta(d, key):
    """Sum over the Galera nodes of a status counter's change over a cluster run
    (nodes that did not answer at either end, e.g. a killed one, left out)."""
    a, b = get(d, "galera_before") or {}, get(d, "galera_after") or {}
    vals = [b[g][key] - a[g][key] for g in a if a.get(g) and b.get(g) and key in a[g] and key in b[g]]
    return sum(vals) if vals else None


def galera_by_node(d, key):
    a, b = get(d, "galera_before") or {}, get(d, "galera_after") or {}
    return {g: (b[g][key] - a[g][key]) if a.get(g) and b.get(g) else None for g in sorted(a)}


def cl_held(d):
    if not d:
        return None
    return (d.get("parked_reported") or 0) - (d.get("parked_baseline") or 0)


def sec(x):
    return "—" if x is None else f"{x:,.2f} s"


cl_cert = {}
for name, d in (("single", cl_ws), ("multi", cl_wm), ("tp-1", cl_tp1), ("tp-3", cl_tp3)):
    if d:
        cl_cert[name] = (galera_delta(d, "wsrep_local_cert_failures"), galera_delta(d, "wsrep_local_bf_aborts"),
                         galera_delta(d, "wsrep_replicated"))

if cl_lat:
    cs, cc = get(cl_lat, "same", "send_to_deliver") or {}, get(cl_lat, "cross", "send_to_deliver") or {}
    p99s, p99c = cs.get("p99_us"), cc.get("p99_us")
    summary("cluster latency", f"send→deliver p99, cross-node (sent through one chatd, the poll parked on "
            f"another), {cl_lat['pairs']} pairs one message at a time, {cl_lat['seconds']} s",
            f"{ms(p99c)} (p50 {ms(cc.get('p50_us'))}, {n0(cc.get('n'))} messages)",
            f"same node: p99 {ms(p99s)} (p50 {ms(cs.get('p50_us'))}, {n0(cs.get('n'))} messages)",
            ratio(p99c, p99s), f"≤ {T_CROSS_P99:g}× same node",
            verdict(p99c is not None and p99s is not None and p99c <= T_CROSS_P99 * p99s,
                    None if p99c is None or p99s is None else p99c / p99s, T_CROSS_P99, True))
    summary("cluster latency", "send→deliver p50, cross-node", ms(cc.get("p50_us")),
            f"same node: {ms(cs.get('p50_us'))}", ratio(cc.get("p50_us"), cs.get("p50_us")))
if cl_tp3 or cl_tp1:
    summary("cluster throughput", f"messages stored/s, 1:1 closed loop, {get(cl_tp3, 'senders', default='?')} senders, "
            f"through c1 c2 c3 ({get(cl_tp3, 'cross_pairs', default='?')} of the pairs across nodes)",
            f"{n0(get(cl_tp3, 'stored_per_s'))}/s (send p99 {ms(get(cl_tp3, 'send_latency', 'p99_us'))})",
            f"1 node (c1), same client: {n0(get(cl_tp1, 'stored_per_s'))}/s", 
            ratio(get(cl_tp3, "stored_per_s"), get(cl_tp1, "stored_per_s")))
if cl_tplg:
    summary("cluster throughput", "the same 1-node load from the C load generator (S3's `loadgen throughput`)",
            f"{n0(get(cl_tplg, 'phase', 'stored_per_s'))}/s",
            f"1 node, Python client: {n0(get(cl_tp1, 'stored_per_s'))}/s",
            ratio(get(cl_tplg, "phase", "stored_per_s"), get(cl_tp1, "stored_per_s")))
if cl_ws or cl_wm:
    cs_, cm_ = cl_cert.get("single", (None,) * 3), cl_cert.get("multi", (None,) * 3)
    summary("cluster writers", "messages stored/s with each chatd writing through its own Galera node "
            "(w1→g1, w2→g2, w3→g3)",
            f"{n0(get(cl_wm, 'stored_per_s'))}/s; certification failures {n0(cm_[0])}, brute-force aborts {n0(cm_[1])}",
            f"all through g1 (as `make cluster`): {n0(get(cl_ws, 'stored_per_s'))}/s; certification failures "
            f"{n0(cs_[0])}, brute-force aborts {n0(cs_[1])}",
            ratio(get(cl_wm, "stored_per_s"), get(cl_ws, "stored_per_s")))
if cl_park1 or cl_park3s:
    held3 = None if not cl_park3s else cl_park3s["max_sum"] - cl_park3s.get("baseline_sum", 0)
    summary("cluster park", f"parked polls held by the cluster at once ({n0(get(cl_park3s, 'asked'))} asked: "
            f"{n0(get(cl_park3s, 'asked_per_node'))} on each of c1 c2 c3; the sum of their `/metrics`)",
            f"{n0(held3)}", f"one node (c1): {n0(cl_held(cl_park1))} of {n0(get(cl_park1, 'n'))} asked",
            ratio(held3, cl_held(cl_park1)))
if cl_fo:
    gap = cl_fo.get("gap_s")
    summary("cluster failover", f"first successful send after g1, the Galera node every chatd writes "
            f"through, is killed (SIGKILL), {cl_fo['pairs']} senders through nginx",
            sec(gap), f"longest stretch without a successful send: {sec(cl_fo.get('stall_s'))}", "—",
            f"≤ {T_FAILOVER_S:g} s",
            verdict(gap is not None and gap <= T_FAILOVER_S, gap, T_FAILOVER_S, True)
            if gap is not None else f"**MISSED** (no send succeeded within {cl_fo.get('observed_s', 0):.0f} s)")
for name in ("cluster", "cluster-latency", "cluster-tp", "cluster-writers", "cluster-park", "cluster-failover"):
    if failed(name):
        why = (load(name + ".failed") or {}).get("why", "")
        summary("cluster", f"step {name}", f"**failed**: {why[:200]}")


# ---------------------------------------------------------- correctness ---

corr = []  # scenario, stored, expected, delivered, lost, dup, ooo, corrupt, final lost, errors


def errs_text(*objs):
    c = Counter()
    for o in objs:
        for k, v in (o or {}).items():
            c[k] += v
    return ", ".join(f"{k} × {v:,}" for k, v in c.most_common(6)) or "none"


def add_corr(name, d, ph):
    if not d or not ph:
        return
    fin = d.get("final") or {}
    corr.append((name, ph["stored"], f"{ph.get('not_sent', 0):,} / {ph.get('unanswered', 0):,}", ph["expected_deliveries"], ph["delivered"],
                 ph.get("late", 0), ph["lost"], ph["duplicated"], ph["out_of_order"], ph["corrupted"],
                 fin.get("lost"), errs_text(ph.get("errors"), get(d, "loop", "errors"))
                 + (f"; {d['stream_reads_unfinished']:,} devices' final reads did not finish: their "
                    "missing messages count as lost unverified" if d.get("stream_reads_unfinished") else "")))


for ph in get(s2, "phases", default=[]):
    add_corr(f"S2 {ph['name']}", s2, ph)
for g in (1, 10, 100, 1000):
    if s3[g]:
        add_corr(f"S3 {s3[g]['phase']['name']}", s3[g], s3[g]["phase"])
if f2_s3:
    add_corr("S3 1:1, flush=2", f2_s3, f2_s3["phase"])
if s4:
    add_corr("S4 fan-out", s4, s4["phase"])
for ph in get(bare_s2, "phases", default=[]):
    add_corr(f"bare S2 {ph['name']}", bare_s2, ph)
for label, d in (("cluster send→deliver (same and cross node)", cl_lat), ("cluster 1 node", cl_tp1),
                 ("cluster 3 nodes", cl_tp3), ("cluster, one writer", cl_ws), ("cluster, three writers", cl_wm),
                 ("cluster failover (g1 killed)", cl_fo)):
    if d:
        corr.append((label, d["stored"], "—", d["expected_deliveries"], d["delivered"],
                     d.get("late", d.get("late_over_5s", 0)),
                     d["lost"], d["duplicated"], d["out_of_order"], d["corrupted"], d["lost"],
                     errs_text(d.get("send_errors"), d.get("poll_errors"))
                     + (f"; {d['final_reads_unfinished']} devices' final reads did not finish"
                        if d.get("final_reads_unfinished") else "")))
if cl_tplg:
    add_corr("cluster 1 node, C load generator", cl_tplg, cl_tplg["phase"])

all_clean = all(c[6] == 0 and c[7] == 0 and c[8] == 0 and c[9] == 0 and not c[10]
                for c in corr if not c[0].startswith("bare"))
if s6 and s6.get("lost") is not None:
    all_clean = all_clean and s6["lost"] == 0 and s6["dup"] == 0 and s6["ooo"] == 0
summary("all", "correctness: lost / duplicated / out of order / corrupted, every chatd scenario",
        "0 / 0 / 0 / 0" if all_clean else "see the correctness table", "—", "—", "0 / 0 / 0",
        "**met**" if all_clean else "**MISSED**")

# ------------------------------------------------------- server's logs ---

logs = []
for p in sorted(glob.glob(os.path.join(RUN, "chatd-*.err"))):
    name = os.path.basename(p)[6:-4]
    c = Counter()
    for line in open(p, encoding="utf-8", errors="replace"):
        line = line.strip()
        m = re.match(r"^\S+Z (\w+) (.*)$", line)
        if not m or "open-file limit" in line:
            continue
        msg = re.sub(r"\d+", "N", m.group(2))
        c[f"{m.group(1)} {msg}"] += 1
    if c:
        logs.append((name, c))


def metric_hist(path, name):
    """(count, p50 upper bound s, p99 upper bound s) from a Prometheus histogram."""
    if not os.path.exists(path):
        return None
    buckets = []
    for line in open(path):
        m = re.match(rf'^{name}_bucket\{{.*le="([^"]+)"\}} (\d+)', line)
        if m:
            buckets.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), int(m.group(2))))
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]

    def q(f):
        for le, c in buckets:
            if c >= f * total:
                return le
        return float("inf")
    finite = max((le for le, _ in buckets if le != float("inf")), default=0)
    return total, q(0.5), q(0.99), finite


stages = []
for name in ["s2", "s3-g1", "s3-g10", "s3-g100", "s3-g1000", "s4", "s6", "f2-s3-g1"]:
    p = os.path.join(RUN, name + ".metrics")
    a = metric_hist(p, "chatd_send_commit_seconds")
    b = metric_hist(p, "chatd_commit_wake_seconds")
    if a or b:
        stages.append((name, a, b))

# ---------------------------------------------------------------- write ---

out = []
w = out.append
mode = env.get("mode", sizes.get("mode", "?"))
w("# Benchmarks\n")
w(f"Generated by `make bench{'-long' if mode == 'long' else ''}` (`bench/run.sh {mode}`) on "
  f"{env.get('started', '?')}; every figure below comes from that run's files in "
  f"`{os.path.relpath(RUN, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))}` and was written by "
  "`bench/report.py`. Do not edit this file by hand: run `make bench` again. The targets and "
  "anchors are the issue's and are marked as such.\n")
if loaded:
    w(f"> **The machine was busy during this run** (load average {' / '.join(la0)} at the start, "
      f"{' / '.join(la1) if la1 else '?'} at the end, on {cores} cores): other work competed with "
      "chatd, MariaDB and the load generator for the CPU, so these figures understate what the "
      "machine can do. Compare them with the ceilings measured in the same run, not with the "
      "targets alone.\n")
w("## Machine\n")
v = env.get("versions", {})
w("| | |\n|---|---|")
w(f"| cores | {env.get('cores')} ({env.get('cpu_model', '')}) |")
w(f"| memory | {env.get('mem_kib', 0) / 1048576:.1f} GiB |")
w(f"| open-file limit | {n0(sizes.get('nofile_hard'))} per process (chatd and the load generator alike) |")
w(f"| kernel | {env.get('kernel')} |")
w(f"| load average | start {' / '.join(la0)}; end {' / '.join(la1) if la1 else '?'} |")
w(f"| chatd | git {env.get('git')}{' with uncommitted changes in src/, handlers/ or sql/' if env.get('git_dirty') else ''}, release build (-O2) |")
for k in ("mariadb", "libmicrohttpd", "libmariadb", "jansson", "nginx", "gcc"):
    w(f"| {k} | {v.get(k, '?')} |")
w(f"| chatd settings | threads {sizes.get('chat_threads')}, connection_memory_kb {chat_mem}"
  + (f"; from the environment: {' '.join('`' + e + '`' for e in chat_env)}" if chat_env else "; otherwise defaults") + " |")
w(f"| run | {mode}, {env.get('duration_s', '?')} s in all |")
w("")

w("## Summary\n")
w("Each figure beside the ceiling measured in the same run (ratio = figure ÷ ceiling) and the "
  "issue's target. Latencies are p50/p99/p99.9/max from HDR-like histograms (1.6 % buckets).\n")
w("| scenario | figure | measured | ceiling (same run) | ratio | target | verdict |")
w("|---|---|---|---|---|---|---|")
for r in rows_summary:
    w("| " + " | ".join(str(x) for x in r) + " |")
w("")
w("Anchors quoted by the issue (not measured here; the bare libmicrohttpd rows above are this "
  "run's own measurement of the first): " + "; ".join(ANCHORS) + ".\n")


def cpu_line(ph):
    """chatd / MariaDB / load generator CPU of a phase, and their sum, as text."""
    c, d, l = get(ph, "server", "cpu_pct"), get(ph, "db", "cpu_pct"), ph.get("loadgen_cpu_pct")
    if None in (c, d, l):
        return "CPU not measured"
    return (f"chatd {c:.0f} %, MariaDB {d:.0f} %, load generator {l:.0f} % of a core — "
            f"{c + d + l:.0f} % of the machine's {cores * 100} %")


missed = []
d1 = s3.get(1)
if d1 and d1["phase"]["stored_per_s"] < 10000:
    ph, st = d1["phase"], dbstat_delta("s3-g1")
    per = (lambda k: st.get(k, 0) / max(ph["stored"], 1)) if st else (lambda k: 0)
    line = (f"- **S3 1:1, {n0(ph['stored_per_s'])} of 10,000 messages/s.** {cpu_line(ph)}: the "
            "three processes share two cores and use them up. ")
    if st:
        line += (f"Per message MariaDB ran {per('Questions'):.1f} statements in "
                 f"{per('Com_commit'):.2f} transactions (sends and acknowledgements are batched) "
                 f"and wrote {per('Handler_write') + per('Handler_update'):.0f} rows: the message, "
                 "the thread's and the sender's positions, an event in each member's stream and "
                 "the stream clock, the receiver's delivered position and its receipt event to "
                 "the sender, the acknowledgement marks (docs/delivery.md has the cost model). ")
    if f2_s3:
        line += (f"With the log flushed once a second (flush=2) it stores "
                 f"{n0(f2_s3['phase']['stored_per_s'])}/s, so durability costs "
                 f"{(f2_s3['phase']['stored_per_s'] / max(ph['stored_per_s'], 1) - 1) * 100:.0f} %: the "
                 "limit is the work per message in both processes, not the flush.")
    missed.append(line)
d100 = s3.get(100)
if d100 and d100["phase"]["deliveries_per_s"] < 100000:
    ph, st = d100["phase"], dbstat_delta("s3-g100")
    per = (lambda k: st.get(k, 0) / max(ph["stored"], 1)) if st else (lambda k: 0)
    rec = get(d100, "events", "receipt", default=0) / max(ph["stored"], 1)
    line = (f"- **S3 groups of 100, {n0(ph['deliveries_per_s'])} of 100,000 deliveries/s.** "
            f"{cpu_line(ph)}. Each message is one row in the group's log (members read it "
            f"from there, docs/delivery.md step c), and each of the 99 acknowledgements moves a "
            f"mark and a delivered position and writes a receipt event to the sender "
            f"({rec:.0f} receipt events reached devices per message)")
    if st:
        line += (f": MariaDB wrote {per('Handler_write') + per('Handler_update'):.0f} rows and ran "
                 f"{per('Questions'):.0f} statements per message")
    line += (". The acknowledgements are those rows; and every delivery is one long-poll round "
             "trip, which is where chatd's core goes (docs/delivery.md §5)")
    if st:
        rows = per("Handler_write") + per("Handler_update")
        line += (f"; 100,000 deliveries/s (1,000 messages/s) at this rate would be "
                 f"{rows * 1000:,.0f} row writes/s, against the {n0(per('Handler_write') * ph['stored_per_s'] + per('Handler_update') * ph['stored_per_s'])}/s "
                 "MariaDB managed here")
    line += "."
    missed.append(line)
ph5 = phase_at(s2, 5000)
if ph5 and get(ph5, "deliver_latency", "p99_us", default=0) > T_P99_5000_US:
    missed.append(f"- **S2 at 5,000 msg/s, p99 {ms(get(ph5, 'deliver_latency', 'p99_us'))} (target "
                  f"{ms(T_P99_5000_US)}).** Stored {n0(ph5.get('stored_per_s'))}/s; {cpu_line(ph5)}. "
                  "5,000/s open loop is close to what S3 shows the machine stores at all, so "
                  "sends queue behind the batch being committed.")
ph1 = phase_at(s2, 1000)
if ph1 and get(ph1, "deliver_latency", "p99_us", default=0) > T_P99_1000_US:
    line = (f"- **S2 at 1,000 msg/s, p99 {ms(get(ph1, 'deliver_latency', 'p99_us'))} (target "
            f"{ms(T_P99_1000_US)}, p50 {ms(get(ph1, 'deliver_latency', 'p50_us'))}).** "
            f"{cpu_line(ph1)}.")
    st2, st3 = dbstat_delta("s2"), dbstat_delta("s3-g1")
    if st2 and st3 and s2 and s3.get(1):
        n2 = max(sum(p.get("stored", 0) for p in s2.get("phases", [])), 1)
        n3 = max(s3[1]["phase"]["stored"], 1)
        line += (f" Sends arriving one at a time make small batches: MariaDB ran "
                 f"{st2.get('Questions', 0) / n2:.1f} statements per message over this run (its "
                 f"setup included) against {st3.get('Questions', 0) / n3:.1f} in S3 1:1, and is busy "
                 "even at this rate, so a send now and then waits for the batch before it.")
    missed.append(line)
for e in s1:
    kib = (e.get("rss_bytes_per_poll") or 0) / 1024
    if kib > 8:
        missed.append(f"- **S1 with {e.get('n', 0):,} parked: {kib:.1f} KiB per poll.** "
                      "The process's fixed memory is spread over fewer polls; from 10,000 up the "
                      "figure is the per-connection memory plus chatd's own state.")
if missed:
    w("### Missed targets: what the profile shows\n")
    w("Written from this run's figures (CPU from /proc, MariaDB's status counters around each run; "
      "docs/group-commit.md tells how the slow query log led to the changes so far).\n")
    for line in missed:
        w(line)
    w("")

if search:
    w("## Search — the IRC sample repeated\n")
    w(f"{n0(search['messages'])} messages in {n0(search['threads'])} group threads, loaded in "
      f"{search['load_s']} s with LOAD DATA; chatd's indexer (catch-up at start) took "
      f"{search['index_s']} s = {n0(search['index_msgs_per_s'])} messages/s for "
      f"{n0(search['postings'])} postings ({search['threads_behind']} threads left behind). "
      "Queries through HTTP, one at a time, 60 each, first page of 20; user A is in every "
      "thread (postings read across threads), user B in 20 (read thread by thread).\n")
    w("| user | threads | query | first page | p50 | p99 | max |")
    w("|---|---:|---|---:|---:|---:|---:|")
    for c in search["cases"]:
        w(f"| {c['user'].upper()} | {n0(c['threads'])} | {c['case']}: `{c['q']}` | "
          f"{c['hits_first_page']} | {c['p50_ms']} ms | {c['p99_ms']} ms | {c['max_ms']} ms |")
    w("")

w("## Correctness\n")
w("Every delivery is checked by the load generator: per device and thread a bitmap of the seqs "
  "received. *Not sent*: sends an open-loop schedule wanted but that were still waiting for a "
  "free connection when the window closed (the server was not keeping up); they are dropped, "
  "not sent late. *Unanswered*: sends still without an answer when the harness stopped waiting "
  "for them. *Late*: delivered, but only after the phase's drain (at most "
  f"{get(s2, 'drain_cap_s', default=get(s3[1], 'drain_cap_s', default=10)):.0f} s) had given up, "
  "either to the parked poll during a final wait or when, at the very end, every device still "
  "missing messages read its stream to the end (`timeout=0`, the parked connection closed "
  "unread). *Lost*: stored (answered 201/200) and still not in the member's stream after that "
  "read; *final lost* is the same count taken over every thread and member.\n")
w("| scenario | stored | not sent / unanswered | expected deliveries | delivered | late | lost | duplicated | out of order | corrupted | final lost | errors |")
w("|---|---|---|---|---|---|---|---|---|---|---|---|")
for c in corr:
    w("| " + " | ".join(n0(x) if isinstance(x, (int, float)) else str(x) for x in c) + " |")
if s6 and s6.get("lost") is not None:
    w(f"| S6 replay | {n0(s6['stored'])} | — | {n0(s6['expected'])} | {n0(s6['received'])} | — | {n0(s6['lost'])} | "
      f"{n0(s6['dup'])} | {n0(s6['ooo'])} | — | — | {s6.get('inbox_errors') or 'none'} |")
w("")

w("## Scenarios in detail\n")
if s1:
    w("### S1 park — RSS per parked poll, idle CPU\n")
    w("chatd is restarted before each size; RSS is read from `/proc/<pid>/status` before the "
      "first connection and again once `/metrics` reports every poll parked (plus 1 s). Each "
      "device polls `GET /v1/inbox` once for its cursor, then parks with `timeout=60`; idle CPU "
      "is chatd's over the idle window that follows.\n")
    w("| target | parked | load processes | time to park | RSS before | RSS parked | per poll | idle CPU | MariaDB idle CPU | connection errors |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for d in [x for x in (bare_s1, bare_s1_4) if x] + s1 + ([s1_mem4] if s1_mem4 else []):
        w(f"| {('bare libmicrohttpd, ' + ('4' if d is bare_s1_4 else str(chat_mem)) + ' KiB/conn') if d.get('bare') else ('chatd, 4 KiB/conn (experiment)' if d is s1_mem4 else 'chatd')} | {n0(d.get('parked_reported', 0) - d.get('parked_baseline', 0))} of {n0(d['n'])} | {d['procs']} | "
          f"{d['park_s']:.1f} s | {n0(d['rss_kb_before'])} KiB | {n0(d['rss_kb_parked'])} KiB | "
          f"{kb(d['rss_bytes_per_poll'])} | {pct(d['idle_cpu_pct'])} | {pct(d.get('idle_db_cpu_pct'))} | "
          f"{n0(d['connection_errors'])} |")
    w("")
for title, d in (("S2 latency — open loop, 1:1, with every device parked", s2),
                 ("S2 on the bare libmicrohttpd server (the anchor)", bare_s2)):
    if not d:
        continue
    w(f"### {title}\n")
    w(f"{d['n']:,} devices (one user, one session each) in {d['pairs']:,} direct threads, all "
      f"parked (in {d['park_s']:.1f} s). Sends are scheduled at a fixed rate round-robin over "
      "the pairs, alternating direction, on a pool of keep-alive connections (up to 512); "
      "latency counts from the *scheduled* time, so a server that falls behind shows it.\n")
    w("| rate | window | stored/s | not sent | send p50 / p99 | deliver p50 | p99 | p99.9 | max | send lag p99 | server CPU | MariaDB CPU | load gen CPU |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for ph in d["phases"]:
        dl = ph["deliver_latency"]
        w(f"| {ph['rate']:,.0f}/s | {ph['window_s']:.0f} s | {n0(ph['stored_per_s'])} | {n0(ph.get('not_sent', 0))} | "
          f"{ms(ph['send_latency']['p50_us'])} / {ms(ph['send_latency']['p99_us'])} | "
          f"{ms(dl['p50_us'])} | {ms(dl['p99_us'])} | {ms(dl['p999_us'])} | {ms(dl['max_us'])} | "
          f"{ms(ph['send_lag']['p99_us'])} | {pct(get(ph, 'server', 'cpu_pct'))} | "
          f"{pct(get(ph, 'db', 'cpu_pct'))} | {pct(ph['loadgen_cpu_pct'])} |")
    ev = d.get("events", {})
    w(f"\nInbox answers: {n0(ev.get('poll_answers'))}; events: message {n0(ev.get('message'))}, "
      f"receipt {n0(ev.get('receipt'))}, presence {n0(ev.get('presence'))}, thread {n0(ev.get('thread'))}.\n")
if any(s3.values()) or f2_s3:
    w("### S3 throughput — closed loop\n")
    w(f"{sizes.get('senders', 64)} senders, each with its own connection and its own thread (a direct "
      "thread, or a group whose other members are all parked), sending the next message as soon as "
      f"the previous one is answered; the first second is warm-up. Stored/s counts 201s inside the "
      "window; deliveries/s counts message events reaching parked devices inside it.\n")
    w("| run | devices parked | stored/s | deliveries/s | send p50 / p99 / max | deliver p50 / p99 | chatd CPU | MariaDB CPU | load gen CPU | receipt events (per message) | send errors |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for label, d in [("1:1", s3[1]), ("groups of 10", s3[10]), ("groups of 100", s3[100]),
                     ("groups of 1,000", s3[1000]), ("1:1, flush=2", f2_s3)]:
        if not d:
            continue
        ph = d["phase"]
        w(f"| {label} | {n0(d['devices'])} | {n0(ph['stored_per_s'])} | {n0(ph['deliveries_per_s'])} | "
          f"{ms(ph['send_latency']['p50_us'])} / {ms(ph['send_latency']['p99_us'])} / {ms(ph['send_latency']['max_us'])} | "
          f"{ms(ph['deliver_latency']['p50_us'])} / {ms(ph['deliver_latency']['p99_us'])} | "
          f"{pct(get(ph, 'server', 'cpu_pct'))} | {pct(get(ph, 'db', 'cpu_pct'))} | {pct(ph['loadgen_cpu_pct'])} | "
          f"{n0(get(d, 'events', 'receipt'))} ({get(d, 'events', 'receipt', default=0) / max(ph['stored'], 1):,.1f}) | {n0(ph['send_errors'])} |")
    w("")
    rows = []
    s2_all = load("s2")
    for label, name, d in [("S3 1:1", "s3-g1", s3[1]), ("S3 groups of 10", "s3-g10", s3[10]),
                           ("S3 groups of 100", "s3-g100", s3[100]),
                           ("S3 groups of 1,000", "s3-g1000", s3[1000]),
                           ("S3 1:1, flush=2", "f2-s3-g1", f2_s3),
                           ("S2 (both rates)", "s2", s2_all)]:
        st = dbstat_delta(name)
        if not d or not st:
            continue
        stored = max(sum(p.get("stored", 0) for p in d["phases"]) if "phases" in d
                     else d["phase"]["stored"], 1)
        per = lambda k: st.get(k, 0) / stored
        rows.append(f"| {label} | {n0(stored)} | {per('Questions'):,.1f} | "
                    f"{per('Com_commit'):,.2f} | {per('Com_rollback'):,.3f} | "
                    f"{per('Handler_read_key') + per('Handler_read_next') + per('Handler_read_rnd_next'):,.0f} | "
                    f"{per('Handler_write') + per('Handler_update'):,.0f} | {per('Innodb_data_fsyncs'):,.2f} |")
    if rows:
        w("#### Where the time goes: MariaDB's work per stored message\n")
        w("From MariaDB's status counters (`SHOW GLOBAL STATUS`) before and after each run, divided "
          "by the messages stored in it (the run's setup — threads, parking — included). Statements "
          "are every query chatd sent; commits count transactions (a batch of sends or of "
          "acknowledgements is one); rows read are index and table reads (`Handler_read_*`), rows "
          "written inserts and updates. MariaDB's CPU beside chatd's is in the table above: "
          "the database is the busier process.\n")
        w("| run | messages stored | statements | commits | rollbacks (deadlocks retried) | rows read | rows written | data fsyncs |")
        w("|---|---|---|---|---|---|---|---|")
        for r in rows:
            w(r)
        w("")
if s4:
    w("### S4 fan-out — one group, every member parked\n")
    w(f"One group of {s4['members']:,} members (the creator sends), every member's device parked "
      f"(in {s4['park_s']:.1f} s). Messages go one at a time; for each, the time from its `201` "
      "until the last member's device has it. Between messages the harness waits until no poll "
      f"has been answered for 300 ms (at most {s4.get('settle_cap_s', 0):.0f} s): every member's "
      "acknowledgement moves its delivered receipt, which is an event to every member.\n")
    w("| | n | p50 | p99 | max |\n|---|---|---|---|---|")
    for k, label in (("from_send_to_201", "send → 201"), ("from_201_to_last", "201 → last member"),
                     ("from_send_to_last", "send → last member"), ("receipts_settle", "receipt storm settles")):
        h = s4.get(k) or {}
        w(f"| {label} | {h.get('n', 0)} | {ms(h.get('p50_us'))} | {ms(h.get('p99_us'))} | {ms(h.get('max_us'))} |")
    ev = s4.get("events", {})
    w(f"\nEvents the members received: message {n0(ev.get('message'))}, receipt {n0(ev.get('receipt'))}, "
      f"presence {n0(ev.get('presence'))} ({n0(s4.get('setup_presence_events'))} of them while the members parked).\n")
if s5:
    w("### S5 history — pages of 50\n")
    w(f"{s5['threads']} direct threads with {s5['depth']:,} messages each (stored in SQL: history "
      f"reading is what is measured), {s5['conns']} connections in a closed loop, each asking "
      "`GET /v1/threads/{id}/messages?before=B&limit=50` for a random thread and `B`; every "
      "page is checked (50 messages, the right seqs, ascending, `has_more`).\n")
    lat = s5["latency"]
    w("| pages/s | messages/s | p50 | p99 | p99.9 | max | bad pages | errors | chatd CPU | MariaDB CPU | load gen CPU |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    w(f"| {n0(s5['pages_per_s'])} | {n0(s5['messages_per_s'])} | {ms(lat['p50_us'])} | {ms(lat['p99_us'])} | "
      f"{ms(lat['p999_us'])} | {ms(lat['max_us'])} | {n0(s5['bad_pages'])} | {n0(s5['errors'])} | "
      f"{pct(get(s5, 'server', 'cpu_pct'))} | {pct(get(s5, 'db', 'cpu_pct'))} | {pct(s5['loadgen_cpu_pct'])} |\n")
if s6:
    w("### S6 replay — the #ubuntu IRC sample\n")
    if sizes.get("s6_files") == "all":
        w("All the files of `data/ubuntu-irc/`, at full speed (`SPEED=0`), through "
          "`scripts/demo.sh` (`tools/demo/replay.py`), which registers every speaker over HTTP "
          "(Argon2id: the setup time below), parks one poll per user and checks every delivery.\n")
    else:
        w(f"The short run replays the first {sizes.get('s6_lines')} lines of the first "
          f"{sizes.get('s6_files')} files (a copy in the run directory) at full speed through "
          "`scripts/demo.sh`; `make bench-long` replays them all. Registration of every speaker "
          "goes over HTTP (Argon2id) and is reported as setup.\n")
    if s6.get("wall_s"):
        w(f"chatd used {pct(s6.get('chatd_cpu_pct'))} and MariaDB {pct(s6.get('db_cpu_pct'))} of a core "
          f"over the {s6['wall_s']:.0f} s of the replay (setup included). Exit status {s6['rc']}.\n")
    if s6.get("text"):
        w("```")
        w(s6["text"].strip())
        w("```\n")
    else:
        w(f"The replay did not finish (exit status {s6['rc']}); see `s6.log` in the run directory.\n")

def cl_cpu(d, names):
    c = get(d, "cpu_pct") or {}
    vals = [c.get(n) for n in names if c.get(n) is not None]
    return sum(vals) if vals else None


if cl_setup:
    w("## Cluster — three Galera nodes, Redis, three chatd, nginx\n")
    sz = cl_setup.get("sizes", {})
    ver = cl_setup.get("versions", {})
    ce = cl_setup.get("chatd_env", {})
    w(f"`bench/cluster.py` (the step `cluster`) starts `scripts/cluster.sh` in a temporary directory: "
      f"MariaDB Galera nodes g1 g2 g3 (galera-4 {ver.get('galera-4', '?')}, "
      "`innodb_flush_log_at_trx_commit=1` on each), one Redis "
      f"({ver.get('redis-server', '?')}), chatd c1 c2 c3 (`{cl_setup.get('chatd_bin')}`, "
      f"`CHAT_THREADS={ce.get('CHAT_THREADS')}`, `CHAT_SEND_WORKERS={ce.get('CHAT_SEND_WORKERS')}`, "
      f"`CHAT_ACK_WORKERS={ce.get('CHAT_ACK_WORKERS')}`, as cluster.sh starts them) and nginx "
      f"({ver.get('nginx', '?')}, sticky by bearer token), every chatd with `CHAT_DB_URL` "
      f"`{cl_setup.get('db_url')}`: the same host order everywhere, so all of them write through g1. "
      f"Up in {cl_setup.get('up_s', '?')} s; the whole step took {cl_setup.get('total_s', '?')} s "
      f"({', '.join(f'{k} {v} s' for k, v in (cl_setup.get('durations_s') or {}).items())}; "
      f"stopping {cl_setup.get('down_s', '?')} s). All of it shares the machine's {cores} cores with "
      "the client.\n")
    w("`build/loadgen` takes one URL, so it cannot send through one node to a poll parked on another: "
      "the latency, throughput, writer and failover scenarios use the asyncio HTTP/1.1 client of "
      "`bench/cluster.py` (keep-alive connections, one per device and per sender and node; "
      f"the throughput runs in {sz.get('workers', 1)} processes). Users are seeded in SQL through g1 "
      "as the load generator seeds them; every message's body is derived from its `client_msg_id`, "
      "and every member device's stream is checked (lost, duplicated, out of order, corrupted) after "
      "it has read it to the end. The parked-poll scenario is `build/loadgen park`.\n")
    if cl_lat:
        w("### Send → deliver across nodes\n")
        w(f"{cl_lat['pairs']} direct threads; pair *i*'s receiver parks its poll on node *i* mod 3, and "
          "its sender sends one message at a time — the next one 20–60 ms after the last was "
          "delivered — alternately through the receiver's node (same) and through one of the two "
          "others (cross), half the pairs starting with each: both kinds interleave over the same "
          f"{cl_lat['seconds']} s. Send→deliver is the time from the send's request to the poll "
          "answer carrying the message (one clock, the client's).\n")
        w("| | messages | send → 201 p50 / p99 | send → deliver p50 | p90 | p99 | p99.9 | max |")
        w("|---|---|---|---|---|---|---|---|")
        for kind in ("same", "cross"):
            a, b = get(cl_lat, kind, "send_to_201") or {}, get(cl_lat, kind, "send_to_deliver") or {}
            w(f"| {kind} node | {n0(get(cl_lat, kind, 'sends'))} | {ms(a.get('p50_us'))} / {ms(a.get('p99_us'))} | "
              f"{ms(b.get('p50_us'))} | {ms(b.get('p90_us'))} | {ms(b.get('p99_us'))} | {ms(b.get('p999_us'))} | "
              f"{ms(b.get('max_us'))} |")
        routes = cl_lat.get("by_route") or {}
        if routes:
            w("\nBy route (send node → poll node), p50 / p99: " + "; ".join(
                f"{k} {ms(v.get('p50_us'))} / {ms(v.get('p99_us'))} ({v.get('n')})" for k, v in routes.items()) + ".")
        cp = cl_lat.get("cpu_pct") or {}
        w(f"\nCPU over the run (% of a core): chatd {pct(cl_cpu(cl_lat, ['c1', 'c2', 'c3']))} (three), "
          f"g1 {pct(cp.get('g1'))}, g2 {pct(cp.get('g2'))}, g3 {pct(cp.get('g3'))}, Redis {pct(cp.get('redis'))}, "
          f"client {pct(cp.get('client'))}. Messages not delivered within 5 s: {n0(cl_lat.get('late_over_5s'))}.\n")
    runs = [(lbl, d) for lbl, d in (("1 node (c1)", cl_tp1), ("3 nodes (c1 c2 c3)", cl_tp3),
                                    ("3 chatd, all writing through g1", cl_ws),
                                    ("3 chatd, each through its own Galera node", cl_wm)) if d]
    if runs or cl_tplg:
        w("### Messages/s through one node and through three; one writer and three\n")
        w(f"A closed loop as S3 1:1: {get(runs[0][1] if runs else None, 'senders', default='?')} senders, each "
          "sending its next message as soon as the last one is answered, every member's device polling "
          f"(parked when idle); {get(runs[0][1] if runs else None, 'warm_s', default=1):g} s of warm-up, then "
          f"a window of {get(runs[0][1] if runs else None, 'window_s', default='?')} s. *1 node*: every device "
          "and every send on c1. *3 nodes*: pair *i*'s sender on node *i* mod 3 and its receiver on node "
          "(*i* div 3) mod 3 — all nine combinations, two thirds of the pairs across nodes, as sticky "
          "hashing spreads tokens. The writer runs are the 3-node load on three chatd started by "
          "`bench/cluster.py` itself (scripts/cluster.sh gives every chatd the one `CHAT_DB_URL` and has "
          "no per-node setting), with cluster.sh's environment for c1..c3 but each its own `CHAT_DB_URL` "
          "and `CHAT_MIGRATE=check`: *all through g1* gives all three the order g1,g2,g3; *each its own* "
          "gives w1 g1,g2,g3, w2 g2,g3,g1 and w3 g3,g1,g2. c1..c3 stay up, idle, meanwhile. Galera's "
          "counters are summed over g1 g2 g3 (`SHOW GLOBAL STATUS` before and after the run): "
          "*writesets* are `wsrep_replicated` (transactions a node originated), *certification "
          "failures* `wsrep_local_cert_failures` (a node's transaction that lost to a conflicting one "
          "from another node at commit: the whole transaction is rolled back), *brute-force aborts* "
          "`wsrep_local_bf_aborts` (a local transaction aborted by a replicated one); chatd retries "
          "such a transaction (`db: commit failed` in its log).\n")
        w("| run | stored/s | deliveries/s | send p50 / p99 | deliver p50 / p99 | chatd CPU (sum) | g1 / g2 / g3 CPU | Redis | client CPU | writesets (per message) | certification failures | brute-force aborts | `commit failed` logged | lost / dup / ooo |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for lbl, d in runs:
            cp = d.get("cpu_pct") or {}
            chatd_cpu = cl_cpu(d, [k for k in cp if k in ("c1", "c2", "c3", "w1", "w2", "w3")])
            client_cpu = cl_cpu(d, [k for k in cp if k.startswith("client")])
            w(f"| {lbl} | {n0(d['stored_per_s'])} | {n0(d['deliveries_per_s'])} | "
              f"{ms(get(d, 'send_latency', 'p50_us'))} / {ms(get(d, 'send_latency', 'p99_us'))} | "
              f"{ms(get(d, 'deliver_latency', 'p50_us'))} / {ms(get(d, 'deliver_latency', 'p99_us'))} | "
              f"{pct(chatd_cpu)} | {pct(cp.get('g1'))} / {pct(cp.get('g2'))} / {pct(cp.get('g3'))} | "
              f"{pct(cp.get('redis'))} | {pct(client_cpu)} | {n0(galera_delta(d, 'wsrep_replicated'))} "
              f"({(galera_delta(d, 'wsrep_replicated') or 0) / max(d['stored'], 1):.2f}) | "
              f"{n0(galera_delta(d, 'wsrep_local_cert_failures'))} | {n0(galera_delta(d, 'wsrep_local_bf_aborts'))} | "
              f"{n0(d.get('chatd_commit_failed_logged'))} | {d['lost']} / {d['duplicated']} / {d['out_of_order']} |")
        if cl_tplg:
            ph = cl_tplg["phase"]
            w(f"| 1 node (c1), C load generator | {n0(ph['stored_per_s'])} | {n0(ph['deliveries_per_s'])} | "
              f"{ms(ph['send_latency']['p50_us'])} / {ms(ph['send_latency']['p99_us'])} | "
              f"{ms(ph['deliver_latency']['p50_us'])} / {ms(ph['deliver_latency']['p99_us'])} | "
              f"{pct(get(ph, 'server', 'cpu_pct'))} | {pct(get(ph, 'db', 'cpu_pct'))} / — / — | — | "
              f"{pct(ph.get('loadgen_cpu_pct'))} | — | — | — | — | {ph['lost']} / {ph['duplicated']} / {ph['out_of_order']} |")
        w("")
        if cl_tp1 and cl_tp3:
            a, b = cl_tp1["stored_per_s"], cl_tp3["stored_per_s"]
            wa = (galera_delta(cl_tp1, "wsrep_replicated") or 0) / max(cl_tp1["stored"], 1)
            wb = (galera_delta(cl_tp3, "wsrep_replicated") or 0) / max(cl_tp3["stored"], 1)
            line = (f"**One node or three.** Through three nodes the closed loop stored {n0(b)} messages/s "
                    f"against {n0(a)} through one ({ratio(b, a)}). Every chatd writes through g1, so the "
                    f"three share one database writer (and here the same {cores} cores)")
            if wa and wb > 1.3 * wa:
                line += (f"; and each node batches only its own sends and acknowledgements, so the same "
                         f"load became {wb:.2f} Galera writesets per message against {wa:.2f} on one "
                         "node: smaller batches, each a replicated, certified and flushed commit on g1")
            w(line + (". More nodes add room for parked polls (below), not message throughput."
                      if b < a else ".") + "\n")
        if cl_ws and cl_wm:
            a, b = cl_ws["stored_per_s"], cl_wm["stored_per_s"]
            cs_, cm_ = cl_cert.get("single", (None,) * 3), cl_cert.get("multi", (None,) * 3)
            per = (lambda c: "—" if not c[2] or c[0] is None else f"{(c[0] + (c[1] or 0)) / c[2] * 100:.1f}")
            w(f"**One writer or three.** Writing through all three Galera nodes stored {n0(b)} messages/s "
              f"against {n0(a)} through g1 alone ({ratio(b, a)}), with {n0(cm_[0])} certification failures "
              f"and {n0(cm_[1])} brute-force aborts against {n0(cs_[0])} and {n0(cs_[1])} — "
              f"{per(cm_)} against {per(cs_)} aborted transactions per 100 writesets. "
              + ("Every group-commit batch holds the stream positions and receipt rows of many pairs, "
                 "and a pair whose members poll on two nodes has its send and its acknowledgement "
                 "committed through two Galera nodes: concurrent batches from different nodes touch the "
                 "same rows, so one of them fails certification as a whole and is run again. That is "
                 "why every chatd writes through one Galera node at a time (the same host order in "
                 "`CHAT_DB_URL` on every node), the others being standbys that take over when it fails."
                 if (cm_[0] or 0) + (cm_[1] or 0) > (cs_[0] or 0) + (cs_[1] or 0) else
                 "In this run writing through three nodes caused no more certification conflicts than "
                 "writing through one.") + "\n")
            e410 = {k: (get(d, "poll_errors") or {}).get("inbox 410", 0) for k, d in (("single", cl_ws), ("multi", cl_wm))}
            if e410["multi"] > e410["single"]:
                w(f"Polls answered `410 cursor_expired`: {e410['multi']} with three writers, {e410['single']} with "
                  "one. A poll woken through Redis by another node takes its events from that node's "
                  "wake-up; with three writers the next poll's cursor can be ahead of what this chatd's "
                  "own Galera node has applied yet, and chatd calls it expired (the client here retries "
                  "the same cursor, valid a moment later; the app would reload its state).\n")
    if cl_park1 or any(cl_park3.values()):
        w("### Parked polls: one node and the cluster\n")
        am = get(cl_park3s, "at_max") or {}
        w("`build/loadgen park` (S1's mode) on c1 alone, then on c1, c2 and c3 at once (three load "
          "generators; their seeding one after the other, their parking at the same time). Each node "
          "is restarted after it held polls: a poll whose client left stays parked until its timeout. "
          "Every node's open-file limit is the machine's, so one node holds at most about that many; "
          "through the local nginx (worker connections: half the file limit per worker, two per "
          "proxied poll) fewer would fit, so the polls go to the nodes directly.\n")
        w("| run | node | asked | held (chatd's `/metrics`) | time to park | RSS per poll | connection errors |")
        w("|---|---|---|---|---|---|---|")
        for lbl, node, d in ([("one node", "c1", cl_park1)] +
                             [("cluster", n, cl_park3[n]) for n in ("c1", "c2", "c3")]):
            if d:
                w(f"| {lbl} | {node} | {n0(d.get('n'))} | {n0(cl_held(d))} | {d.get('park_s', 0):.1f} s | "
                  f"{kb(d.get('rss_bytes_per_poll'))} | {n0(d.get('connection_errors'))} |")
        if cl_park3s:
            w(f"\nHeld at once: {n0(cl_park3s['max_sum'] - cl_park3s.get('baseline_sum', 0))} of "
              f"{n0(cl_park3s['asked'])} (c1 c2 c3's `chatd_parked_polls` summed, sampled every 0.25 s; "
              f"at the most, {' / '.join(n0(x) for x in am.get('per_node') or [])}). The load generators "
              "started earlier stay idle longer, so that their polls overlap.")
        w("")
    if cl_fo:
        w("### Failover: the writer killed\n")
        repl = galera_by_node(cl_fo, "wsrep_replicated")
        took = max((g for g in repl if repl[g]), key=lambda g: repl[g], default=None)
        w(f"{cl_fo['pairs']} direct threads, both members' devices polling through nginx; each sender "
          "sends through nginx, one message at a time with 50 ms between them. A send that fails (5xx, "
          "cut off, no answer in 20 s) goes again with the same `client_msg_id` after 100 ms. After "
          f"{cl_fo.get('warm_s'):.1f} s "
          + (f"(once every sender has had a send answered: {cl_fo['senders_ok_before']} of {cl_fo['pairs']} "
             f"had, send p50 / p99 {ms(get(cl_fo, 'send_latency_before', 'p50_us'))} / "
             f"{ms(get(cl_fo, 'send_latency_before', 'p99_us'))}) " if "senders_ok_before" in cl_fo else "")
          + "g1 — the Galera node every chatd writes through — is killed with "
          "SIGKILL (its process group, as `scripts/cluster.sh kill g1`). *Gap*: from the kill to the "
          "first 201/200 answering a send issued after it. *Stall*: the longest stretch without any "
          "successful answer (sends in flight at the kill included) between the last one before the "
          "kill and the first one answering a send issued after it.\n")
        rec = cl_fo.get("per_sender_recovery_s") or {}
        w("| gap | stall | per sender: kill → first success p50 / max | slowest request | sends ok before / after the kill | send errors after the kill | poll errors | writes after the kill went through |")
        w("|---|---|---|---|---|---|---|---|")
        w(f"| {sec(cl_fo.get('gap_s'))} | {sec(cl_fo.get('stall_s'))} | "
          f"{sec(None if rec.get('p50_us') is None else rec['p50_us'] / 1e6)} / "
          f"{sec(None if rec.get('max_us') is None else rec['max_us'] / 1e6)} "
          f"({rec.get('n', 0)} of {cl_fo['pairs']} senders) | {sec(cl_fo.get('slowest_request_s'))} | "
          f"{n0(cl_fo.get('sends_ok_before'))} / {n0(cl_fo.get('sends_ok_after'))} | "
          f"{errs_text(cl_fo.get('send_errors'))} | {errs_text(cl_fo.get('poll_errors'))} | "
          f"{took or '?'} ({', '.join(f'{g} {n0(v)}' for g, v in repl.items())} writesets originated) |")
        lg_ = cl_fo.get("chatd_log") or {}
        w(f"\nchatd's logs over the scenario: {n0(lg_.get('db: '))} lines from its database layer, "
          f"{n0(lg_.get('now writing through'))} `now writing through` (a node moving to another Galera "
          f"node), {n0(lg_.get('outcome unknown'))} a COMMIT whose connection was lost (outcome unknown), "
          f"{n0(lg_.get('commit failed'))} `commit failed`.\n")
    clogs = []
    for pth in sorted(glob.glob(os.path.join(RUN, "cluster-logs", "*.log"))):
        c = Counter()
        for line in open(pth, encoding="utf-8", errors="replace"):
            m = re.match(r"^\S+Z (warn|error) (.*)$", line.strip())
            if m and "open-file limit" not in line:
                c[f"{m.group(1)} {re.sub(r'[0-9]+', 'N', m.group(2))}"] += 1
        if c:
            clogs.append((os.path.basename(pth)[:-4], c))
    if clogs:
        w("#### What the cluster's chatd logged\n")
        w("Warnings and errors in c1..c3's logs (the whole step) and in the writer runs' chatd, numbers folded to N.\n")
        w("| chatd | count | message |\n|---|---|---|")
        for name, c in clogs:
            for msg, k in c.most_common(5):
                w(f"| {name} | {k:,} | `{msg[:140]}` |")
        w("")

if stages:
    w("## chatd's own stage histograms (`/metrics`)\n")
    w("Read from chatd's `/metrics` at the end of each scenario (bucket upper bounds, so coarse).\n")
    w("| scenario | sends | send → commit p50 / p99 | wakes | commit → wake p50 / p99 |")
    w("|---|---|---|---|---|")

    def fmt(h):
        if not h:
            return "—", "—"
        def b(x):
            return f"> {h[3] * 1000:g} ms" if x == float("inf") else f"≤ {x * 1000:g} ms"
        return n0(h[0]), f"{b(h[1])} / {b(h[2])}"
    for name, a, b in stages:
        an, aq = fmt(a)
        bn, bq = fmt(b)
        w(f"| {name} | {an} | {aq} | {bn} | {bq} |")
    w("")

if logs:
    w("## What chatd logged\n")
    w("Warnings and errors on chatd's stderr (log level `warn`), by scenario, numbers folded to N.\n")
    w("| chatd run | count | message |\n|---|---|---|")
    for name, c in logs:
        for msg, k in c.most_common(5):
            w(f"| {name} | {k:,} | `{msg[:140]}` |")
    w("")

failures = sorted(os.path.basename(p)[:-12] for p in glob.glob(os.path.join(RUN, "*.failed.json")))
if failures:
    w("## Steps that failed\n")
    w(", ".join(failures) + ": see their `.log` files in the run directory.\n")

w("## How it is measured\n")
w("""- **Load generator** (`bench/`, C, one thread, epoll, non-blocking HTTP/1.1 keep-alive
  connections, one request at a time per connection; `build/loadgen`). It measures its own CPU
  (`getrusage`) beside chatd's and MariaDB's (`/proc/<pid>/stat`; RSS from `/proc/<pid>/status`).
  Each run binds its connections to a source address of its own (127.0.0.x), so the ports of
  one run's closed connections (TIME_WAIT) are not the next run's.
- **Users are seeded in SQL; registration is not what is measured.** Registration and login
  cost an Argon2id hash each (≈ 50–100 ms, 4 at a time), so the harness registers one user over
  HTTP and bulk-inserts the others (`users`, `user_streams`, one `sessions` row each whose
  `token_hash` is SHA-256 of a random 43-character token, as `POST /v1/sessions` stores it),
  then does everything else over HTTP: threads, the inbox, sends, history. S6 registers its
  users over HTTP.
- **A device** is one session with one long-poll (`GET /v1/inbox?since=…&timeout=60&limit=500`)
  on a connection of its own, re-polling with the `next` it was given at once.
- **A message** carries in its `client_msg_id` the scenario phase, the sender, its number and
  its scheduled send time, and its body is derived from the id: send→deliver latency is the
  receiving time minus that send time on the generator's one monotonic clock, and a changed
  body counts as corrupted. A send answered 5xx or cut off is retried with the same
  `client_msg_id` (the server answers 200 with the original, nothing is stored twice).
- **Ceilings** in the same run: the generator against chatd's `/healthz`, against nginx
  `return 204` (keep-alive, no log), and against a bare libmicrohttpd long-poll server
  (`loadgen bare-server`: chatd's daemon options, events in memory, no database) for S1 and S2;
  a bare MariaDB single-row commit loop (`loadgen dbcommit`, one connection per thread,
  autocommit INSERTs) at 64, 16 (chatd's database connections) and 8 connections; and S3 1:1
  again with the database on `innodb_flush_log_at_trx_commit=2` (chatd with
  `CHAT_DB_REQUIRE_DURABLE=false`) to show what durability costs.
- **Short and long**: `make bench` runs every scenario at reduced duration (≤ 5 minutes in all);
  `make bench-long` runs the full durations (S1 idle 20 s, S2/S3/S5 30 s, S4 10 messages, S6
  the whole sample).
""")
w(f"This run ({mode}): S1 {sizes.get('s1_sizes', '?')} parked polls, idle {sizes.get('s1_idle_s')} s; "
  f"S2 {sizes.get('s2_n', 0):,} parked, {sizes.get('s2_s')} s per rate; S3 {sizes.get('s3_s')} s per "
  f"group size ({sizes.get('s3_groups')}); S4 {sizes.get('s4_messages')} messages to "
  f"{sizes.get('s4_members', 0):,} members; S5 {sizes.get('s5_s')} s over {sizes.get('s5_threads')} "
  f"threads of {sizes.get('s5_depth', 0):,}; S6 {sizes.get('s6_files')} files"
  + (f", first {sizes.get('s6_lines')} lines each" if sizes.get("s6_lines") else "")
  + f"; ceilings {sizes.get('ceil_s')} s (MariaDB {sizes.get('ceil_db_s')} s).\n")
cmds = os.path.join(RUN, "commands.txt")
if os.path.exists(cmds):
    w("## Commands of this run\n")
    w("`$URL` is the chatd (or nginx, or bare server) of the step, on an ephemeral port; `$RUN` the run directory.\n")
    w("```")
    for line in open(cmds):
        line = re.sub(r"--url http://127\.0\.0\.1:\d+", "--url $URL", line.rstrip())
        line = re.sub(r"--(server|db)-pid \d+ ", "", line)
        w(line)
    w("```")

os.makedirs(os.path.dirname(os.path.abspath(OUT)), exist_ok=True)
with open(OUT, "w") as f:
    f.write("\n".join(out) + "\n")
print(f"report: wrote {OUT} from {RUN}", file=sys.stderr)
