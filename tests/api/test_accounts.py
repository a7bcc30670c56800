"""Accounts, login, throttling, sessions (devices), users lookup and search."""
import secrets
import time

import pytest
import requests

from conftest import Client, login, problem, register, unique_name

USER_KEYS = {"id", "username", "display_name"}


# -- registration -------------------------------------------------------------

def test_register_answers_201_with_user(server):
    name = unique_name("Reg")
    r = register(server, name, "correct horse")
    assert r.status == 201, r
    assert r.headers["Content-Type"].startswith("application/json")
    u = r.body["user"]
    assert set(r.body) == {"user"}
    assert set(u) == USER_KEYS
    assert isinstance(u["id"], int) and u["id"] >= 1
    assert u["username"] == name.lower()
    assert u["display_name"] == name  # defaults to the name as typed


def test_register_with_display_name(server):
    r = register(server, unique_name(), "correct horse", display_name="Zoë 🌷")
    assert r.status == 201, r
    assert r.body["user"]["display_name"] == "Zoë 🌷"


@pytest.mark.parametrize("display_name,ok", [("D" * 64, True), ("ü" * 64, True), ("x", True),
                                               ("D" * 65, False), ("", False), (5, False),
                                               (["a"], False)])
def test_display_name_rules(server, display_name, ok):
    name = unique_name()
    r = register(server, name, "password1-long-enough", display_name=display_name)
    if ok:
        assert r.status == 201, r
        assert r.body["user"]["display_name"] == display_name
    else:
        problem(r, 400, "invalid_request")
        assert register(server, name, "password1-long-enough").status == 201  # nothing was created


def test_display_name_null_defaults_to_the_name(server):
    name = unique_name("Nul")
    r = register(server, name, "password1-long-enough", display_name=None)
    assert r.status == 201
    r = Client(server).post("/v1/users", {"username": name + "x", "password": "password1-long-enough",
                                         "display_name": None})
    assert r.status == 201, r
    assert r.body["user"]["display_name"] == name + "x"


def test_user_ids_are_distinct(new_users):
    users = new_users(3)
    assert len({u.id for u in users}) == 3


@pytest.mark.parametrize("shape", ["A_b.c-D", "0123", "x.y", "a-b", "UPPER", "__", "..", "--"])
def test_valid_usernames(server, shape):
    name = shape + secrets.token_hex(4)
    r = register(server, name, "password1-long-enough")
    assert r.status == 201, (name, r)
    assert r.body["user"]["username"] == name.lower()
    assert r.body["user"]["display_name"] == name


def test_usernames_of_3_and_32_characters(server):
    for name in ("_" + secrets.token_hex(1), ("x" + secrets.token_hex(16))[:32]):
        assert len(name) in (3, 32)
        r = register(server, name, "password1-long-enough")
        assert r.status == 201, (name, r)
        assert login(server, name, "password1-long-enough").status == 201


@pytest.mark.parametrize("name", [
    "ab",                          # too short
    "a" * 33,                      # too long
    "",
    "has space",
    "ålice",                       # not ASCII
    "a/b",
    "a@b.c",
    "semi;colon",
    "tab\tname",
    "new\nline",
    "quote'x",
    123456,
    None,
    ["abc"],
])
def test_invalid_usernames(server, name):
    body = {"username": name, "password": "password1-long-enough"}
    r = Client(server).post("/v1/users", body)
    problem(r, 400, "invalid_username")


def test_missing_username(anon):
    problem(anon.post("/v1/users", {"password": "password1-long-enough"}), 400, "invalid_username")


def test_username_is_case_insensitive(server):
    base = unique_name("Alice")
    r = register(server, base, "password1-long-enough")
    assert r.status == 201, r
    uid = r.body["user"]["id"]
    assert r.body["user"]["username"] == base.lower()
    for variant in (base.lower(), base.upper(), base.swapcase()):
        problem(register(server, variant, "password2-long-enough"), 409, "username_taken")
    # `Alice` logs in as `alice` and as `ALICE`: one account
    for variant in (base.lower(), base.upper(), base):
        r = login(server, variant, "password1-long-enough")
        assert r.status == 201, r
        assert r.body["user"]["id"] == uid
        assert r.body["user"]["username"] == base.lower()
    # the refused registrations did not change the password
    problem(login(server, base, "password2-long-enough"), 401, "invalid_credentials")


