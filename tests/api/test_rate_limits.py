"""Rate limits (issue 13 item 1; docs/API.md, base/ratelimit.h): each limited
action answers 429 rate_limited with Retry-After once its burst is used,
stores nothing, leaves other accounts and addresses alone, and frees again.

A chatd of its own with tight limits (the session's chatd runs without
them). Clients behind "nginx" are told apart by X-Forwarded-For, which chatd
takes from a loopback peer.
"""
import secrets
import time

import pytest

from conftest import Client, User, env_server, problem, unique_name

LIMITS = {
    "CHAT_RATE_LIMITS": "true",
    "CHAT_RATE_SEND_PER_MIN": "60", "CHAT_RATE_SEND_BURST": "3",
    "CHAT_RATE_THREAD_CHANGE_PER_MIN": "6", "CHAT_RATE_THREAD_CHANGE_BURST": "2",
    "CHAT_RATE_TYPING_PER_MIN": "6", "CHAT_RATE_TYPING_BURST": "2",
    "CHAT_RATE_USER_LOOKUP_PER_MIN": "6", "CHAT_RATE_USER_LOOKUP_BURST": "3",
    "CHAT_RATE_REGISTER_PER_MIN": "6", "CHAT_RATE_REGISTER_BURST": "2",
    "CHAT_RATE_LOGIN_PER_MIN": "6", "CHAT_RATE_LOGIN_BURST": "2",
}


@pytest.fixture(scope="module")
def limited(db):
    with env_server(db, "ratelimit-", LIMITS) as s:
        yield s


def address():
    """A client address of its own (TEST-NET-3 ranges)."""
    return f"203.0.113.{secrets.randbelow(250) + 1}, 198.51.{secrets.randbelow(250)}." \
           f"{secrets.randbelow(250) + 1}"


def user(s):
    """Registers and logs in from an address of its own."""
    name, pw = unique_name(), "rl-" + secrets.token_hex(8)
    xff = {"X-Forwarded-For": address()}
    r = Client(s).post("/v1/users", {"username": name, "password": pw}, headers=xff)
    assert r.status == 201, r
    r = Client(s).post("/v1/sessions", {"username": name, "password": pw}, headers=xff)
    assert r.status == 201, r
    return User(s, r.body["user"], pw, r.body["token"], r.body["session_id"])


def limited_answer(r):
    problem(r, 429, "rate_limited")
    wait = int(r.headers["Retry-After"])
    assert wait >= 1, r
    return wait


def test_sends_are_limited_per_account_and_free_again(limited):
    a, b = user(limited), user(limited)
    t = a.direct(b)["id"]
    for i in range(3):
        assert a.send(t, f"m{i}").status == 201
    r = a.send(t, "one too many", cmid="over")
    wait = limited_answer(r)
    assert wait <= 2, r
    assert [m["body"] for m in a.history(t)["messages"]] == ["m0", "m1", "m2"], \
        "a refused send stored something"
    assert b.send(t, "b is not limited").status == 201
    time.sleep(wait)
    r = a.send(t, "after the wait", cmid="over")
    assert r.status == 201, r
    # the direct route counts against the same bucket
    for _ in range(4):
        r = a.post("/v1/messages", {"to": b.id, "client_msg_id": secrets.token_hex(4),
                                    "body": "x"})
    limited_answer(r)


def test_thread_changes_are_limited(limited):
    c, d, e = user(limited), user(limited), user(limited)
    g = c.group(d, e, title="one")["id"]
    assert c.patch(f"/v1/threads/{g}", {"title": "two"}).status == 200
    r = c.patch(f"/v1/threads/{g}", {"title": "three"})
    limited_answer(r)
    assert c.thread(g)["title"] == "two", "a refused rename changed the title"
    r = c.delete(f"/v1/threads/{g}/members/{e.id}")
    limited_answer(r)
    assert e.id in c.thread(g)["member_ids"]
    # d's own bucket is full
    assert d.patch(f"/v1/threads/{g}", {"title": "by d"}).status == 200


def test_typing_is_limited(limited):
    a, b = user(limited), user(limited)
    t = a.direct(b)["id"]
    for _ in range(2):
        assert a.post(f"/v1/threads/{t}/typing").status == 204
    limited_answer(a.post(f"/v1/threads/{t}/typing"))
    assert b.post(f"/v1/threads/{t}/typing").status == 204


def test_user_lookups_and_searches_are_limited(limited):
    a, b = user(limited), user(limited)
    for _ in range(2):
        assert a.get(f"/v1/users/{b.id}").status == 200
    assert a.get("/v1/users", params={"q": b.username}).status == 200
    limited_answer(a.get(f"/v1/users/{b.id}"))
    limited_answer(a.get("/v1/users", params={"q": b.username}))
    assert b.get(f"/v1/users/{a.id}").status == 200


def test_registrations_and_logins_are_limited_per_address(limited):
    xff = {"X-Forwarded-For": "198.51.100.77"}
    names = []
    for _ in range(2):
        names.append(unique_name())
        r = Client(limited).post("/v1/users", {"username": names[-1],
                                               "password": "Zq8-rl-Vm3x-Lp7k"}, headers=xff)
        assert r.status == 201, r
    late = unique_name()
    r = Client(limited).post("/v1/users", {"username": late, "password": "Zq8-rl-Vm3x-Lp7k"},
                             headers=xff)
    limited_answer(r)
    # nothing was registered: the name is still free, from another address
    r = Client(limited).post("/v1/users", {"username": late, "password": "Zq8-rl-Vm3x-Lp7k"},
                             headers={"X-Forwarded-For": "198.51.100.78"})
    assert r.status == 201, r

    xff = {"X-Forwarded-For": "198.51.100.79"}
    for _ in range(2):
        r = Client(limited).post("/v1/sessions", {"username": names[0],
                                                  "password": "Zq8-rl-Vm3x-Lp7k"}, headers=xff)
        assert r.status == 201, r
    r = Client(limited).post("/v1/sessions", {"username": names[0],
                                              "password": "Zq8-rl-Vm3x-Lp7k"}, headers=xff)
    limited_answer(r)
    r = Client(limited).post("/v1/sessions", {"username": names[0],
                                              "password": "Zq8-rl-Vm3x-Lp7k"},
                             headers={"X-Forwarded-For": "198.51.100.80"})
    assert r.status == 201, r
