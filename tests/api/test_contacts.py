"""Contacts (nicknames, presence) and blocks, with what a block forbids."""
import time
import uuid

import pytest

from conftest import problem, register, unique_name


def contacts(u):
    st, b = u.get("/v1/contacts")
    assert st == 200, b
    return b["contacts"]


def blocks(u):
    st, b = u.get("/v1/blocks")
    assert st == 200, b
    return b["users"]


# -- contacts -------------------------------------------------------------------

def test_contacts_start_empty(new_user):
    assert contacts(new_user()) == []


def test_put_list_delete_contact(new_users):
    a, b, c = new_users(3)
    st, body = a.put(f"/v1/contacts/{b.id}")
    assert st == 200, body
    ct = body["contact"]
    assert set(ct) == {"user", "nickname", "presence"}
    assert ct["user"] == b.user
    assert ct["nickname"] is None
    assert ct["presence"] is None  # b has not added a back: no presence
    assert b.put(f"/v1/contacts/{a.id}").status == 200
    ct = a.put(f"/v1/contacts/{b.id}").body["contact"]
    assert set(ct["presence"]) == {"state", "last_seen_at"}
    st, body = a.put(f"/v1/contacts/{c.id}", {"nickname": "Cee"})
    assert st == 200, body
    assert body["contact"]["nickname"] == "Cee"
    listed = contacts(a)
    assert {x["user"]["id"]: x["nickname"] for x in listed} == {b.id: None, c.id: "Cee"}
    # ordered by username
    assert [x["user"]["username"] for x in listed] == sorted([b.username, c.username])

    r = a.delete(f"/v1/contacts/{b.id}")
    assert r.status == 204, r
    assert [x["user"]["id"] for x in contacts(a)] == [c.id]
    # deleting again is fine and changes nothing
    assert a.delete(f"/v1/contacts/{b.id}").status == 204
    assert [x["user"]["id"] for x in contacts(a)] == [c.id]


def test_contact_nickname_updates(new_users):
    a, b = new_users(2)
    assert a.put(f"/v1/contacts/{b.id}", {"nickname": "Bee"}).body["contact"]["nickname"] == "Bee"
    # PUT without a nickname keeps the nickname
    assert a.put(f"/v1/contacts/{b.id}").body["contact"]["nickname"] == "Bee"
    assert a.put(f"/v1/contacts/{b.id}", {}).body["contact"]["nickname"] == "Bee"
    assert a.put(f"/v1/contacts/{b.id}", {"nickname": "Bumble 🐝"}).body["contact"]["nickname"] \
        == "Bumble 🐝"
    assert contacts(a)[0]["nickname"] == "Bumble 🐝"
    # null (or "") clears it
    assert a.put(f"/v1/contacts/{b.id}", {"nickname": None}).body["contact"]["nickname"] is None
    a.put(f"/v1/contacts/{b.id}", {"nickname": "x"})
    assert a.put(f"/v1/contacts/{b.id}", {"nickname": ""}).body["contact"]["nickname"] is None
    assert len(contacts(a)) == 1


@pytest.mark.parametrize("body", [{"nickname": 5}, {"nickname": "n" * 65}, {"nickname": ["x"]}])
def test_contact_bad_nickname_is_400(new_users, body):
    a, b = new_users(2)
    problem(a.put(f"/v1/contacts/{b.id}", body), 400, "invalid_request")
    assert contacts(a) == []


def test_contact_nickname_of_64_characters(new_users):
    a, b = new_users(2)
    nick = "ñ" * 64
    st, body = a.put(f"/v1/contacts/{b.id}", {"nickname": nick})
    assert st == 200, body
    assert body["contact"]["nickname"] == nick


def test_contacts_are_private(new_users):
    a, b, c = new_users(3)
    a.put(f"/v1/contacts/{c.id}", {"nickname": "mine"})
    assert contacts(b) == []
    assert contacts(c) == []


def test_put_unknown_user_is_404(new_user):
    a = new_user()
    problem(a.put("/v1/contacts/9007199254740992"), 404, "not_found")
    problem(a.put("/v1/contacts/9007199254740992", {"nickname": "ghost"}), 404, "not_found")
    assert contacts(a) == []


def test_contact_presence(server, new_users):
    a, b = new_users(2)
    # b has just made an authenticated request: online, seen a moment ago
    assert b.put(f"/v1/contacts/{a.id}").status == 200  # mutual contacts
    assert b.get("/v1/me").status == 200
    p = a.put(f"/v1/contacts/{b.id}").body["contact"]["presence"]
    assert p["state"] == "online"
    assert abs(p["last_seen_at"] - time.time() * 1000) < 60_000
    # a user who never logged in (and so never added a back) shows nothing
    name = unique_name()
    cid = register(server, name, "password1-long-enough").body["user"]["id"]
    assert a.put(f"/v1/contacts/{cid}").body["contact"]["presence"] is None
    listed = {x["user"]["id"]: x["presence"] and x["presence"]["state"] for x in contacts(a)}
    assert listed == {b.id: "online", cid: None}


