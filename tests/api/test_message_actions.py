"""Message actions (API.md "Message actions", issue 15; docs/message-actions.md):
edit with its window and history, delete for everyone (a tombstone that
never gives the old body back: not from history, the stream, the in-memory
tail, a thread's last message, a reply's snippet, or an attachment link),
hide for me, reactions, reply with a live snippet, forward. Each change
reaches every member's devices once, in order, as the contract's events."""
import json
import time
import urllib.parse
import uuid

import pytest

from conftest import drain_inbox, env_server, inbox, inbox_cursor, make_user, problem
from test_attachments import PNG, fetch, send_with, upload

NEW_FIELDS = {"version": 0, "edited_at": None, "deleted_at": None, "reply_to": None,
              "forwarded": None, "reactions": [], "mentions": {"user_ids": [], "all": False},
              "expires_at": None}


def events(user, since, types=None):
    """The device's durable events after since, receipts left out (acks
    move them independently of the actions under test)."""
    got, nxt = drain_inbox(user, since)
    evs = [e for e, _ in got if e["type"] != "receipt"]
    if types:
        evs = [e for e in evs if e["type"] in types]
    return evs, nxt


def msg_path(t, seq, tail=""):
    return f"/v1/threads/{t}/messages/{seq}{tail}"


def react_path(t, seq, emoji):
    return msg_path(t, seq, "/reactions/" + urllib.parse.quote(emoji, safe=""))


def in_history(user, t, seq):
    return next(m for m in user.history(t)["messages"] if m["seq"] == seq)


@pytest.fixture()
def pair(new_users):
    alice, bob = new_users(2)
    return alice, bob, alice.direct(bob)["id"]


def test_a_new_message_has_the_action_fields(pair):
    alice, bob, t = pair
    m = alice.say(t, "hi")
    for k, v in NEW_FIELDS.items():
        assert m[k] == v, (k, m)
    assert {k: in_history(bob, t, m["seq"])[k] for k in NEW_FIELDS} == NEW_FIELDS


def test_config_shows_the_windows(anon):
    r = anon.get("/v1/config")
    assert r.status == 200
    lim = r.body["limits"]
    assert lim["message_edit_window_s"] == 900 and lim["message_delete_window_s"] == 172800
    assert lim["reactions_distinct_max"] == 50 and lim["reaction_max_bytes"] == 32
    assert r.body["features"]["message_actions"] is True


# ---- edit ----

def test_edit_reaches_every_device_once_and_keeps_history(pair):
    alice, bob, t = pair
    alice2 = alice.device()
    m = alice.say(t, "helo wrold")
    since_b, since_a2 = inbox_cursor(bob), inbox_cursor(alice2)
    r = alice.patch(msg_path(t, m["seq"]), {"body": "hello world"})
    assert r.status == 200, r
    e = r.body["message"]
    assert e["body"] == "hello world" and e["version"] == 1 and e["edited_at"] >= m["created_at"]
    assert e["seq"] == m["seq"] and e["client_msg_id"] == m["client_msg_id"]
    for dev, since in ((bob, since_b), (alice2, since_a2)):
        evs, _ = events(dev, since)
        assert [x["type"] for x in evs] == ["message_edited"], evs
        assert evs[0]["message"] == e
    assert in_history(bob, t, m["seq"]) == e
    # The same body again: 200, nothing changes, no event.
    since_b = inbox_cursor(bob)
    r = alice.patch(msg_path(t, m["seq"]), {"body": "hello world"})
    assert r.status == 200 and r.body["message"]["version"] == 1
    assert events(bob, since_b)[0] == []
    alice.patch(msg_path(t, m["seq"]), {"body": "hello, world"})
    r = bob.get(msg_path(t, m["seq"], "/history"))
    assert r.status == 200, r
    assert [(v["version"], v["body"]) for v in r.body["versions"]] == \
        [(0, "helo wrold"), (1, "hello world"), (2, "hello, world")]
    assert r.body["versions"][0]["edited_at"] == m["created_at"]
    # seq is untouched: the next message is the next seq, nothing unread moved.
    assert alice.say(t, "next")["seq"] == m["seq"] + 1


