"""Messages: sending (into a thread, to a user), idempotent retries, history
paging, unread counts, read positions and receipts."""
import json
import time
import uuid

import pytest

from conftest import problem

MESSAGE_KEYS = {"thread_id", "seq", "sender_id", "client_msg_id", "body", "created_at",
                "attachments", "version", "edited_at", "deleted_at", "reply_to", "forwarded",
                "reactions", "mentions", "expires_at"}


def seqs(page):
    return [m["seq"] for m in page["messages"]]


# -- sending --------------------------------------------------------------------

def test_send_into_thread(new_users):
    a, b = new_users(2)
    g = a.group(b, title="chat")
    cmid = str(uuid.uuid4())
    st, body = a.post(f"/v1/threads/{g['id']}/messages", {"client_msg_id": cmid, "body": "hi b"})
    assert st == 201, body
    m = body["message"]
    assert set(body) == {"message"}
    assert set(m) == MESSAGE_KEYS
    assert m["thread_id"] == g["id"] and m["seq"] == 1 and m["sender_id"] == a.id
    assert m["client_msg_id"] == cmid and m["body"] == "hi b"
    assert abs(m["created_at"] - time.time() * 1000) < 60_000
    m2 = b.say(g["id"], "hi a")
    assert m2["seq"] == 2 and m2["sender_id"] == b.id
    assert m2["created_at"] >= m["created_at"]
    t = a.thread(g["id"])
    assert t["last_seq"] == 2 and t["last_message"] == m2
    assert b.history(g["id"])["messages"] == [m, m2]


def test_bodies_round_trip_exactly(new_users):
    a, b = new_users(2)
    d = a.direct(b)
    bodies = ["plain", "émoji 👩‍👩‍👧‍👦 and ✓", "line\nbreaks\r\nand\ttabs", "  spaced  ",
              "\"quotes\" and \\backslashes\\", "<b>not html</b>", "[[[[[[[[[[", "日本語",
              "\u2028\u2029", "x"]
    sent = [a.say(d["id"], body) for body in bodies]
    got = b.history(d["id"])["messages"]
    assert [m["body"] for m in got] == bodies
    assert got == sent


def test_send_to_user_creates_the_direct_thread(new_users):
    a, b = new_users(2)
    st, body = a.post("/v1/messages", {"to": b.id, "client_msg_id": "c1", "body": "first"})
    assert st == 201, body
    m = body["message"]
    assert m["seq"] == 1 and m["sender_id"] == a.id and m["body"] == "first"
    tid = m["thread_id"]
    # it is the pair's direct thread
    st, body = b.post("/v1/threads", {"member_ids": [a.id]})
    assert st == 200, body
    assert body["thread"]["id"] == tid and body["thread"]["kind"] == "direct"
    assert body["thread"]["unread_count"] == 1
    st, body = b.post("/v1/messages", {"to": a.id, "client_msg_id": "c1", "body": "reply"})
    assert st == 201, body
    assert body["message"]["thread_id"] == tid and body["message"]["seq"] == 2
    assert [t["id"] for t in b.get("/v1/threads").body["threads"]] == [tid]


def test_send_to_existing_direct_thread(new_users):
    a, b = new_users(2)
    d = a.direct(b)
    st, body = b.post("/v1/messages", {"to": a.id, "client_msg_id": "x", "body": "y"})
    assert st == 201, body
    assert body["message"]["thread_id"] == d["id"]


def test_send_to_self_is_saved_messages(new_user):
    a = new_user()
    st, body = a.post("/v1/messages", {"to": a.id, "client_msg_id": "note", "body": "milk"})
    assert st == 201, body
    t = a.thread(body["message"]["thread_id"])
    assert t["kind"] == "direct" and t["member_ids"] == [a.id]


def test_send_to_unknown_user_is_404(new_user):
    a = new_user()
    problem(a.post("/v1/messages", {"to": 9007199254740992, "client_msg_id": "x", "body": "y"}),
            404, "not_found")
    assert a.get("/v1/threads").body["threads"] == []


