"""Consent and input checks (issue 13, items 4 and 5): blocks in groups,
client_msg_id that a PAD SPACE key would confuse, display names that could
reorder or hide text, push tokens and topics that go into a URL or header."""
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import inbox_cursor, login, make_user, problem, register, unique_name

PUSH = "/v1/sessions/current/push"


# -- client_msg_id ---------------------------------------------------------

@pytest.mark.parametrize("cmid", ["abc ", " abc", "a\tb", "a\x7fb", "a\u202eb", "a\u200bb",
                                  "abc\u00a0", "\ufeffabc"])
def test_client_msg_id_with_space_or_hidden_characters_is_refused(new_user, cmid):
    a, b = new_user(), new_user()
    g = a.group(b)["id"]
    problem(a.send(g, cmid=cmid), 400, "invalid_request")
    assert a.thread(g)["last_seq"] == 0


def test_trailing_space_id_does_not_disturb_other_sends(new_user):
    a, b = new_user(), new_user()
    g = a.group(b)["id"]
    a.say(g, cmid="same")
    ids = [f"m{i}" for i in range(20)]

    def send(i):
        if i % 2:
            return "bad", a.send(g, cmid="same ")
        return "good", a.send(g, body=f"ok {i}", cmid=ids[i])

    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(send, range(len(ids))))
    for kind, r in results:
        if kind == "bad":
            problem(r, 400, "invalid_request")
        else:
            assert r.status == 201, r
    bodies = [m["body"] for m in a.history(g, limit=100)["messages"]]
    assert sorted(bodies) == sorted(["hello"] + [f"ok {i}" for i in range(0, 20, 2)])


def test_client_msg_ids_differing_in_case_are_two_messages(new_user):
    a, b = new_user(), new_user()
    g = a.group(b)["id"]
    m1 = a.say(g, body="one", cmid="Abc")
    r = a.send(g, body="two", cmid="abc")
    assert r.status == 201, r
    assert r.body["message"]["seq"] != m1["seq"]
    r = a.send(g, body="one", cmid="Abc")
    assert r.status == 200 and r.body["message"]["seq"] == m1["seq"], r


# -- display names ---------------------------------------------------------

@pytest.mark.parametrize("name", ["a\u202eevil", "x\u2066y\u2069", "bell\x07", "nl\nname",
                                  "zw\u200bsp", "\ufeffbom", "   ", "a" * 65, "\u00ad"])
def test_bad_display_names_are_refused(server, name):
    u = unique_name()
    problem(register(server, u, "pw-" + secrets.token_hex(8), name), 400, "invalid_request")
    # nothing was created: the name is still free
    r = register(server, u, "pw-" + secrets.token_hex(8))
    assert r.status == 201, r


def test_display_name_is_trimmed_and_counted_in_characters(server):
    r = register(server, unique_name(), "pw-" + secrets.token_hex(8), "  Zoë 👩‍👩‍👧  ")
    assert r.status == 201, r
    assert r.body["user"]["display_name"] == "Zoë 👩‍👩‍👧"
    r = register(server, unique_name(), "pw-" + secrets.token_hex(8), "é" * 64)
    assert r.status == 201, r


# -- thread titles, nicknames, device names ---------------------------------

BAD_NAMES = ["a\u202eevil", "x\u2066y\u2069", "bell\x07", "nl\nname", "zw\u200bsp",
             "\ufeffbom", "\u00ad"]


@pytest.mark.parametrize("name", BAD_NAMES + ["   "])
def test_bad_thread_titles_are_refused_and_change_nothing(new_user, name):
    a, b = new_user(), new_user()
    problem(a.post("/v1/threads", {"member_ids": [b.id], "title": name}), 400, "invalid_request")
    assert a.get("/v1/threads").body["threads"] == []
    g = a.group(b, title="Trip")
    problem(a.patch(f"/v1/threads/{g['id']}", {"title": name}), 400, "invalid_request")
    assert a.thread(g["id"])["title"] == "Trip"


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_nicknames_are_refused(new_user, name):
    a, b = new_user(), new_user()
    problem(a.put(f"/v1/contacts/{b.id}", {"nickname": name}), 400, "invalid_request")
    assert a.get("/v1/contacts").body["contacts"] == []
    g = a.group(b)
    problem(a.patch(f"/v1/threads/{g['id']}/settings", {"nickname": name}), 400,
            "invalid_request")


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_device_names_are_refused(server, name):
    u = make_user(server)
    problem(login(server, u.username, u.password, name), 400, "invalid_request")
    assert len(u.get("/v1/sessions").body["sessions"]) == 1