@pytest.mark.parametrize("password,code", [
    ("Kq7-vz!mR2p", "weak_password"),          # 11 characters
    ("Kq7-vz!mR2pw", None),                    # 12 characters
    ("ĳŋœæøåßþðłđ", "weak_password"),          # 11 characters, 22 bytes: characters count
    ("ĳŋœæøåßþðłđħ", None),                    # 12 characters
    ("Kq7-vz!mR2pw" + "x" * 244, None),        # 256 bytes
    ("Kq7-vz!mR2pw" + "x" * 245, "invalid_password"),  # 257 bytes
    ("", "weak_password"),
])
def test_password_length(server, password, code):
    name = unique_name()
    r = register(server, name, password)
    if code is None:
        assert r.status == 201, r
        r = login(server, name, password)
        assert r.status == 201, r
    else:
        problem(r, 400, code)
        # nothing was created: the name is still free
        assert register(server, name, "password1-long-enough").status == 201


@pytest.mark.parametrize("password", [12345678, None, ["password1-long-enough"], {"p": "password1-long-enough"}, True])
def test_password_must_be_a_string(anon, password):
    problem(anon.post("/v1/users", {"username": unique_name(), "password": password}),
            400, "invalid_password")


def test_missing_password(anon):
    problem(anon.post("/v1/users", {"username": unique_name()}), 400, "invalid_password")


# -- login ------------------------------------------------------------------

@pytest.mark.parametrize("device,ok", [("d" * 64, True), ("📱" * 64, True), ("", True),
                                       ("d" * 65, False), (7, False)])
def test_login_device_name(server, device, ok):
    name = unique_name()
    register(server, name, "password1-long-enough")
    r = login(server, name, "password1-long-enough", device_name=device)
    if not ok:
        problem(r, 400, "invalid_request")
        return
    assert r.status == 201, r
    st, b = Client(server, r.body["token"]).get("/v1/sessions")
    assert [s["device_name"] for s in b["sessions"]] == [device]


def test_login_answers_token_session_and_user(server):
    name = unique_name()
    uid = register(server, name, "password1-long-enough").body["user"]["id"]
    r = login(server, name, "password1-long-enough", device_name="phone")
    assert r.status == 201, r
    assert set(r.body) == {"token", "session_id", "device_key", "user"}
    assert isinstance(r.body["token"], str) and len(r.body["token"]) >= 32
    assert isinstance(r.body["device_key"], str) and len(r.body["device_key"]) == 43
    assert isinstance(r.body["session_id"], int)
    assert r.body["user"] == {"id": uid, "username": name, "display_name": name}
    # each login is a new session with a new token
    r2 = login(server, name, "password1-long-enough")
    assert r2.status == 201
    assert r2.body["token"] != r.body["token"]
    assert r2.body["session_id"] != r.body["session_id"]
    assert r2.body["device_key"] != r.body["device_key"]  # no key shown: a new device


def test_login_wrong_password_is_401(server):
    name = unique_name()
    register(server, name, "password1-long-enough")
    problem(login(server, name, "password2-long-enough"), 401, "invalid_credentials")
    problem(login(server, name, "Password1"), 401, "invalid_credentials")
    problem(login(server, name, ""), 401, "invalid_credentials")


def test_login_unknown_user_is_the_same_401(server):
    b = problem(login(server, unique_name("nobody"), "password1-long-enough"), 401, "invalid_credentials")
    name = unique_name()
    register(server, name, "password1-long-enough")
    b2 = problem(login(server, name, "wrong-pass"), 401, "invalid_credentials")
    assert b == b2  # the answer does not reveal which names exist