def test_edit_refusals(pair, new_user):
    alice, bob, t = pair
    carol = new_user()
    m = alice.say(t, "original")
    seq = m["seq"]
    problem(bob.patch(msg_path(t, seq), {"body": "not mine"}), 403, "not_author")
    problem(carol.patch(msg_path(t, seq), {"body": "x"}), 404, "not_found")
    problem(alice.patch(msg_path(t, seq + 50), {"body": "x"}), 404, "not_found")
    problem(alice.patch(msg_path(t, seq), {"body": ""}), 400, "invalid_message")
    problem(alice.patch(msg_path(t, seq), {"body": 5}), 400, "invalid_message")
    problem(alice.patch(msg_path(t, seq), {}), 400, "invalid_message")
    problem(alice.patch(msg_path(t, seq), {"body": "x" * 65537}), 413, "message_too_large")
    problem(alice.patch(msg_path(t, seq), {"body": "x", "if_version": 3}), 409,
            "version_conflict")
    problem(alice.patch(msg_path(t, seq), {"body": "x", "if_version": "0"}), 400)
    assert in_history(bob, t, seq)["body"] == "original"
    assert alice.patch(msg_path(t, seq), {"body": "fine", "if_version": 0}).status == 200
    assert alice.delete(msg_path(t, seq)).status == 204
    problem(alice.patch(msg_path(t, seq), {"body": "again"}), 422, "message_deleted")
    r = alice.get(msg_path(t, seq, "/history"))
    assert r.status == 200 and r.body["versions"] == []
    problem(carol.get(msg_path(t, seq, "/history")), 404, "not_found")


# ---- delete for everyone ----

def test_delete_leaves_a_tombstone_everywhere(pair):
    alice, bob, t = pair
    bob2 = bob.device()
    since_b, since_b2 = inbox_cursor(bob), inbox_cursor(bob2)
    m = alice.say(t, "delete-me-7f3a")
    events(bob, since_b)  # bob's first device read it (from the tail)
    assert alice.delete(msg_path(t, m["seq"])).status == 204
    tomb = in_history(bob, t, m["seq"])
    assert tomb["body"] == "" and tomb["deleted_at"] >= m["created_at"]
    assert tomb["attachments"] == [] and tomb["version"] == 1
    assert bob.thread(t)["last_message"]["deleted_at"] == tomb["deleted_at"]
    # bob's second device catches up from before the send.
    r = inbox(bob2, since_b2, timeout=0)
    assert "delete-me-7f3a" not in r.text
    evs = [e for e in r.body["events"] if e["type"] in ("message", "message_deleted")]
    assert [e["type"] for e in evs] == ["message", "message_deleted"], evs
    assert evs[0]["message"]["body"] == "" and evs[0]["message"]["deleted_at"]
    assert evs[1] == {"type": "message_deleted", "thread_id": t, "seq": m["seq"],
                      "deleted_at": tomb["deleted_at"], "deleted_by": alice.id, "version": 1,
                      "reason": "deleted"}
    # Again: 204, no second event.
    since = inbox_cursor(bob)
    assert alice.delete(msg_path(t, m["seq"])).status == 204
    assert events(bob, since)[0] == []
    # A retry of the original send returns the tombstone, not the body.
    r = alice.post(f"/v1/threads/{t}/messages",
                   {"client_msg_id": m["client_msg_id"], "body": "delete-me-7f3a"})
    assert r.status == 200 and r.body["message"]["body"] == "", r


def test_delete_permissions_and_admins(new_users):
    alice, bob, carol = new_users(3)
    alice.known_by(bob, carol)
    g = alice.group(bob, carol)["id"]
    mb = bob.say(g, "bob's")
    mc = carol.say(g, "carol's")
    problem(carol.delete(msg_path(g, mb["seq"])), 403, "not_author")
    assert alice.delete(msg_path(g, mb["seq"])).status == 204  # the admin
    assert carol.delete(msg_path(g, mc["seq"])).status == 204  # the sender
    d = alice.direct(bob)["id"]
    md = alice.say(d, "direct")
    problem(bob.delete(msg_path(d, md["seq"])), 403, "not_author")
    stranger = make_user(alice.server)
    problem(stranger.delete(msg_path(d, md["seq"])), 404, "not_found")
    problem(alice.delete(msg_path(d, md["seq"] + 9)), 404, "not_found")
    assert in_history(bob, d, md["seq"])["body"] == "direct"


