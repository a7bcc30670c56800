"""test_cluster_smoke.py — several nodes work as one (part of `make test`).

The whole cluster of `make cluster` (3 Galera nodes, Redis, 3 chatd, nginx)
in a temporary directory:
  - a message sent through node c1 wakes a poll parked on node c3, carried by
    the Redis bus (c3 counts a received wake; its reconcile loop, the
    database safety net, wakes nobody);
  - a logout through c1 answers the device's poll parked on c2 with 401 and
    c2 refuses the token at once (its auth cache was told);
  - under a small mixed load through nginx, one chatd is killed with
    `kill -9`, then the Galera writer is; afterwards every device holds
    every acknowledged message exactly once, in order, and every thread's
    history is gap-free.
"""

import json
import threading
import time

import pytest

from cluster import Cluster
from load import Load, call, metric, until_ok


@pytest.fixture(scope="module")
def cluster():
    with Cluster() as c:
        c.up()
        yield c
        reports = c.sanitizer_reports()
        assert not reports, f"sanitizer reports in chatd logs: {reports}"


def user(base, tag):
    name = "s" + tag + str(time.monotonic_ns() % 10**9)
    until_ok(lambda: call(base, "POST", "/v1/users", {"username": name, "password": "password123-long-enough"}),
             "register")
    st, b = until_ok(lambda: call(base, "POST", "/v1/sessions",
                                  {"username": name, "password": "password123-long-enough"}), "login")
    tok = b["token"]
    st, me = until_ok(lambda: call(base, "GET", "/v1/me", token=tok), "me")
    return me["user"]["id"], tok


def test_a_commit_on_one_node_wakes_a_poll_on_another(cluster):
    c1, c3 = cluster.chatd_urls["c1"], cluster.chatd_urls["c3"]
    a, ta = user(c1, "a")
    b, tb = user(c3, "b")
    st, t = until_ok(lambda: call(c1, "POST", "/v1/threads", {"member_ids": [b]}, token=ta), "thread")
    thread = t["thread"]["id"]
    st, head = until_ok(lambda: call(c3, "GET", "/v1/inbox", token=tb), "head")
    cursor = head["next"]
    # Drain what is there (the thread event), then park on c3.
    while True:
        st, got = call(c3, "GET", f"/v1/inbox?since={cursor}&timeout=0", token=tb)
        assert st == 200
        if got["next"] == cursor:
            break
        cursor = got["next"]
    wakes0 = metric(c3, "chatd_cluster_wakes_received_total")
    rec0 = metric(c3, "chatd_cluster_reconcile_wakes_total")
    out = {"bodies": []}

    def poll():
        # Other events (presence, receipts) may answer first: poll on.
        cur, deadline = cursor, time.monotonic() + 30
        while not out["bodies"] and time.monotonic() < deadline:
            st, got = call(c3, "GET", f"/v1/inbox?since={cur}&timeout=30", token=tb, timeout=40)
            assert st == 200
            out["bodies"] += [e["message"]["body"] for e in got["events"] if e["type"] == "message"]
            cur = got["next"]
        out["t"] = time.monotonic()

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.5)  # let the poll park (nothing can be missed: it registered first)
    sent = time.monotonic()
    st, m = call(c1, "POST", f"/v1/threads/{thread}/messages",
                 {"client_msg_id": "x1", "body": "across nodes"}, token=ta)
    assert st == 201, m
    th.join(40)
    assert out["bodies"] == ["across nodes"]
    # Carried by the bus, not by the database check (which runs every 5 s).
    assert metric(c3, "chatd_cluster_wakes_received_total") > wakes0
    assert metric(c3, "chatd_cluster_reconcile_wakes_total") == rec0
    assert out["t"] - sent < 5, "the wake came from the 5 s safety net, not the bus"


def test_a_logout_on_one_node_ends_the_session_on_another(cluster):
    c1, c2 = cluster.chatd_urls["c1"], cluster.chatd_urls["c2"]
    uid, tok = user(c1, "l")
    assert call(c2, "GET", "/v1/me", token=tok)[0] == 200  # c2 caches the session
    st, head = call(c2, "GET", "/v1/inbox", token=tok)
    out = {}
    th = threading.Thread(target=lambda: out.setdefault(
        "r", call(c2, "GET", f"/v1/inbox?since={head['next']}&timeout=30", token=tok, timeout=40)))
    th.start()
    time.sleep(0.5)
    assert call(c1, "DELETE", "/v1/sessions/current", token=tok)[0] == 204
    th.join(40)
    assert out["r"][0] == 401, out["r"]
    assert call(c2, "GET", "/v1/me", token=tok)[0] == 401


def test_nothing_is_lost_when_a_chatd_and_the_galera_writer_die(cluster):
    entry = cluster.nginx_url
    load = Load(entry, [entry], users=4)
    load.start(rate_per_sender=6)
    time.sleep(4)
    cluster.kill("c2")
    time.sleep(4)
    cluster.kill("g1")  # the writer: every chatd writes through g1 first
    time.sleep(10)
    cluster.restart("c2")
    time.sleep(3)
    load.finish()
    v = load.verdict()
    print("verdict:", v)
    assert v["acked"] > 50, v
    assert (v["lost"], v["duplicated"], v["out_of_order"], v["gaps"]) == (0, 0, 0, []), v
    # The survivors are one primary component of two.
    sizes = {g: cluster.wsrep(g).get("wsrep_cluster_size") for g in ("g2", "g3")}
    assert sizes == {"g2": "2", "g3": "2"}, sizes


def test_an_attachment_uploaded_on_one_node_is_read_on_another(cluster):
    """The nodes share one attachments directory: a file uploaded through c1,
    resumed through c2, is sent and downloaded through c3."""
    import hashlib
    import os
    import urllib.request

    c1, c2, c3 = (cluster.chatd_urls[n] for n in ("c1", "c2", "c3"))
    a, ta = user(c1, "att-a")
    b, tb = user(c3, "att-b")
    data = os.urandom(200_000)
    st, t = until_ok(lambda: call(c1, "POST", "/v1/threads", {"member_ids": [b]}, token=ta), "thread")
    st, up = call(c1, "POST", "/v1/uploads", {"filename": "x.bin", "size": len(data)}, token=ta)
    assert st == 201, up
    uid = up["upload"]["id"]

    def put(base, first, chunk):
        req = urllib.request.Request(f"{base}/v1/uploads/{uid}/content", data=chunk, method="PUT")
        req.add_header("Authorization", "Bearer " + ta)
        req.add_header("Content-Range", f"bytes {first}-{first + len(chunk) - 1}/{len(data)}")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())["upload"]

    assert put(c1, 0, data[:100_000])["received"] == 100_000
    done = put(c2, 100_000, data[100_000:])
    assert done["state"] == "complete"
    st, m = call(c2, "POST", f"/v1/threads/{t['thread']['id']}/messages",
                 {"client_msg_id": "att-1", "attachments": [uid]}, token=ta)
    assert st == 201, m
    req = urllib.request.Request(f"{c3}/v1/attachments/{uid}")
    req.add_header("Authorization", "Bearer " + tb)
    with urllib.request.urlopen(req, timeout=30) as r:
        got = r.read()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