def test_content_type_of_request_is_not_enforced(new_users):
    a, b = new_users(2)
    d = a.direct(b)
    body = json.dumps({"client_msg_id": "form", "body": "as curl -d sends it"})
    r = a.post(f"/v1/threads/{d['id']}/messages", data=body,
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 201, r
    r = a.post(f"/v1/threads/{d['id']}/messages", data=body.replace("form", "none"),
               headers={"Content-Type": ""})
    assert r.status == 201, r


def test_client_msg_id_lengths(new_users):
    a, b = new_users(2)
    d = a.direct(b)
    assert a.send(d["id"], cmid="x" * 64).status == 201
    assert a.send(d["id"], cmid="é" * 64).status == 201      # 64 characters, 128 bytes
    assert a.send(d["id"], cmid="k").status == 201
    problem(a.send(d["id"], cmid="x" * 65), 400, "invalid_request")
    assert a.thread(d["id"])["last_seq"] == 3


def test_message_body_of_exactly_65536_bytes(new_users):
    a, b = new_users(2)
    d = a.direct(b)
    for body in ("a" * 65536, "é" * 32768, "😀" * 16384):
        assert len(body.encode()) == 65536
        m = a.say(d["id"], body)
        assert m["body"] == body
    got = b.history(d["id"])["messages"]
    assert [m["body"] for m in got] == ["a" * 65536, "é" * 32768, "😀" * 16384]


# -- idempotent retries (c) --------------------------------------------------------------

def test_retry_with_same_client_msg_id_stores_nothing_twice(new_users):
    a, b = new_users(2)
    g = a.group(b, title="retry")
    st, first = a.post(f"/v1/threads/{g['id']}/messages", {"client_msg_id": "abc-1", "body": "x"})
    assert st == 201, first
    st, again = a.post(f"/v1/threads/{g['id']}/messages", {"client_msg_id": "abc-1", "body": "x"})
    assert st == 200, again
    assert again == first
    # a retry with another body still answers the original
    st, third = a.post(f"/v1/threads/{g['id']}/messages",
                       {"client_msg_id": "abc-1", "body": "changed"})
    assert st == 200 and third == first
    # from another device of the same user: still the same message
    st, dev = a.device().post(f"/v1/threads/{g['id']}/messages",
                              {"client_msg_id": "abc-1", "body": "x"})
    assert st == 200 and dev == first
    t = a.thread(g["id"])
    assert t["last_seq"] == 1
    assert len(a.history(g["id"])["messages"]) == 1
    assert b.thread(g["id"])["unread_count"] == 1


def test_retry_via_send_to_user(new_users):
    a, b = new_users(2)
    body = {"to": b.id, "client_msg_id": "dm-1", "body": "once"}
    st, first = a.post("/v1/messages", body)
    assert st == 201, first
    st, again = a.post("/v1/messages", body)
    assert st == 200 and again == first
    # the same id into the same thread by the thread route is the same message too
    st, via_thread = a.post(f"/v1/threads/{first['message']['thread_id']}/messages",
                            {"client_msg_id": "dm-1", "body": "once"})
    assert st == 200 and via_thread == first
    assert a.thread(first["message"]["thread_id"])["last_seq"] == 1


def test_same_client_msg_id_from_another_sender_or_thread_is_another_message(new_users):
    a, b = new_users(2)
    g1 = a.group(b, title="one")
    g2 = a.group(b, title="two")
    m1 = a.say(g1["id"], "a in g1", cmid="same")
    m2 = b.say(g1["id"], "b in g1", cmid="same")
    m3 = a.say(g2["id"], "a in g2", cmid="same")
    assert (m1["seq"], m2["seq"], m3["seq"]) == (1, 2, 1)
    assert m2["sender_id"] == b.id and m3["thread_id"] == g2["id"]
    assert [m["body"] for m in a.history(g1["id"])["messages"]] == ["a in g1", "b in g1"]
    assert [m["body"] for m in a.history(g2["id"])["messages"]] == ["a in g2"]


def test_client_msg_id_is_case_sensitive(new_users):
    a, b = new_users(2)
    d = a.direct(b)
    assert a.send(d["id"], "lower", cmid="abc").status == 201
    r = a.send(d["id"], "upper", cmid="ABC")
    assert r.status == 201, r
    assert r.body["message"]["seq"] == 2


# -- history ----------------------------------------------------------------------

@pytest.fixture
def thread_with_55(new_users):
    a, b = new_users(2)
    g = a.group(b, title="history")
    for i in range(1, 56):
        assert a.say(g["id"], f"m{i}")["seq"] == i
    return a, b, g["id"]


def test_history_default_is_newest_50_ascending(thread_with_55):
    a, b, tid = thread_with_55
    page = b.history(tid)
    assert seqs(page) == list(range(6, 56))
    assert page["has_more"] is True
    assert [m["body"] for m in page["messages"]] == [f"m{i}" for i in range(6, 56)]
    assert set(page) == {"messages", "has_more"}


def test_history_paging_backwards(thread_with_55):
    a, b, tid = thread_with_55
    got, before = [], None
    while True:
        params = {"limit": 20} | ({"before": before} if before else {})
        page = b.history(tid, **params)
        assert seqs(page) == sorted(seqs(page))
        got = seqs(page) + got
        if not page["has_more"]:
            break
        before = page["messages"][0]["seq"]
    assert got == list(range(1, 56))
    page = b.history(tid, before=16, limit=10)
    assert seqs(page) == list(range(6, 16)) and page["has_more"] is True
    page = b.history(tid, before=6, limit=10)
    assert seqs(page) == [1, 2, 3, 4, 5] and page["has_more"] is False
    page = b.history(tid, before=11, limit=10)
    assert seqs(page) == list(range(1, 11)) and page["has_more"] is False
    assert b.history(tid, before=1) == {"messages": [], "has_more": False}


def test_history_paging_forwards(thread_with_55):
    a, b, tid = thread_with_55
    page = b.history(tid, after=0, limit=10)
    assert seqs(page) == list(range(1, 11)) and page["has_more"] is True
    page = b.history(tid, after=50, limit=10)
    assert seqs(page) == list(range(51, 56)) and page["has_more"] is False
    page = b.history(tid, after=45, limit=10)
    assert seqs(page) == list(range(46, 56)) and page["has_more"] is False
    assert b.history(tid, after=55) == {"messages": [], "has_more": False}
    assert b.history(tid, after=1000)["messages"] == []
    got, after = [], 0
    while True:
        page = b.history(tid, after=after, limit=7)
        got += seqs(page)
        if not page["has_more"]:
            break
        after = page["messages"][-1]["seq"]
    assert got == list(range(1, 56))


def test_history_between_after_and_before(thread_with_55):
    a, b, tid = thread_with_55
    assert seqs(b.history(tid, after=5, before=9)) == [6, 7, 8]
    assert seqs(b.history(tid, after=5, before=6)) == []


def test_history_limits(thread_with_55):
    a, b, tid = thread_with_55
    assert len(b.history(tid, limit=1)["messages"]) == 1
    assert seqs(b.history(tid, limit=1)) == [55]
    page = b.history(tid, limit=100)
    assert seqs(page) == list(range(1, 56)) and page["has_more"] is False
    page = b.history(tid, limit=55)
    assert len(page["messages"]) == 55 and page["has_more"] is False
    page = b.history(tid, limit=54)
    assert seqs(page) == list(range(2, 56)) and page["has_more"] is True


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "101"}, {"limit": "-1"},
                                    {"limit": "ten"}, {"limit": ""}, {"before": "0"},
                                    {"before": "x"}, {"before": "-5"}, {"after": "-1"},
                                    {"after": "1.5"}, {"before": "9007199254740993"},
                                    {"after": "99999999999999999999"}])