def test_no_body_comes_back_after_a_delete(new_users):
    """The named test: the body sits in the tails (the message, a reply's
    snippet, a thread snapshot's last message) and in the database's
    stream; after the delete no read of any kind returns it."""
    alice, bob, carol = new_users(3)
    alice.known_by(bob, carol)
    g = alice.group(bob, carol)["id"]
    secret = "secret-" + uuid.uuid4().hex
    since = {u.id: inbox_cursor(u) for u in (alice, bob, carol)}
    late = bob.device()
    since_late = inbox_cursor(late)
    m = alice.say(g, secret)
    reply = carol.post(f"/v1/threads/{g}/messages",
                       {"client_msg_id": str(uuid.uuid4()), "body": "what?",
                        "reply_to_seq": m["seq"]})
    assert reply.status == 201 and reply.body["message"]["reply_to"]["snippet"] == secret
    assert alice.patch(f"/v1/threads/{g}", {"title": "renamed"}).status == 200
    for u in (alice, bob, carol):  # every tail holds it now
        assert secret in json.dumps(events(u, since[u.id])[0])
    assert alice.delete(msg_path(g, m["seq"])).status == 204
    reads = [inbox(late, since_late, timeout=0).text]
    for u in (alice, bob, carol):
        reads.append(inbox(u, since[u.id], timeout=0).text)
        reads.append(u.get(f"/v1/threads/{g}/messages").text)
        reads.append(u.get("/v1/threads").text)
        reads.append(u.get(f"/v1/threads/{g}").text)
    for text in reads:
        assert secret not in text
    r = bob.get(f"/v1/threads/{g}/messages")
    got = {x["seq"]: x for x in r.body["messages"]}
    assert got[reply.body["message"]["seq"]]["reply_to"] == \
        {"seq": m["seq"], "sender_id": alice.id, "snippet": "", "deleted": True}


def test_delete_removes_the_attachments(pair):
    alice, bob, t = pair
    up = upload(alice, PNG, "dot.png")
    r = send_with(alice, t, [up["id"]], body="a photo")
    assert r.status == 201, r
    att = r.body["message"]["attachments"][0]
    assert fetch(bob, att["url"]).status_code == 200
    assert alice.delete(msg_path(t, r.body["message"]["seq"])).status == 204
    assert fetch(bob, att["url"]).status_code == 404
    assert fetch(alice, att["url"]).status_code == 404
    assert in_history(bob, t, r.body["message"]["seq"])["attachments"] == []


# ---- hide for me ----

def test_hide_is_for_the_callers_devices_only(pair, new_user):
    alice, bob, t = pair
    bob2 = bob.device()
    m = alice.say(t, "hide me")
    sa, sb2 = inbox_cursor(alice), inbox_cursor(bob2)
    assert bob.put(msg_path(t, m["seq"], "/hidden")).status == 204
    assert in_history(bob, t, m["seq"]) == {"thread_id": t, "seq": m["seq"], "hidden": True}
    assert in_history(alice, t, m["seq"])["body"] == "hide me"
    evs, _ = events(bob2, sb2)
    assert evs == [{"type": "message_hidden", "thread_id": t, "seq": m["seq"]}]
    assert events(alice, sa)[0] == []
    sb2 = inbox_cursor(bob2)
    assert bob.put(msg_path(t, m["seq"], "/hidden")).status == 204  # again: nothing new
    assert bob.delete(msg_path(t, m["seq"], "/hidden")).status == 204
    assert bob.delete(msg_path(t, m["seq"], "/hidden")).status == 204
    evs, _ = events(bob2, sb2)
    assert evs == [{"type": "message_unhidden", "thread_id": t, "seq": m["seq"]}]
    assert in_history(bob, t, m["seq"])["body"] == "hide me"
    problem(new_user().put(msg_path(t, m["seq"], "/hidden")), 404, "not_found")
    problem(bob.put(msg_path(t, m["seq"] + 5, "/hidden")), 404, "not_found")


