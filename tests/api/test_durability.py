"""(d) A 201 means durably stored: kill -9 of chatd right after it loses
nothing; sessions survive restarts; retries after a crash are recognised.

These tests restart the shared server; other tests read server.base per call
and so follow it to its new port."""
import threading
import time

import requests

from conftest import login


def test_d_message_survives_kill_9_right_after_201(server, new_users):
    a, b = new_users(2)
    g = a.group(b, title="durable")["id"]
    st, body = a.post(f"/v1/threads/{g}/messages", {"client_msg_id": "crash-1",
                                                    "body": "must survive"})
    assert st == 201, body
    server.restart(kill9=True)
    # the tokens are still valid
    assert a.get("/v1/me").status == 200
    assert b.get("/v1/me").status == 200
    hist = b.history(g)
    assert hist["messages"] == [body["message"]]
    assert b.thread(g)["last_seq"] == 1
    # the client's retry after the crash is recognised, not stored twice
    st, again = a.post(f"/v1/threads/{g}/messages", {"client_msg_id": "crash-1",
                                                     "body": "must survive"})
    assert st == 200 and again == body
    # and the sequence continues without a gap
    assert a.say(g, "after")["seq"] == 2


def test_d_every_acknowledged_message_survives_kill_9_under_load(server, new_users):
    users = new_users(4)
    g = users[0].group(*users[1:], title="load then crash")["id"]
    acked, stop = [], threading.Event()
    lock = threading.Lock()

    def work(u):
        k = 0
        while not stop.is_set():
            cmid = f"{u.id}-{k}"
            try:
                r = u.send(g, cmid, cmid=cmid)
            except requests.RequestException:
                return  # the server is gone
            if r.status == 201:
                with lock:
                    acked.append(r.body["message"])
            k += 1

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 10
        while len(acked) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.stop(kill9=True)  # in the middle of the sends
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        if server.proc is None:
            server.start()
    assert len(acked) >= 40
    last = users[1].thread(g)["last_seq"]
    stored, after = {}, 0
    while True:
        page = users[1].history(g, after=after, limit=100)
        stored.update({m["seq"]: m for m in page["messages"]})
        if not page["has_more"]:
            break
        after = page["messages"][-1]["seq"]
    # no gap, and nothing acknowledged is lost or altered
    assert sorted(stored) == list(range(1, last + 1))
    for m in acked:
        assert stored.get(m["seq"]) == m
    # acknowledged seqs were unique
    assert len({m["seq"] for m in acked}) == len(acked)


def test_d_sessions_threads_and_settings_survive_a_clean_restart(server, new_users):
    a, b = new_users(2)
    phone2 = a.device("phone 2")
    d = a.direct(b)
    a.patch(f"/v1/threads/{d['id']}/settings", {"is_muted": True, "nickname": "bee"})
    a.say(d["id"], "one")
    b.post(f"/v1/threads/{d['id']}/read", {"seq": 1})
    a.put(f"/v1/contacts/{b.id}", {"nickname": "B"})
    server.restart()
    t = a.thread(d["id"])
    assert t["is_muted"] is True and t["nickname"] == "bee" and t["last_seq"] == 1
    assert b.receipts(d["id"])[b.id]["read_seq"] == 1
    assert phone2.get("/v1/me").status == 200
    sessions = a.get("/v1/sessions").body["sessions"]
    assert {s["id"] for s in sessions} == {a.session_id, phone2.session_id}
    assert a.get("/v1/contacts").body["contacts"][0]["nickname"] == "B"
    # a logout before the restart stays a logout
    assert phone2.delete("/v1/sessions/current").status == 204
    server.restart(kill9=True)
    assert phone2.get("/v1/me").status == 401
    assert a.get("/v1/me").status == 200
    assert login(server, a.username, a.password).status == 201


def test_d_direct_thread_stays_unique_across_restart(server, new_users):
    a, b = new_users(2)
    st, body = a.post("/v1/threads", {"member_ids": [b.id]})
    assert st == 201
    server.restart(kill9=True)
    st, again = b.post("/v1/threads", {"member_ids": [a.id]})
    assert st == 200 and again["thread"]["id"] == body["thread"]["id"]


def test_d_message_survives_a_database_crash_right_after_201(server, db, new_users):
    a, b = new_users(2)
    g = a.group(b, title="db crash")["id"]
    st, body = a.post(f"/v1/threads/{g}/messages", {"client_msg_id": "db-crash",
                                                    "body": "acknowledged"})
    assert st == 201, body
    db.kill9()
    db.start()
    deadline = time.monotonic() + 30
    while a.get("/readyz").status != 200:
        assert time.monotonic() < deadline, "chatd did not see the database come back"
        time.sleep(0.1)
    for _ in range(20):  # any worker thread, each with its own connection
        st, hist = b.get(f"/v1/threads/{g}/messages")
        assert st == 200, hist
        assert hist["messages"] == [body["message"]]
    st, again = a.post(f"/v1/threads/{g}/messages", {"client_msg_id": "db-crash",
                                                     "body": "acknowledged"})
    assert st == 200 and again == body
    assert a.say(g, "next")["seq"] == 2
