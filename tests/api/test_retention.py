"""Retention and disappearing messages (API.md "Retention and accounts",
issue 15; chat/retention.h), on a chatd of their own whose janitor runs
every second, whose retention "day" is one second and which allows a 2 s
disappearing timer."""
import time
import uuid

import pytest

from conftest import drain_inbox, env_server, inbox_cursor, make_user, problem
from test_attachments import PNG, fetch, send_with, upload

TIMER = 2


@pytest.fixture(scope="module")
def short(db):
    with env_server(db, "retention-", {"CHAT_JANITOR_INTERVAL_S": "1",
                                       "CHAT_DISAPPEARING_TEST_S": str(TIMER),
                                       "CHAT_RETENTION_DAY_S": "1"}) as s:
        yield s


def until(what, fn, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            assert v, f"timed out waiting for {what}"
            return v
        time.sleep(0.2)


def history(u, t):
    r = u.get(f"/v1/threads/{t}/messages")
    assert r.status == 200, r
    return r.body["messages"]


def test_disappearing_messages_become_tombstones(short):
    alice, bob = make_user(short), make_user(short)
    t = alice.direct(bob)["id"]
    before = alice.say(t, "stays")
    r = bob.patch(f"/v1/threads/{t}", {"disappearing_s": TIMER})
    assert r.status == 200 and r.body["thread"]["disappearing_s"] == TIMER, r
    since = inbox_cursor(bob)
    secret = "gone-" + uuid.uuid4().hex
    m = alice.say(t, secret)
    assert before["expires_at"] is None
    assert m["expires_at"] == m["created_at"] + TIMER * 1000
    up = upload(alice, PNG, "dot.png")
    pic = send_with(alice, t, [up["id"]], body="a photo").body["message"]
    assert fetch(bob, pic["attachments"][0]["url"]).status_code == 200
    until("the tombstones", lambda: all(x["deleted_at"] for x in history(bob, t)
                                         if x["seq"] in (m["seq"], pic["seq"])))
    got = {x["seq"]: x for x in history(bob, t)}
    assert got[before["seq"]]["body"] == "stays"
    assert got[m["seq"]]["body"] == "" and got[pic["seq"]]["attachments"] == []
    assert fetch(bob, pic["attachments"][0]["url"]).status_code == 404
    evs = [e for e, _ in drain_inbox(bob, since)[0] if e["type"] == "message_deleted"]
    assert {e["seq"] for e in evs} == {m["seq"], pic["seq"]}
    assert all(e["deleted_by"] is None and e["reason"] == "expired" for e in evs), evs
    assert secret not in bob.get(f"/v1/threads/{t}/messages").text
    assert alice.get("/v1/search/messages", params={"q": secret}).body["results"] == []
    # Off again: new messages stay.
    assert alice.patch(f"/v1/threads/{t}", {"disappearing_s": 0}).status == 200
    assert alice.say(t, "for good")["expires_at"] is None


def test_retention_removes_a_prefix_of_history(short):
    alice, bob = make_user(short), make_user(short)
    alice.known_by(bob)
    g = alice.group(bob)["id"]
    since = inbox_cursor(bob)
    old = [alice.say(g, f"old {i} " + uuid.uuid4().hex) for i in range(3)]
    up = upload(alice, PNG, "old.png")
    old.append(send_with(alice, g, [up["id"]], body="old photo").body["message"])
    # A retention of 3 "days" (seconds here); the old ones age past it.
    r = alice.patch(f"/v1/threads/{g}", {"retention_days": 3})
    assert r.status == 200 and r.body["thread"]["retention_days"] == 3, r
    time.sleep(3.2)
    new = alice.say(g, "new")
    until("the purge", lambda: bob.thread(g)["oldest_seq"] == new["seq"])
    assert [x["seq"] for x in history(bob, g)] == [new["seq"]]
    assert bob.thread(g)["last_seq"] == new["seq"]
    assert fetch(bob, old[-1]["attachments"][0]["url"]).status_code == 404
    purged = [e for e, _ in drain_inbox(bob, since)[0] if e["type"] == "history_purged"]
    assert purged and purged[-1] == {"type": "history_purged", "thread_id": g,
                                     "up_to_seq": old[-1]["seq"]}, purged
    ups = [e["up_to_seq"] for e in purged]
    assert ups == sorted(set(ups)), ups  # one per run, moving forward
    for m in old:
        word = m["body"].split()[-1] if m["body"] != "old photo" else None
        if word:
            assert alice.get("/v1/search/messages", params={"q": word}).body["results"] == []
    # A page below where history starts is simply empty.
    r = bob.get(f"/v1/threads/{g}/messages", params={"before": new["seq"]})
    assert r.status == 200 and r.body == {"messages": [], "has_more": False}
    # Back to the server's retention (for ever here).
    r = alice.patch(f"/v1/threads/{g}", {"retention_days": None})
    assert r.status == 200 and r.body["thread"]["retention_days"] is None


def test_settings_refusals(short):
    alice, bob, carol = make_user(short), make_user(short), make_user(short)
    alice.known_by(bob)
    g = alice.group(bob)["id"]
    for body in ({}, {"disappearing_s": 5}, {"disappearing_s": -1}, {"disappearing_s": "1d"},
                 {"retention_days": 0}, {"retention_days": 40000}, {"retention_days": "7"}):
        problem(alice.patch(f"/v1/threads/{g}", body), 400)
    problem(bob.patch(f"/v1/threads/{g}", {"disappearing_s": 86400}), 403, "not_admin")
    problem(bob.patch(f"/v1/threads/{g}", {"retention_days": 7}), 403, "not_admin")
    problem(carol.patch(f"/v1/threads/{g}", {"disappearing_s": 86400}), 404, "not_found")
    t = alice.group(bob)
    assert t["disappearing_s"] == 0 and t["retention_days"] is None and t["oldest_seq"] == 1
    r = alice.patch(f"/v1/threads/{g}", {"disappearing_s": 604800, "retention_days": 90})
    assert r.status == 200 and r.body["thread"]["disappearing_s"] == 604800
    d = bob.direct(carol)["id"]  # in a direct thread either member may
    assert carol.patch(f"/v1/threads/{d}", {"disappearing_s": 86400}).status == 200
    problem(carol.patch(f"/v1/threads/{d}", {"title": "x"}), 422, "not_a_group")