# ---- reactions ----

def test_reactions_add_remove_idempotent(pair):
    alice, bob, t = pair
    m = alice.say(t, "react to me")
    since = inbox_cursor(alice)
    assert bob.put(react_path(t, m["seq"], "👍")).status == 204
    assert bob.put(react_path(t, m["seq"], "👍")).status == 204  # idempotent
    assert alice.put(react_path(t, m["seq"], "👍")).status == 204
    assert alice.put(react_path(t, m["seq"], "❤️")).status == 204
    got = in_history(bob, t, m["seq"])
    assert got["reactions"] == [{"emoji": "👍", "count": 2, "user_ids": [bob.id, alice.id]},
                                {"emoji": "❤️", "count": 1, "user_ids": [alice.id]}]
    assert got["version"] == 3
    evs, _ = events(alice, since)
    assert [(e["user_id"], e["emoji"], e["op"], e["version"]) for e in evs] == \
        [(bob.id, "👍", "add", 1), (alice.id, "👍", "add", 2), (alice.id, "❤️", "add", 3)]
    assert all(e["type"] == "reaction" and e["thread_id"] == t and e["seq"] == m["seq"]
               for e in evs)
    since = inbox_cursor(alice)
    assert bob.delete(react_path(t, m["seq"], "👍")).status == 204
    assert bob.delete(react_path(t, m["seq"], "👍")).status == 204
    evs, _ = events(alice, since)
    assert [(e["user_id"], e["op"], e["version"]) for e in evs] == [(bob.id, "remove", 4)]
    assert in_history(alice, t, m["seq"])["reactions"][0] == \
        {"emoji": "👍", "count": 1, "user_ids": [alice.id]}


@pytest.mark.parametrize("emoji", ["👍🏽", "🇫🇷", "1️⃣", "👨‍👩‍👧", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "❤", "☕", "🫠"])
def test_one_emoji_of_any_kind_is_a_reaction(pair, emoji):
    alice, bob, t = pair
    m = alice.say(t, "x")
    assert bob.put(react_path(t, m["seq"], emoji)).status == 204, emoji
    assert in_history(alice, t, m["seq"])["reactions"][0]["emoji"] == emoji


@pytest.mark.parametrize("emoji", ["a", "👍👍", "👍 ", "1", ":+1:", "\u200d", "🏽", "🇫",
                                   "👍" * 9, "%FF", "<b>"])
def test_not_one_emoji_is_refused(pair, emoji):
    alice, bob, t = pair
    m = alice.say(t, "x")
    problem(bob.put(react_path(t, m["seq"], emoji)), 400, "invalid_reaction")
    assert in_history(alice, t, m["seq"])["reactions"] == []


def test_reaction_refusals(pair, new_user):
    alice, bob, t = pair
    m = alice.say(t, "x")
    problem(new_user().put(react_path(t, m["seq"], "👍")), 404, "not_found")
    problem(bob.put(react_path(t, m["seq"] + 3, "👍")), 404, "not_found")
    assert alice.delete(msg_path(t, m["seq"])).status == 204
    problem(bob.put(react_path(t, m["seq"], "👍")), 422, "message_deleted")


# ---- reply ----