@pytest.mark.parametrize("body", [
    {"password": "password1-long-enough"},
    {"username": "someone"},
    {"username": 5, "password": "password1-long-enough"},
    {"username": "someone", "password": 12345678},
])
def test_login_missing_or_wrong_fields_is_400(anon, body):
    problem(anon.post("/v1/sessions", body), 400)


def test_login_backoff_after_5_failures(server):
    name = unique_name("thr")
    assert register(server, name, "the-right-one-password").status == 201
    key = login(server, name, "the-right-one-password").body["device_key"]
    for i in range(5):
        # the count is per name, whatever its case
        problem(login(server, name.upper() if i % 2 else name, "wrong-%d" % i), 401,
                "invalid_credentials")
    r = login(server, name, "wrong-again")
    problem(r, 429, "rate_limited")
    retry = r.headers.get("Retry-After")
    assert retry is not None and retry.isdigit(), r.headers
    assert 0 < int(retry) <= 300
    # a new device waits too, even with the right password ...
    r = login(server, name, "the-right-one-password")
    problem(r, 429, "rate_limited")
    assert r.headers.get("Retry-After", "").isdigit()
    # ... but not the device that logged in before (tests/api/test_account_security.py)
    r = Client(server).post("/v1/sessions", {"username": name, "device_key": key,
                                             "password": "the-right-one-password"})
    assert r.status == 201, r
    # other accounts are not affected
    other = unique_name()
    register(server, other, "password1-long-enough")
    assert login(server, other, "password1-long-enough").status == 201


def test_throttling_counts_unknown_names_too(server):
    name = unique_name("ghost")
    for i in range(5):
        problem(login(server, name, "guess-%d" % i), 401, "invalid_credentials")
    r = login(server, name, "guess")
    problem(r, 429, "rate_limited")
    assert int(r.headers["Retry-After"]) > 0


def test_successful_login_clears_the_failure_count(server):
    name = unique_name("clr")
    register(server, name, "the-right-one-password")
    for i in range(4):
        problem(login(server, name, "wrong-%d" % i), 401, "invalid_credentials")
    assert login(server, name, "the-right-one-password").status == 201
    for i in range(4):
        problem(login(server, name, "wrong-%d" % i), 401, "invalid_credentials")
    assert login(server, name, "the-right-one-password").status == 201


# -- sessions (devices) ---------------------------------------------------------

def test_sessions_list_shows_every_device_with_current_flag(new_user):
    phone = new_user(device="phone")
    laptop = phone.device("laptop")
    for me, other in ((phone, laptop), (laptop, phone)):
        st, b = me.get("/v1/sessions")
        assert st == 200, b
        by_id = {s["id"]: s for s in b["sessions"]}
        assert set(by_id) == {phone.session_id, laptop.session_id}
        assert by_id[me.session_id]["current"] is True
        assert by_id[other.session_id]["current"] is False
        for s in b["sessions"]:
            assert set(s) == {"id", "device_name", "created_at", "last_seen_at", "current"}
            assert isinstance(s["created_at"], int) and isinstance(s["last_seen_at"], int)
            assert abs(s["created_at"] - time.time() * 1000) < 120_000
    st, b = phone.get("/v1/sessions")
    names = {s["id"]: s["device_name"] for s in b["sessions"]}
    assert names == {phone.session_id: "phone", laptop.session_id: "laptop"}


def test_session_last_seen_at_moves_with_use(new_user):
    phone = new_user(device="phone")
    laptop = phone.device("laptop")
    first = {s["id"]: s for s in phone.get("/v1/sessions").body["sessions"]}
    time.sleep(5.5)  # last_seen_at may be written in steps of a few seconds
    assert laptop.get("/v1/me").status == 200
    t_used = time.time() * 1000
    now = {s["id"]: s for s in phone.get("/v1/sessions").body["sessions"]}
    assert now[laptop.session_id]["last_seen_at"] > first[laptop.session_id]["last_seen_at"]
    assert abs(now[laptop.session_id]["last_seen_at"] - t_used) < 10_000
    assert now[laptop.session_id]["created_at"] == first[laptop.session_id]["created_at"]
    for s in now.values():
        assert s["last_seen_at"] >= s["created_at"]