def test_history_bad_query_is_400(new_users, params):
    a, b = new_users(2)
    d = a.direct(b)
    problem(a.get(f"/v1/threads/{d['id']}/messages", params=params), 400, "invalid_request")


def test_empty_history(new_users):
    a, b = new_users(2)
    d = a.direct(b)
    assert a.history(d["id"]) == {"messages": [], "has_more": False}


# -- unread, read, receipts -------------------------------------------------------------

def test_unread_count(new_users):
    a, b, c = new_users(3)
    g = a.group(b, c, title="unread")
    for _ in range(3):
        a.say(g["id"])
    assert a.thread(g["id"])["unread_count"] == 0       # own messages never count
    assert b.thread(g["id"])["unread_count"] == 3
    assert c.thread(g["id"])["unread_count"] == 3
    b.say(g["id"], "b replies")                          # sending marks read for b
    assert b.thread(g["id"])["unread_count"] == 0
    assert a.thread(g["id"])["unread_count"] == 1
    assert c.thread(g["id"])["unread_count"] == 4
    # every device of a user sees the same count
    assert c.device().thread(g["id"])["unread_count"] == 4


def test_read_moves_forward_only(new_users):
    a, b = new_users(2)
    d = a.direct(b)
    for _ in range(5):
        a.say(d["id"])
    r = b.post(f"/v1/threads/{d['id']}/read", {"seq": 3})
    assert r.status == 204, r
    assert b.thread(d["id"])["unread_count"] == 2
    assert b.receipts(d["id"])[b.id]["read_seq"] == 3
    # backwards: accepted, changes nothing
    assert b.post(f"/v1/threads/{d['id']}/read", {"seq": 1}).status == 204
    assert b.post(f"/v1/threads/{d['id']}/read", {"seq": 0}).status == 204
    assert b.thread(d["id"])["unread_count"] == 2
    assert b.receipts(d["id"])[b.id]["read_seq"] == 3
    assert b.post(f"/v1/threads/{d['id']}/read", {"seq": 5}).status == 204
    assert b.thread(d["id"])["unread_count"] == 0
    # the other device of b sees it read too
    assert b.device().thread(d["id"])["unread_count"] == 0