def test_reply_shows_a_live_snippet(pair):
    alice, bob, t = pair
    m = alice.say(t, "x" * 150)
    r = bob.post(f"/v1/threads/{t}/messages",
                 {"client_msg_id": str(uuid.uuid4()), "body": "yes", "reply_to_seq": m["seq"]})
    assert r.status == 201, r
    reply = r.body["message"]
    assert reply["reply_to"] == {"seq": m["seq"], "sender_id": alice.id, "snippet": "x" * 100,
                                 "deleted": False}
    assert in_history(alice, t, reply["seq"])["reply_to"] == reply["reply_to"]
    alice.patch(msg_path(t, m["seq"]), {"body": "fixed"})
    assert in_history(alice, t, reply["seq"])["reply_to"]["snippet"] == "fixed"
    problem(bob.post(f"/v1/threads/{t}/messages",
                     {"client_msg_id": str(uuid.uuid4()), "body": "?", "reply_to_seq": 999}),
            422, "invalid_reply")
    problem(bob.post(f"/v1/threads/{t}/messages",
                     {"client_msg_id": str(uuid.uuid4()), "body": "?", "reply_to_seq": 0}),
            400)
    alice.delete(msg_path(t, m["seq"]))
    problem(bob.post(f"/v1/threads/{t}/messages",
                     {"client_msg_id": str(uuid.uuid4()), "body": "?",
                      "reply_to_seq": m["seq"]}), 422, "invalid_reply")


# ---- forward ----

def test_forward_copies_without_the_sender(new_users):
    alice, bob, carol = new_users(3)
    ab, bc = alice.direct(bob)["id"], bob.direct(carol)["id"]
    up = upload(alice, PNG, "dot.png")
    src = send_with(alice, ab, [up["id"]], body="look at this").body["message"]
    r = bob.post(f"/v1/threads/{bc}/messages",
                 {"client_msg_id": str(uuid.uuid4()),
                  "forward_of": {"thread_id": ab, "seq": src["seq"]}})
    assert r.status == 201, r
    fw = r.body["message"]
    assert fw["body"] == "look at this" and fw["forwarded"] == {"depth": 1}
    assert fw["sender_id"] == bob.id and str(alice.id) not in json.dumps(fw["forwarded"])
    a2 = fw["attachments"][0]
    assert a2["id"] != src["attachments"][0]["id"] and a2["sha256"] == up["attachment"]["sha256"]
    assert fetch(carol, a2["url"]).content == PNG
    # A forward of a forward is one deeper; the copy outlives its source.
    r = carol.post(f"/v1/threads/{bc}/messages",
                   {"client_msg_id": str(uuid.uuid4()),
                    "forward_of": {"thread_id": bc, "seq": fw["seq"]}})
    assert r.status == 201 and r.body["message"]["forwarded"] == {"depth": 2}
    assert alice.delete(msg_path(ab, src["seq"])).status == 204
    assert fetch(carol, a2["url"]).content == PNG
    assert in_history(carol, bc, fw["seq"])["body"] == "look at this"


def test_forward_refusals(new_users):
    alice, bob, carol = new_users(3)
    ab, bc = alice.direct(bob)["id"], bob.direct(carol)["id"]
    m = alice.say(ab, "private")
    fwd = {"thread_id": ab, "seq": m["seq"]}
    # carol can't see the source
    problem(carol.post(f"/v1/threads/{bc}/messages",
                       {"client_msg_id": str(uuid.uuid4()), "forward_of": fwd}), 404, "not_found")
    problem(bob.post(f"/v1/threads/{bc}/messages",
                     {"client_msg_id": str(uuid.uuid4()), "forward_of": fwd, "body": "and"}), 400)
    problem(bob.post(f"/v1/threads/{bc}/messages",
                     {"client_msg_id": str(uuid.uuid4()), "forward_of": {"thread_id": ab}}), 400)
    problem(bob.post(f"/v1/threads/{bc}/messages",
                     {"client_msg_id": str(uuid.uuid4()), "forward_of": [ab, 1]}), 400)
    alice.delete(msg_path(ab, m["seq"]))
    problem(bob.post(f"/v1/threads/{bc}/messages",
                     {"client_msg_id": str(uuid.uuid4()), "forward_of": fwd}), 404, "not_found")
    assert bob.history(bc)["messages"] == []


# ---- windows and limits, on a chatd of their own ----