def test_names_are_trimmed(new_user, server):
    a, b = new_user(), new_user()
    r = a.post("/v1/threads", {"member_ids": [b.id], "title": "  Trip 🏔 "})
    assert r.status == 201 and r.body["thread"]["title"] == "Trip 🏔", r
    r = a.put(f"/v1/contacts/{b.id}", {"nickname": " Bobby "})
    assert r.status == 200 and r.body["contact"]["nickname"] == "Bobby", r
    r = login(server, a.username, a.password, " laptop ")
    assert r.status == 201, r
    names = {s["device_name"] for s in a.get("/v1/sessions").body["sessions"]}
    assert "laptop" in names, names


# -- push tokens and topics ------------------------------------------------

@pytest.mark.parametrize("body", [
    {"provider": "apns", "token": "ab" * 16},                       # too short
    {"provider": "apns", "token": "zz" * 32},                       # not hex
    {"provider": "apns", "token": "ab" * 32 + "/../x"},             # path
    {"provider": "apns", "token": "a" * 65},                        # odd
    {"provider": "fcm", "token": "x" * 40 + "\r\nX-Evil: 1"},       # header
    {"provider": "fcm", "token": "x" * 40 + "/y"},
    {"provider": "fcm", "token": "short"},
    {"provider": "apns", "token": "ab" * 32, "topic": "com.example\r\nx: y"},
    {"provider": "apns", "token": "ab" * 32, "topic": "com example"},
])
def test_bad_push_tokens_and_topics_are_refused(new_user, body):
    u = new_user()
    problem(u.put(PUSH, body), 400, "invalid_request")


def test_good_push_tokens_are_taken(new_user):
    u = new_user()
    r = u.put(PUSH, {"provider": "apns", "token": secrets.token_hex(32),
                     "topic": "com.example.chat.voip"})
    assert r.status == 204, r
    r = u.put(PUSH, {"provider": "fcm",
                     "token": "f1:APA91b" + secrets.token_urlsafe(100)})
    assert r.status == 204, r


# -- blocks in groups ------------------------------------------------------

@pytest.mark.parametrize("who_blocks", ["adder", "added"])
def test_group_add_refused_across_a_block(new_user, who_blocks):
    a, b, c = new_user(), new_user(), new_user()
    blocker, blocked = (a, b) if who_blocks == "adder" else (b, a)
    assert blocker.put(f"/v1/blocks/{blocked.id}").status in (200, 204)
    before = {t["id"] for t in b.get("/v1/threads").body["threads"]}
    # at creation
    problem(a.post("/v1/threads", {"member_ids": [b.id, c.id], "title": "g"}), 403, "blocked")
    # on member add
    g = a.group(c)["id"]
    problem(a.post(f"/v1/threads/{g}/members", {"user_ids": [b.id]}), 403, "blocked")
    assert sorted(a.thread(g)["member_ids"]) == sorted([a.id, c.id])
    assert {t["id"] for t in b.get("/v1/threads").body["threads"]} == before
    # unblocked, the add works again
    assert blocker.delete(f"/v1/blocks/{blocked.id}").status in (200, 204)
    assert a.post(f"/v1/threads/{g}/members", {"user_ids": [b.id]}).status in (200, 201)


# -- user search -----------------------------------------------------------

def test_search_lists_contacts_and_co_members_by_prefix_strangers_by_exact_name(server, new_user):
    base = "q" + secrets.token_hex(4)
    me, contact, co, stranger = (new_user(name=f"{base}{s}") for s in ("me", "c", "m", "s"))

    def search(who, q):
        r = who.get("/v1/users", params={"q": q})
        assert r.status == 200, r
        return sorted(u["username"] for u in r.body["users"])

    assert search(me, base) == []  # strangers all
    assert me.put(f"/v1/contacts/{contact.id}", {}).status == 200
    me.known_by(co)  # else the group is a message request for co: no co-membership
    me.group(co, title="co")
    assert search(me, base) == sorted([f"{base}c", f"{base}m", f"{base}me"])
    # the stranger only by the exact username, in any case
    assert search(me, f"{base}s") == [f"{base}s"]
    assert search(me, f"{base}S".upper()) == [f"{base}s"]
    # the one-sided contact does not make the caller findable by prefix
    assert search(contact, base) == []


# -- presence --------------------------------------------------------------

