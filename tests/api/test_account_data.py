"""The caller's data and leaving (API.md "Retention and accounts", issue 15;
chat/account.h): GET /v1/me/export, DELETE /v1/me."""
import time
import uuid

from conftest import login, make_user, problem, register
from test_attachments import PNG, fetch, send_with, upload


def test_export_holds_the_callers_data_only(new_users):
    alice, bob, carol = new_users(3)
    assert alice.put(f"/v1/contacts/{bob.id}", {"nickname": "Bobby"}).status in (200, 201)
    assert alice.put(f"/v1/blocks/{carol.id}", {}).status in (200, 201, 204)
    t = alice.direct(bob)["id"]
    m1 = alice.say(t, "export me")
    m2 = bob.say(t, "and me")
    assert alice.put(f"/v1/threads/{t}/messages/{m2['seq']}/hidden").status == 204
    other = bob.direct(carol)["id"]
    bob.say(other, "not alice's business")
    r = alice.get("/v1/me/export")
    assert r.status == 200, r
    assert "attachment" in r.headers.get("Content-Disposition", "")
    d = r.body
    assert set(d) == {"exported_at", "user", "contacts", "blocks", "threads", "truncated"}
    assert d["user"]["id"] == alice.id and d["user"]["username"] == alice.username
    assert [(c["user"]["id"], c["nickname"]) for c in d["contacts"]] == [(bob.id, "Bobby")]
    assert [b["user_id"] for b in d["blocks"]] == [carol.id]
    assert [x["id"] for x in d["threads"]] == [t]
    msgs = d["threads"][0]["messages"]
    assert msgs[0]["body"] == "export me" and msgs[0]["seq"] == m1["seq"]
    assert msgs[1] == {"thread_id": t, "seq": m2["seq"], "hidden": True}
    assert "not alice's business" not in r.text and d["truncated"] is False


def test_deleting_the_account(new_users, server):
    alice, bob, carol = new_users(3)
    alice.known_by(bob, carol)
    g = alice.group(bob, carol)["id"]
    d = alice.direct(bob)["id"]
    word = "leaving" + uuid.uuid4().hex[:8]
    m = alice.say(g, f"bye {word}")
    up = upload(alice, PNG, "me.png")
    pic = send_with(alice, d, [up["id"]], body="photo").body["message"]
    bob.say(g, "stay")
    other = alice.device()
    problem(alice.call("DELETE", "/v1/me", {"password": "not it at all"}), 403, "wrong_password")
    problem(alice.call("DELETE", "/v1/me", {}), 400)
    assert alice.get("/v1/me").status == 200  # nothing happened
    r = alice.call("DELETE", "/v1/me", {"password": alice.password})
    assert r.status == 204, r
    # Every session ends; the name no longer logs in, and is free again.
    for dev in (alice, other):
        problem(dev.get("/v1/me"), 401, "unauthorized")
    assert login(server, alice.username, alice.password).status == 401
    assert register(server, alice.username, "a new password 12345").status == 201
    # The others see tombstones from a deleted user, who left the group.
    hist = {x["seq"]: x for x in bob.history(g)["messages"]}
    assert hist[m["seq"]]["body"] == "" and hist[m["seq"]]["deleted_at"]
    assert bob.get(f"/v1/users/{alice.id}").body["user"]["display_name"] == "Deleted user"
    assert alice.id not in bob.thread(g)["member_ids"]
    assert alice.id in bob.thread(d)["member_ids"]  # a direct thread stays, for Bob
    assert fetch(bob, pic["attachments"][0]["url"]).status_code == 404
    assert word not in bob.get(f"/v1/threads/{g}/messages").text
    time.sleep(0.5)
    assert bob.get("/v1/search/messages", params={"q": word}).body["results"] == []
    assert [x["body"] for x in bob.history(g)["messages"] if x["seq"] != m["seq"]][-1] == "stay"
    assert not any(c["user"]["id"] == alice.id for c in carol.get("/v1/contacts").body["contacts"])
