#!/usr/bin/env python3
"""bench/search.py — the search benchmark (issue 15: p99 <= 200 ms for a
common word over 1 million messages).

    bench/search.py RUN_DIR CHATD_URL DB_SOCKET TARGET_MESSAGES

The #ubuntu IRC sample (data/ubuntu-irc, 27,500 lines in 21 files) is
repeated until TARGET_MESSAGES: each repetition of a file is a group
thread. The threads are made through the API by user A (a member of all of
them: the search reads the postings across threads) with user B in 20 of
them (few threads: read thread by thread) and C in the others; the messages go straight into
the database with LOAD DATA (a million sends through the API would take
the benchmark's whole budget, and the send path is measured elsewhere).
Then chatd is asked to catch up (the janitor's call, made here through a
restart by the caller: chatd indexes every thread behind its mark when it
starts) and the time to index everything is measured from the database;
then queries go through HTTP, one at a time, and their latencies are
recorded: the most common word, a middling one, a rare one, two words,
a prefix and a phrase, for A and for B.

Writes RUN_DIR/search-load.json (the load and the words chosen); run again
with --query after the restart to write RUN_DIR/search.json.
"""
import collections
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data", "ubuntu-irc")
LINE = re.compile(r"^\[\d\d:\d\d\] <([^>]+)> (.+)$")
WORD = re.compile(r"[a-z0-9_]+")


def api(url, method, path, body=None, token=None):
    req = urllib.request.Request(url + "/v1" + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=60) as r:
        text = r.read()
        return json.loads(text) if text else None


def user(url, name):
    pw = "bench-search-" + uuid.uuid4().hex
    api(url, "POST", "/users", {"username": name, "password": pw})
    s = api(url, "POST", "/sessions", {"username": name, "password": pw})
    return s["user"]["id"], s["token"]


def sql(sock, text, local_infile=False):
    cmd = ["mariadb", "--socket", sock, "-u", "root", "-N", "-B", "chatbench"]
    if local_infile:
        cmd.insert(1, "--local-infile=1")
    return subprocess.run(cmd, input=text, capture_output=True, text=True, check=True).stdout