def test_delete_other_session_logs_that_device_out_at_once(new_user):
    phone = new_user(device="phone")
    laptop = phone.device("laptop")
    assert laptop.get("/v1/me").status == 200
    r = phone.delete(f"/v1/sessions/{laptop.session_id}")
    assert r.status == 204, r
    assert r.text == ""
    problem(laptop.get("/v1/me"), 401, "unauthorized")
    problem(laptop.get("/v1/threads"), 401, "unauthorized")
    assert phone.get("/v1/me").status == 200
    st, b = phone.get("/v1/sessions")
    assert [s["id"] for s in b["sessions"]] == [phone.session_id]
    # deleting it again: it is gone
    problem(phone.delete(f"/v1/sessions/{laptop.session_id}"), 404, "not_found")


def test_delete_current_session(new_user):
    phone = new_user()
    laptop = phone.device("laptop")
    r = phone.delete("/v1/sessions/current")
    assert r.status == 204, r
    problem(phone.get("/v1/me"), 401, "unauthorized")
    problem(phone.delete("/v1/sessions/current"), 401, "unauthorized")
    # the other device is still logged in
    assert laptop.get("/v1/me").status == 200
    st, b = laptop.get("/v1/sessions")
    assert [s["id"] for s in b["sessions"]] == [laptop.session_id]


def test_cannot_delete_another_users_session(new_users):
    a, b = new_users(2)
    problem(a.delete(f"/v1/sessions/{b.session_id}"), 404, "not_found")
    assert b.get("/v1/me").status == 200
    problem(a.delete("/v1/sessions/9007199254740992"), 404, "not_found")
    st, body = a.get("/v1/sessions")
    assert [s["id"] for s in body["sessions"]] == [a.session_id]


def test_relogin_after_logout_works(new_user):
    u = new_user()
    assert u.delete("/v1/sessions/current").status == 204
    r = login(u.server, u.username, u.password)
    assert r.status == 201
    assert Client(u.server, r.body["token"]).get("/v1/me").status == 200


# -- authentication ---------------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1/me", "/v1/sessions", "/v1/threads", "/v1/contacts",
                                  "/v1/blocks", "/v1/users?q=abc", "/v1/users/1",
                                  "/v1/threads/1", "/v1/threads/1/messages"])
def test_missing_token_is_401(anon, path):
    problem(anon.get(path), 401, "unauthorized")


@pytest.mark.parametrize("header", [
    "Bearer",
    "Bearer ",
    "Bearer garbage",
    "Bearer " + "A" * 43,           # the shape of a token, but unknown
    "Bearer " + "A" * 3000,
    "Basic dXNlcjpwYXNz",
    "Token abc",
    "",
])
def test_bad_token_is_401(anon, header):
    problem(anon.get("/v1/me", headers={"Authorization": header}), 401, "unauthorized")


def test_oversized_headers_are_431_and_the_connection_still_serves(server, new_user):
    """Request headers over the per-connection memory (connection_memory_kb,
    5 KiB by default: the price of ~7 KiB per parked poll) are refused by the
    HTTP layer with 431 before chatd sees them (docs/api-notes.md)."""
    u = new_user()
    r = requests.get(server.base + "/v1/me", timeout=30,
                     headers={"Authorization": "Bearer " + "A" * 10000})
    assert r.status_code == 431, (r.status_code, r.text[:200])
    r = requests.get(server.base + "/v1/me", timeout=30,
                     headers={"Authorization": "Bearer " + u.token, "X-Pad": "p" * 3000})
    assert r.status_code == 200, (r.status_code, r.text[:200])
    assert u.get("/v1/me").status == 200