# -- blocks ---------------------------------------------------------------------

def test_block_list_put_delete(new_users):
    a, b, c = new_users(3)
    assert blocks(a) == []
    r = a.put(f"/v1/blocks/{b.id}")
    assert r.status == 204, r
    assert a.put(f"/v1/blocks/{b.id}").status == 204   # again: no change
    assert a.put(f"/v1/blocks/{c.id}").status == 204
    assert sorted(blocks(a), key=lambda u: u["id"]) == sorted([b.user, c.user],
                                                              key=lambda u: u["id"])
    assert blocks(b) == []  # private to the blocker
    assert a.delete(f"/v1/blocks/{b.id}").status == 204
    assert blocks(a) == [c.user]
    assert a.delete(f"/v1/blocks/{b.id}").status == 204
    assert blocks(a) == [c.user]


def test_block_unknown_user_is_404(new_user):
    a = new_user()
    problem(a.put("/v1/blocks/9007199254740992"), 404, "not_found")
    assert blocks(a) == []


def test_cannot_block_yourself(new_user):
    a = new_user()
    problem(a.put(f"/v1/blocks/{a.id}"), 400, "invalid_request")
    assert blocks(a) == []


def test_blocked_user_cannot_open_a_direct_thread(new_users):
    a, b = new_users(2)
    assert a.put(f"/v1/blocks/{b.id}").status == 204
    # neither the blocked user nor the blocker
    problem(b.post("/v1/threads", {"member_ids": [a.id]}), 403, "blocked")
    problem(a.post("/v1/threads", {"member_ids": [b.id]}), 403, "blocked")
    problem(b.post("/v1/messages", {"to": a.id, "client_msg_id": "m1", "body": "hi"}),
            403, "blocked")
    problem(a.post("/v1/messages", {"to": b.id, "client_msg_id": "m1", "body": "hi"}),
            403, "blocked")
    # no thread came into being
    assert a.get("/v1/threads").body["threads"] == []
    assert b.get("/v1/threads").body["threads"] == []
    # unblocking restores it
    assert a.delete(f"/v1/blocks/{b.id}").status == 204
    st, body = b.post("/v1/threads", {"member_ids": [a.id]})
    assert st == 201, body
    assert b.post("/v1/messages", {"to": a.id, "client_msg_id": "m1", "body": "hi"}).status == 201


def test_block_stops_sends_into_an_existing_direct_thread(new_users):
    a, b = new_users(2)
    t = a.direct(b)
    a.say(t["id"], "before")
    assert b.put(f"/v1/blocks/{a.id}").status == 204
    problem(a.send(t["id"], "from the blocked"), 403, "blocked")
    problem(b.send(t["id"], "from the blocker"), 403, "blocked")
    problem(a.post("/v1/messages", {"to": b.id, "client_msg_id": str(uuid.uuid4()),
                                    "body": "x"}), 403, "blocked")
    # opening the existing thread is refused as well
    problem(a.post("/v1/threads", {"member_ids": [b.id]}), 403, "blocked")
    assert a.thread(t["id"])["last_seq"] == 1
    assert [m["body"] for m in b.history(t["id"])["messages"]] == ["before"]
    # the history stays readable
    assert a.history(t["id"])["messages"][0]["body"] == "before"
    assert b.delete(f"/v1/blocks/{a.id}").status == 204
    assert a.say(t["id"], "after")["seq"] == 2
    assert b.say(t["id"], "again")["seq"] == 3


def test_blocks_both_ways_need_both_unblocks(new_users):
    a, b = new_users(2)
    assert a.put(f"/v1/blocks/{b.id}").status == 204
    assert b.put(f"/v1/blocks/{a.id}").status == 204
    assert a.delete(f"/v1/blocks/{b.id}").status == 204
    problem(a.post("/v1/threads", {"member_ids": [b.id]}), 403, "blocked")
    problem(b.post("/v1/threads", {"member_ids": [a.id]}), 403, "blocked")
    assert b.delete(f"/v1/blocks/{a.id}").status == 204
    assert a.post("/v1/threads", {"member_ids": [b.id]}).status == 201


def test_block_does_not_affect_existing_groups(new_users):
    a, b, c = new_users(3)
    g = a.group(b, c, title="unaffected")
    assert a.put(f"/v1/blocks/{b.id}").status == 204
    assert b.say(g["id"], "from b")["seq"] == 1
    assert a.say(g["id"], "from a")["seq"] == 2
    # but no new group puts one into it with the other (test_consent.py)
    st, body = b.post("/v1/threads", {"member_ids": [a.id], "title": "new one"})
    assert st == 403 and body["code"] == "blocked", body


def test_block_by_third_party_does_not_matter(new_users):
    a, b, c = new_users(3)
    assert c.put(f"/v1/blocks/{a.id}").status == 204
    t = a.direct(b)
    assert a.say(t["id"])["seq"] == 1