@pytest.fixture(scope="module")
def short(db):
    with env_server(db, "actions-", {"CHAT_MESSAGE_EDIT_WINDOW_S": "1",
                                     "CHAT_MESSAGE_DELETE_WINDOW_S": "1",
                                     "CHAT_REACTIONS_DISTINCT_MAX": "2",
                                     "CHAT_RATE_LIMITS": "true",
                                     "CHAT_RATE_ACTION_PER_MIN": "60",
                                     "CHAT_RATE_ACTION_BURST": "8"}) as s:
        yield s


def test_windows_are_enforced(short):
    alice, bob = make_user(short), make_user(short)
    alice.known_by(bob)
    g = alice.group(bob)["id"]
    m = alice.say(g, "quick")
    mb = bob.say(g, "bob's")
    time.sleep(1.5)
    problem(alice.patch(msg_path(g, m["seq"]), {"body": "late"}), 422, "edit_window_expired")
    problem(bob.delete(msg_path(g, mb["seq"])), 422, "delete_window_expired")
    assert alice.delete(msg_path(g, m["seq"])).status == 204  # an admin: any time
    assert alice.delete(msg_path(g, mb["seq"])).status == 204


def test_reaction_kinds_are_limited_and_actions_rate_limited(short):
    alice, bob = make_user(short), make_user(short)
    t = alice.direct(bob)["id"]
    m = alice.say(t, "x")
    assert bob.put(react_path(t, m["seq"], "👍")).status == 204
    assert alice.put(react_path(t, m["seq"], "😂")).status == 204
    problem(bob.put(react_path(t, m["seq"], "🎉")), 422, "too_many_reactions")
    assert bob.put(react_path(t, m["seq"], "😂")).status == 204  # a kind already there
    for _ in range(8):
        r = bob.put(msg_path(t, m["seq"], "/hidden"))
        if r.status == 429:
            break
    problem(r, 429, "rate_limited")
    assert int(r.headers["Retry-After"]) >= 1


# ---- mentions and the notify setting ----

def test_mentions_name_members_only(new_users):
    alice, bob, carol, dave = new_users(4)
    alice.known_by(bob, carol)
    g = alice.group(bob, carol)["id"]
    m = alice.say(g, f"hi @{bob.username.upper()}, @{carol.username}. and @{dave.username} "
                     f"(not here), mail@{bob.username} is no mention, @{bob.username} again")
    assert m["mentions"] == {"user_ids": sorted([bob.id, carol.id]), "all": False}, m
    assert in_history(carol, g, m["seq"])["mentions"] == m["mentions"]
    # @all: a group admin's only.
    assert alice.say(g, "@all meeting now")["mentions"] == {"user_ids": [], "all": True}
    assert bob.say(g, "@all me too")["mentions"] == {"user_ids": [], "all": False}
    # An edit resolves them again.
    r = bob.patch(msg_path(g, m["seq"] + 2), {"body": f"sorry @{alice.username}"})
    assert r.status == 200 and r.body["message"]["mentions"] == \
        {"user_ids": [alice.id], "all": False}
    d = alice.direct(dave)["id"]
    assert alice.say(d, "@all in a direct chat")["mentions"]["all"] is False


def test_notify_setting(pair):
    alice, bob, t = pair
    r = bob.patch(f"/v1/threads/{t}/settings", {"notify": "mentions"})
    assert r.status == 200 and r.body["thread"]["notify"] == "mentions"
    assert r.body["thread"]["is_muted"] is False
    assert bob.thread(t)["notify"] == "mentions" and alice.thread(t)["notify"] == "all"
    r = bob.patch(f"/v1/threads/{t}/settings", {"is_muted": True})
    assert r.body["thread"]["notify"] == "none" and r.body["thread"]["is_muted"] is True
    r = bob.patch(f"/v1/threads/{t}/settings", {"is_muted": False})
    assert r.body["thread"]["notify"] == "all"
    problem(bob.patch(f"/v1/threads/{t}/settings", {"notify": "sometimes"}), 400)
    problem(bob.patch(f"/v1/threads/{t}/settings", {"notify": "all", "is_muted": True}), 400)
    problem(bob.patch(f"/v1/threads/{t}/settings", {"notify": 1}), 400)
    assert bob.thread(t)["notify"] == "all"