def test_bad_token_on_writes_is_401_and_changes_nothing(new_user, anon):
    u = new_user()
    t = u.group(title="t")
    r = anon.post(f"/v1/threads/{t['id']}/messages", {"client_msg_id": "x", "body": "hi"},
                  headers={"Authorization": "Bearer nope"})
    problem(r, 401, "unauthorized")
    assert u.thread(t["id"])["last_seq"] == 0
    problem(anon.post("/v1/threads", {"member_ids": []}), 401, "unauthorized")


def test_token_of_another_user_cannot_be_bent(new_users):
    a, b = new_users(2)
    assert a.get("/v1/me").body["user"]["id"] == a.id
    assert b.get("/v1/me").body["user"]["id"] == b.id


def test_bearer_scheme_is_case_insensitive(new_user, anon):
    u = new_user()
    st, b = anon.get("/v1/me", headers={"Authorization": "bearer " + u.token})
    assert st == 200, b
    assert b["user"]["id"] == u.id


# -- me and users -----------------------------------------------------------

def test_me(new_user):
    u = new_user(display_name="Me Myself")
    st, b = u.get("/v1/me")
    assert st == 200
    assert b == {"user": {"id": u.id, "username": u.username, "display_name": "Me Myself"}}


def test_get_user_by_id(new_users):
    a, b = new_users(2)
    st, body = a.get(f"/v1/users/{b.id}")
    assert st == 200
    assert body == {"user": b.user}
    assert set(body["user"]) == USER_KEYS


@pytest.mark.parametrize("uid", ["9007199254740992", "4503599627370496"])
def test_get_unknown_user_is_404(new_user, uid):
    problem(new_user().get(f"/v1/users/{uid}"), 404, "not_found")


def test_search_by_prefix(server, new_user):
    base = "s" + secrets.token_hex(4)   # 9 characters, unique
    names = [base + "_x", base + "ax", base + ".y", base + "-z", base + "bb"]
    for n in names:
        assert register(server, n, "password1-long-enough").status == 201
    me = new_user()
    for n in names:  # a prefix finds contacts (and co-members) only
        uid = me.get(f"/v1/users", params={"q": n}).body["users"][0]["id"]
        assert me.put(f"/v1/contacts/{uid}", {}).status == 200

    def search(q, **kw):
        st, b = me.get("/v1/users", params={"q": q, **kw})
        assert st == 200, b
        for u in b["users"]:
            assert set(u) == USER_KEYS  # never a password hash or other private field
        return [u["username"] for u in b["users"]]

    assert search(base) == sorted(names)
    assert search(base.upper()) == sorted(names)      # case-insensitive
    assert search(base + "_") == [base + "_x"]        # `_` is literal, not "any character"
    assert search(base + "%") == []                   # `%` is literal, not "anything"
    assert search(base + "%x") == []
    assert search(base + "\\") == []
    assert search(base + ".") == [base + ".y"]
    assert search(base + "B") == [base + "bb"]
    assert search(base + "bbb") == []
    assert search(base, limit=2) == sorted(names)[:2]
    assert search(base[:-1] + "%" ) == []


def test_search_default_limit_is_20(server, new_user):
    base = "l" + secrets.token_hex(4)
    for i in range(22):
        assert register(server, f"{base}{i:02d}", "password1-long-enough").status == 201
    me = new_user()
    for i in range(22):
        uid = me.get("/v1/users", params={"q": f"{base}{i:02d}"}).body["users"][0]["id"]
        assert me.put(f"/v1/contacts/{uid}", {}).status == 200
    st, b = me.get("/v1/users", params={"q": base})
    assert st == 200
    assert [u["username"] for u in b["users"]] == [f"{base}{i:02d}" for i in range(20)]
    st, b = me.get("/v1/users", params={"q": base, "limit": "100"})
    assert len(b["users"]) == 22


@pytest.mark.parametrize("params", [{}, {"q": ""}, {"q": "abc", "limit": "0"},
                                    {"q": "abc", "limit": "101"}, {"q": "abc", "limit": "x"},
                                    {"q": "abc", "limit": "-1"}, {"q": "a" * 33}])
def test_search_bad_query_is_400(new_user, params):
    problem(new_user().get("/v1/users", params=params), 400, "invalid_request")