def presence_of(viewer, *ids):
    r = viewer.get("/v1/presence", params={"user_ids": ",".join(str(i) for i in ids)})
    assert r.status == 200, r
    return r.body["presence"]


def contact_presence(viewer, uid):
    r = viewer.put(f"/v1/contacts/{uid}")
    assert r.status == 200, r
    return r.body["contact"]["presence"]


def test_presence_needs_a_mutual_contact_or_a_shared_thread(new_user):
    u, fan, friend = new_user(), new_user(), new_user()
    # fan added u; u did not add fan back
    assert contact_presence(fan, u.id) is None
    assert presence_of(fan, u.id) == {}
    # friend and u have each other
    assert u.put(f"/v1/contacts/{friend.id}").status == 200
    assert contact_presence(friend, u.id)["state"] in ("online", "offline")
    assert set(presence_of(friend, u.id)) == {str(u.id)}


def test_presence_never_across_a_block_even_in_a_shared_group(new_user):
    u, other, third = new_user(), new_user(), new_user()
    u.known_by(other, third)  # not message requests: co-members
    u.group(other, third)
    assert set(presence_of(other, u.id)) == {str(u.id)}
    assert u.put(f"/v1/contacts/{other.id}").status == 200
    assert other.put(f"/v1/contacts/{u.id}").status == 200
    assert u.put(f"/v1/blocks/{other.id}").status == 204
    assert presence_of(other, u.id) == {}           # the blocked sees nothing
    assert presence_of(u, other.id) == {}           # nor the blocker
    assert contact_presence(other, u.id) is None
    assert set(presence_of(third, u.id)) == {str(u.id)}


def test_presence_events_reach_only_those_allowed(presence_server):
    from conftest import ParkedPoll, make_user
    u, friend, fan, blocked = (make_user(presence_server) for _ in range(4))
    assert u.put(f"/v1/contacts/{friend.id}").status == 200
    assert friend.put(f"/v1/contacts/{u.id}").status == 200
    assert fan.put(f"/v1/contacts/{u.id}").status == 200
    u.group(blocked, title="with a blocked member")
    assert u.put(f"/v1/blocks/{blocked.id}").status == 204
    # wait until u is offline (the presence window is 2 s on this server)
    deadline = time.monotonic() + 30
    while presence_of(friend, u.id)[str(u.id)]["state"] != "offline":
        assert time.monotonic() < deadline, "u never went offline"
        time.sleep(0.2)

    t0 = int(time.time() * 1000)

    def is_u(evs):  # u coming online now, not an event of before
        return any(e["type"] == "presence" and e["user_id"] == u.id and e["state"] == "online"
                   and e["last_seen_at"] >= t0 for e in evs)

    polls = {w: ParkedPoll(w, inbox_cursor(w), timeout=3, deadline=6, until=is_u)
             for w in (friend, fan, blocked)}
    for p in polls.values():
        p.wait_parked()
    assert u.get("/v1/me").status == 200            # u comes online
    for p in polls.values():
        p.join()
    assert is_u(polls[friend].events()), polls[friend].answers
    assert not [e for e in polls[fan].events() if e["type"] == "presence"]
    assert not is_u(polls[blocked].events())


def test_adding_back_tells_the_other_side_at_once(presence_server):
    """The first add shows nothing; the add back makes the contact mutual,
    and the first side learns the adder's presence without asking again."""
    from conftest import ParkedPoll, make_user
    u, fan = make_user(presence_server), make_user(presence_server)
    assert fan.put(f"/v1/contacts/{u.id}").status == 200

    def is_u(evs):
        return any(e["type"] == "presence" and e["user_id"] == u.id for e in evs)

    poll = ParkedPoll(fan, inbox_cursor(fan), timeout=3, deadline=6, until=is_u)
    poll.wait_parked()
    assert u.put(f"/v1/contacts/{fan.id}").status == 200
    poll.join()
    ev = [e for e in poll.events() if e["type"] == "presence" and e["user_id"] == u.id]
    assert ev and ev[0]["state"] == "online", poll.answers
    # a one-sided add tells no one
    stranger = make_user(presence_server)
    poll = ParkedPoll(u, inbox_cursor(u), timeout=2, deadline=4,
                      until=lambda evs: any(e["type"] == "presence" for e in evs))
    poll.wait_parked()
    assert stranger.put(f"/v1/contacts/{u.id}").status == 200
    poll.join()
    assert not [e for e in poll.events() if e["type"] == "presence"
                and e["user_id"] == stranger.id], poll.answers
