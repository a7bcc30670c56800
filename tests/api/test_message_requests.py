"""Message requests (issue 13, item 4): a group add from someone who is not
in the added user's contacts is a request the user accepts or declines.
While it is one, the membership does not make the two known to each other
(presence, user search) and the member gets no push for the group."""
from conftest import make_user, presence_server  # noqa: F401  (a fixture)


def test_stranger_add_is_a_request(new_users):
    alice, bob, carol = new_users(3)
    g = alice.group(bob, carol, title="Stranger group")
    assert g["request"] is None  # the creator's own view
    t = bob.thread(g["id"])
    assert t["request"] == {"from": alice.id}
    listed = [x for x in bob.get("/v1/threads").body["threads"] if x["id"] == g["id"]]
    assert listed and listed[0]["request"] == {"from": alice.id}
    # The member can read it, to decide.
    alice.say(g["id"], "hi there")
    assert bob.history(g["id"])["messages"][-1]["body"] == "hi there"


def test_contact_add_is_not_a_request(new_users):
    alice, bob = new_users(2)
    alice.known_by(bob)
    g = alice.group(bob)
    assert bob.thread(g["id"])["request"] is None


def test_members_add_from_a_stranger(new_users):
    alice, bob, carol = new_users(3)
    alice.known_by(bob)
    g = alice.group(bob)
    assert bob.post(f"/v1/threads/{g['id']}/members", {"user_ids": [carol.id]}).status == 200
    assert carol.thread(g["id"])["request"] == {"from": bob.id}


def test_accept(new_users):
    alice, bob = new_users(2)
    g = alice.group(bob)
    r = bob.post(f"/v1/threads/{g['id']}/accept")
    assert r.status == 200 and r.body["thread"]["request"] is None
    assert bob.thread(g["id"])["request"] is None
    r = bob.post(f"/v1/threads/{g['id']}/accept")
    assert r.status == 409 and r.body["code"] == "not_a_request"
    r = alice.post(f"/v1/threads/{g['id']}/decline")
    assert r.status == 409 and r.body["code"] == "not_a_request"


def test_sending_accepts(new_users):
    alice, bob = new_users(2)
    g = alice.group(bob)
    bob.say(g["id"], "ok, I'm in")
    assert bob.thread(g["id"])["request"] is None


def test_decline_leaves(new_users):
    alice, bob, carol = new_users(3)
    g = alice.group(bob, carol)
    assert bob.post(f"/v1/threads/{g['id']}/decline").status == 204
    assert bob.get(f"/v1/threads/{g['id']}").status == 404
    assert bob.id not in alice.thread(g["id"])["member_ids"]
    # Not blocked: a new add is a new request.
    assert alice.post(f"/v1/threads/{g['id']}/members", {"user_ids": [bob.id]}).status == 200
    assert bob.thread(g["id"])["request"] == {"from": alice.id}


def test_decline_and_block(new_users):
    alice, bob = new_users(2)
    g = alice.group(bob)
    assert bob.post(f"/v1/threads/{g['id']}/decline", {"block": True}).status == 204
    assert bob.get(f"/v1/threads/{g['id']}").status == 404
    r = alice.post("/v1/threads", {"member_ids": [bob.id], "title": "again"})
    assert r.status == 403 and r.body["code"] == "blocked"
    r = alice.post(f"/v1/threads/{g['id']}/members", {"user_ids": [bob.id]})
    assert r.status == 403


def test_request_routes_bad_input_and_permissions(new_users):
    alice, bob, dave = new_users(3)
    g = alice.group(bob)
    for path in ("accept", "decline"):
        assert dave.post(f"/v1/threads/{g['id']}/{path}").status == 404
        assert bob.post(f"/v1/threads/999999999/{path}").status == 404
    r = bob.post(f"/v1/threads/{g['id']}/decline", {"block": "yes"})
    assert r.status == 400
    assert bob.thread(g["id"])["request"] == {"from": alice.id}


def test_user_search_does_not_see_through_a_request(new_users):
    alice, bob = new_users(2)
    g = alice.group(bob)
    found = [u["id"] for u in bob.get("/v1/users", params={"q": alice.username[:4]})
             .body["users"]]
    assert alice.id not in found
    bob.post(f"/v1/threads/{g['id']}/accept")
    found = [u["id"] for u in bob.get("/v1/users", params={"q": alice.username[:4]})
             .body["users"]]
    assert alice.id in found


def test_presence_does_not_flow_through_a_request(presence_server):
    alice, bob = make_user(presence_server), make_user(presence_server)
    g = alice.group(bob)
    r = bob.get("/v1/presence", params={"user_ids": str(alice.id)})
    assert str(alice.id) not in r.body["presence"]
    r = alice.get("/v1/presence", params={"user_ids": str(bob.id)})
    assert str(bob.id) not in r.body["presence"]
    bob.post(f"/v1/threads/{g['id']}/accept")
    r = bob.get("/v1/presence", params={"user_ids": str(alice.id)})
    assert str(alice.id) in r.body["presence"]