def load(run, url, sock, target):
    files = sorted(f for f in os.listdir(DATA) if f.endswith(".txt"))
    lines = []
    for f in files:
        rows = []
        with open(os.path.join(DATA, f), encoding="utf-8", errors="replace") as fh:
            for ln in fh:
                m = LINE.match(ln.rstrip("\n"))
                if m and m.group(2).strip():
                    rows.append(m.group(2).strip()[:2000])
        lines.append(rows)
    per_round = sum(len(r) for r in lines)
    rounds = max(1, -(-target // per_round))
    tag = uuid.uuid4().hex[:6]
    a_id, a_tok = user(url, f"sa{tag}")
    b_id, b_tok = user(url, f"sb{tag}")
    c_id, c_tok = user(url, f"sc{tag}")
    for tok in (b_tok, c_tok):  # A's adds are no message requests
        api(url, "PUT", f"/contacts/{a_id}", {}, tok)
    t0 = time.monotonic()
    threads = []
    for r in range(rounds):
        for i, _ in enumerate(files):
            members = [b_id] if len(threads) < 20 else [c_id]
            t = api(url, "POST", "/threads", {"member_ids": members, "title": f"irc {r}.{i}"},
                    a_tok)["thread"]
            threads.append((t["id"], i))
    t_threads = time.monotonic() - t0
    # The messages, straight into the database.
    path = os.path.join(run, "search-messages.tsv")
    n = 0
    base = int(time.time() * 1000) - 30 * 86400000
    counts = collections.Counter()
    pairs = collections.Counter()
    with open(path, "w", encoding="utf-8") as out:
        for tid, fi in threads:
            for seq, body in enumerate(lines[fi], 1):
                if n >= target:
                    break
                esc = body.replace("\\", "\\\\").replace("\t", " ")
                out.write(f"{tid}\t{seq}\t{a_id if seq % 2 else b_id}\tb{n}\t{esc}\t{base + n * 2}\n")
                if n < per_round:
                    words = WORD.findall(body.lower())
                    counts.update(set(words))
                    pairs.update(set(zip(words, words[1:])))
                n += 1
    t1 = time.monotonic()
    sql(sock, f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE messages "
              "(thread_id, seq, sender_id, client_msg_id, body, created_at);\n"
              "UPDATE threads t JOIN (SELECT thread_id, MAX(seq) q, MAX(created_at) at "
              "FROM messages GROUP BY thread_id) m ON m.thread_id = t.id "
              "SET t.last_seq = m.q, t.updated_at = m.at;\n", local_infile=True)
    t_load = time.monotonic() - t1
    os.unlink(path)
    # Words: by how many messages of one round hold them.
    ranked = [w for w, _ in counts.most_common() if len(w) >= 2]
    common = ranked[0]
    middle = next(w for w in ranked if counts[w] <= counts[common] // 20 and len(w) >= 5)
    rare = next(w for w in reversed(ranked) if counts[w] >= 2 and len(w) >= 6)
    info = {"rounds": rounds, "threads": len(threads), "messages": n,
            "threads_s": round(t_threads, 1), "load_s": round(t_load, 1),
            "a": {"id": a_id, "token": a_tok}, "b": {"id": b_id, "token": b_tok},
            "words": {"common": [common, counts[common] / per_round],
                      "middle": [middle, counts[middle] / per_round],
                      "rare": [rare, counts[rare] / per_round]},
            "two_words": f"{ranked[1]} {middle}", "prefix": middle[:4] + "*",
            "phrase": '"' + " ".join(next(p for p, _ in pairs.most_common()
                                         if min(map(len, p)) >= 3)) + '"'}
    json.dump(info, open(os.path.join(run, "search-load.json"), "w"), indent=1)
    print(json.dumps({k: v for k, v in info.items() if k not in ("a", "b")}))


def behind(sock):
    return int(sql(sock, "SELECT COUNT(*) FROM threads t LEFT JOIN search_progress s "
                         "ON s.thread_id = t.id WHERE t.last_seq > COALESCE(s.indexed_seq, 0);")
               .strip())


def query(run, url, sock, started):
    info = json.load(open(os.path.join(run, "search-load.json")))
    # Indexing: chatd started at `started` (epoch s) and catches up.
    deadline = time.time() + 1800
    while behind(sock) > 0 and time.time() < deadline:
        time.sleep(1)
    index_s = time.time() - started
    postings = int(sql(sock, "SELECT COUNT(*) FROM search_terms;").strip())
    left = behind(sock)
    queries = {"common": info["words"]["common"][0], "middle": info["words"]["middle"][0],
               "rare": info["words"]["rare"][0], "two words": info["two_words"],
               "prefix": info["prefix"], "phrase": info["phrase"]}
    out = {"messages": info["messages"], "threads": info["threads"], "load_s": info["load_s"],
           "index_s": round(index_s, 1), "index_msgs_per_s": round(info["messages"] / index_s),
           "postings": postings, "threads_behind": left, "words": info["words"], "cases": []}
    for who in ("a", "b"):
        tok = info[who]["token"]
        for name, q in queries.items():
            lat, hits = [], 0
            for i in range(60):
                t = time.monotonic()
                r = api(url, "GET", "/search/messages?" + urllib.parse.urlencode({"q": q, "limit": 20}),
                        None, tok)
                lat.append((time.monotonic() - t) * 1000)
                hits = len(r["results"])
            lat.sort()
            out["cases"].append({"user": who, "threads": info["threads"] if who == "a" else 20,
                                 "case": name, "q": q, "hits_first_page": hits,
                                 "p50_ms": round(lat[len(lat) // 2], 1),
                                 "p99_ms": round(lat[int(len(lat) * 0.99) - 1], 1),
                                 "max_ms": round(lat[-1], 1)})
    json.dump(out, open(os.path.join(run, "search.json"), "w"), indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    if len(sys.argv) >= 6 and sys.argv[1] == "--query":
        query(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    elif len(sys.argv) == 5:
        load(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(__doc__)