def test_read_past_last_seq_is_400(new_users):
    a, b = new_users(2)
    d = a.direct(b)
    a.say(d["id"])
    a.say(d["id"])
    problem(b.post(f"/v1/threads/{d['id']}/read", {"seq": 3}), 400, "invalid_request")
    problem(b.post(f"/v1/threads/{d['id']}/read", {"seq": 9007199254740992}), 400,
            "invalid_request")
    assert b.receipts(d["id"])[b.id]["read_seq"] == 0
    assert b.thread(d["id"])["unread_count"] == 2


@pytest.mark.parametrize("body", [{}, {"seq": None}, {"seq": "1"}, {"seq": 1.5}, {"seq": True},
                                  {"seq": -1}, {"seq": [1]}, {"seq": 9007199254740993}])
def test_read_bad_seq_is_400(new_users, body):
    a, b = new_users(2)
    d = a.direct(b)
    a.say(d["id"])
    problem(b.post(f"/v1/threads/{d['id']}/read", body), 400, "invalid_request")
    assert b.receipts(d["id"])[b.id]["read_seq"] == 0


def test_receipts(new_users):
    a, b, c = new_users(3)
    g = a.group(b, c, title="receipts")
    st, body = a.get(f"/v1/threads/{g['id']}/receipts")
    assert st == 200, body
    assert sorted(body["receipts"], key=lambda r: r["user_id"]) == [
        {"user_id": u.id, "delivered_seq": 0, "read_seq": 0}
        for u in sorted((a, b, c), key=lambda u: u.id)]
    for _ in range(4):
        a.say(g["id"])
    rc = b.receipts(g["id"])
    assert rc[a.id] == {"user_id": a.id, "delivered_seq": 4, "read_seq": 4}
    assert rc[b.id]["read_seq"] == 0 and rc[c.id]["read_seq"] == 0
    b.post(f"/v1/threads/{g['id']}/read", {"seq": 2})
    rc = c.receipts(g["id"])  # every member sees every member's positions
    assert rc[b.id]["read_seq"] == 2
    assert rc[b.id]["delivered_seq"] >= 2  # reading implies delivery
    assert rc[c.id]["read_seq"] == 0
    assert set(rc) == {a.id, b.id, c.id}
