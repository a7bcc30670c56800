"""test_smoke_infra.py — `make cluster`'s set-up works: three Galera nodes in
one primary component, the API through nginx and through each chatd, and a
chatd killed with -9 does not show through nginx.

One cluster for the module (tests/cluster/cluster.py, in a temporary
directory), torn down at the end; a chatd sanitizer report found in the logs
after the shutdown fails the module. Only 127.0.0.1; every call has a
timeout.
"""

import time
import uuid

import pytest

from cluster import Cluster
from load import call


def retry_busy(fn, tries=50):
    """fn() until it answers something else than 503 (the password hasher
    busy: sign-up and log-in answer 503 with Retry-After when it is)."""
    for _ in range(tries):
        r = fn()
        if r[0] != 503:
            return r
        time.sleep(0.2)
    return r


def new_user(base):
    """Registers and logs in a fresh user through base; returns (user, token)."""
    name = "u" + uuid.uuid4().hex[:10]
    st, b = retry_busy(lambda: call(base, "POST", "/v1/users",
                                    {"username": name, "password": "pw-" + name + "-secret"}))
    assert st == 201, (st, b)
    st, b = retry_busy(lambda: call(base, "POST", "/v1/sessions",
                                    {"username": name, "password": "pw-" + name + "-secret"}))
    assert st == 201, (st, b)
    return b["user"], b["token"]


def self_thread(base, token):
    """The caller's thread with nobody else (notes to self)."""
    st, b = call(base, "POST", "/v1/threads", {"member_ids": []}, token)
    assert st in (200, 201), (st, b)
    return b["thread"]["id"]


def send(base, token, tid, text):
    st, b = call(base, "POST", f"/v1/threads/{tid}/messages",
                 {"client_msg_id": str(uuid.uuid4()), "body": text}, token)
    assert st == 201, (st, b)
    return b["message"]


def history(base, token, tid):
    st, b = call(base, "GET", f"/v1/threads/{tid}/messages", token=token)
    assert st == 200, (st, b)
    return [m["body"] for m in b["messages"]]


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    reports = {}
    try:
        c.up()
        yield c
        c.down()
        reports = c.sanitizer_reports()
    finally:
        c.close()
    if reports:
        pytest.fail("chatd sanitizer reports:\n" + "\n".join(
            f"--- {n}\n{text[-4000:]}" for n, text in reports.items()), pytrace=False)


def test_three_galera_nodes_synced_in_one_primary_component(cluster):
    uuids = set()
    for node in ("g1", "g2", "g3"):
        w = cluster.wsrep(node)
        assert w["wsrep_ready"] == "ON", (node, w)
        assert w["wsrep_connected"] == "ON", (node, w)
        assert w["wsrep_local_state"] == "4", (node, w)
        assert w["wsrep_local_state_comment"] == "Synced", (node, w)
        assert w["wsrep_cluster_status"] == "Primary", (node, w)
        assert w["wsrep_cluster_size"] == "3", (node, w)
        uuids.add(w["wsrep_cluster_state_uuid"])
        v = dict(cluster.sql(node, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ("
                             "'innodb_flush_log_at_trx_commit', 'binlog_format', "
                             "'innodb_autoinc_lock_mode', 'wsrep_slave_threads', "
                             "'wsrep_provider_options')"))
        assert v["innodb_flush_log_at_trx_commit"] == "1", node
        assert v["binlog_format"] == "ROW", node
        assert v["innodb_autoinc_lock_mode"] == "2", node
        assert v["wsrep_slave_threads"] == "2", node
        opts = v["wsrep_provider_options"]
        for o in ("gcs.fc_single_primary = YES", "evs.suspect_timeout = PT3S",
                  "evs.inactive_timeout = PT6S"):
            assert o.lower() in opts.lower(), (node, o)
    assert len(uuids) == 1, uuids


def test_api_through_nginx_and_each_chatd(cluster):
    base = cluster.nginx_url
    user, token = new_user(base)
    tid = self_thread(base, token)
    m = send(base, token, tid, "through nginx")
    assert m["seq"] == 1 and m["sender_id"] == user["id"]
    assert history(base, token, tid) == ["through nginx"]
    # Every node serves every user: the session and the thread live in the
    # database, whichever node wrote them.
    for name, url in cluster.chatd_urls.items():
        assert call(url, "GET", "/readyz")[0] == 200, name
        send(url, token, tid, f"through {name}")
    expected = ["through nginx", "through c1", "through c2", "through c3"]
    for name, url in cluster.chatd_urls.items():
        assert history(url, token, tid) == expected, name
    assert history(base, token, tid) == expected
    # ... and every Galera node has them (wsrep_sync_wait: read after the
    # node applied everything committed before).
    for node in ("g1", "g2", "g3"):
        rows = cluster.sql(node, "SET SESSION wsrep_sync_wait = 1; "
                                 f"SELECT COUNT(*) FROM chat.messages WHERE thread_id = {tid}")
        assert rows == [["4"]], node


def test_a_killed_chatd_does_not_show_through_nginx(cluster):
    base = cluster.nginx_url
    users = [new_user(base) for _ in range(4)]
    threads = [self_thread(base, t) for _, t in users]
    cluster.kill("c2")
    assert call(cluster.chatd_urls["c2"], "GET", "/readyz", timeout=5)[0] == 0
    # Requests without a token land on a random node ($request_id): 30 of
    # them miss c2 with a chance of (2/3)^30, about 5e-6. Each must still be
    # answered, by the next node.
    for _ in range(30):
        assert call(base, "GET", "/readyz", timeout=15)[0] == 200
    # Sign-up and log-in (POSTs, not retried once sent; a refused connection
    # is retried), and sends and reads of every user: some of the tokens hash
    # to c2.
    more = [new_user(base) for _ in range(3)]
    for (_, token), tid in zip(users, threads):
        send(base, token, tid, "while c2 is down")
        assert history(base, token, tid) == ["while c2 is down"]
    for _, token in more:
        send(base, token, self_thread(base, token), "new while c2 is down")
    cluster.restart("c2")
    assert call(cluster.chatd_urls["c2"], "GET", "/readyz")[0] == 200
    for (_, token), tid in zip(users, threads):
        send(cluster.chatd_urls["c2"], token, tid, "c2 is back")
        assert history(base, token, tid) == ["while c2 is down", "c2 is back"]
    for _ in range(10):
        assert call(base, "GET", "/readyz", timeout=15)[0] == 200
