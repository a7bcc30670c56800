"""Account security: the login backoff and device keys (nobody can lock out
someone else), password change, the password policy, the audit log of
authentication events, and the cap on sessions per user.

The tests run on a chatd of their own with small limits: 3 free failures per
username, 6 per client address, a 4 s cap on the delay and 3 sessions per
user. A client address is given as X-Forwarded-For (chatd trusts it from a
loopback peer, as from nginx)."""
import time

import pytest

from conftest import Client, User, env_server, login, make_user, problem, register, unique_name

FREE = 3
ADDRESS_FREE = 6
DELAY_MAX_S = 4
SESSIONS_MAX = 3


@pytest.fixture(scope="module")
def srv(db):
    with env_server(db, "accsec-", {"CHAT_LOGIN_FREE_FAILURES": str(FREE),
                                    "CHAT_LOGIN_ADDRESS_FREE_FAILURES": str(ADDRESS_FREE),
                                    "CHAT_LOGIN_DELAY_MAX_S": str(DELAY_MAX_S),
                                    "CHAT_SESSIONS_MAX": str(SESSIONS_MAX)}) as s:
        yield s


def attempt(server, username, password, address=None, device_key=None):
    body = {"username": username, "password": password}
    if device_key is not None:
        body["device_key"] = device_key
    headers = {"X-Forwarded-For": address} if address else None
    return Client(server).post("/v1/sessions", body, headers=headers)


def retry_after(r):
    value = r.headers.get("Retry-After", "")
    assert value.isdigit(), r
    return int(value)


def good_password():
    return "amber-" + unique_name("walrus-")


def test_strangers_never_lock_out_a_device_that_logged_in_before(srv):
    name, pw = unique_name("own"), good_password()
    assert register(srv, name, pw).status == 201
    first = attempt(srv, name, pw, address="198.51.100.7")
    assert first.status == 201, first
    key = first.body["device_key"]
    assert isinstance(key, str) and len(key) == 43 and key != first.body["token"]

    # 30 wrong passwords from strangers, from several addresses
    statuses = []
    for i in range(30):
        r = attempt(srv, name, "wrong-password-%d" % i, address="203.0.113.%d" % (i % 5 + 1))
        statuses.append(r.status)
        if r.status == 429:
            problem(r, 429, "rate_limited")
            assert 1 <= retry_after(r) <= DELAY_MAX_S
        else:
            problem(r, 401, "invalid_credentials")
    assert statuses[:FREE] == [401] * FREE
    assert 429 in statuses  # strangers were delayed

    # the owner's device, with its key, logs in at once, from any address
    r = attempt(srv, name, pw, address="192.0.2.99", device_key=key)
    assert r.status == 201, r
    assert r.body["device_key"] == key  # a known device keeps its key
    # a new device (no key) is delayed like a stranger: the account is under attack
    r = attempt(srv, name, pw, address="192.0.2.98")
    problem(r, 429, "rate_limited")
    assert retry_after(r) >= 1
    # a key of another account is no key
    other, opw = unique_name("oth"), good_password()
    assert register(srv, other, opw).status == 201
    okey = attempt(srv, other, opw).body["device_key"]
    problem(attempt(srv, name, pw, device_key=okey), 429, "rate_limited")


def test_the_delay_grows_and_is_capped(srv):
    name, pw = unique_name("grow"), good_password()
    assert register(srv, name, pw).status == 201
    for i in range(FREE):
        problem(attempt(srv, name, "wrong-%d" % i), 401, "invalid_credentials")
    waits = []
    for i in range(4):
        r = attempt(srv, name, "still-wrong-%d" % i)
        problem(r, 429, "rate_limited")
        waits.append(retry_after(r))
        time.sleep(waits[-1] + 0.2)
        # the wait is over: this try is heard (and fails, adding to the count)
        problem(attempt(srv, name, "wrong-again-%d" % i), 401, "invalid_credentials")
    assert waits == [1, 2, 4, DELAY_MAX_S], waits
    # the right password, once the wait is over, logs in and resets the count
    r = attempt(srv, name, pw)
    problem(r, 429, "rate_limited")
    time.sleep(retry_after(r) + 0.2)
    assert attempt(srv, name, pw).status == 201
    problem(attempt(srv, name, "wrong-after-success"), 401, "invalid_credentials")


def test_a_device_key_has_its_own_counter(srv):
    name, pw = unique_name("dev"), good_password()
    assert register(srv, name, pw).status == 201
    key = attempt(srv, name, pw).body["device_key"]
    for i in range(FREE):
        problem(attempt(srv, name, "typo-%d" % i, device_key=key), 401, "invalid_credentials")
    r = attempt(srv, name, pw, device_key=key)
    problem(r, 429, "rate_limited")  # the device's own typos delay it
    # ... but not anyone else: a new device logs in at once
    assert attempt(srv, name, pw).status == 201


def test_the_address_counter_delays_a_guesser_across_names(srv):
    guesser = "203.0.113.200"
    for i in range(ADDRESS_FREE):
        problem(attempt(srv, unique_name("nobody"), "guess-%d" % i, address=guesser), 401,
                "invalid_credentials")
    name, pw = unique_name("addr"), good_password()
    assert register(srv, name, pw).status == 201
    r = attempt(srv, name, pw, address=guesser)
    problem(r, 429, "rate_limited")
    assert retry_after(r) >= 1
    # another address is not affected
    assert attempt(srv, name, pw, address="203.0.113.201").status == 201


def change(user, current, new, end_others=None):
    body = {"current_password": current, "new_password": new}
    if end_others is not None:
        body["end_other_sessions"] = end_others
    return user.put("/v1/me/password", body)


def test_password_change(srv):
    pw = good_password()
    a = make_user(srv, password=pw)
    other = a.device("tablet")
    new = good_password()
    problem(change(a, "not-the-password", new), 403, "wrong_password")
    problem(change(a, pw, "short-pw"), 400, "weak_password")
    problem(change(a, pw, "password1234"), 400, "weak_password")
    problem(a.put("/v1/me/password", {"current_password": pw}), 400)
    problem(a.put("/v1/me/password", {"current_password": pw, "new_password": new,
                                      "end_other_sessions": "yes"}), 400, "invalid_request")

    r = change(a, pw, new)  # the refusals changed nothing: pw is still current
    assert r.status == 204, r
    problem(login(srv, a.username, pw), 401, "invalid_credentials")
    assert login(srv, a.username, new).status == 201  # a third session (the cap)
    # not asked: the other sessions stay
    assert other.get("/v1/me").status == 200
    assert a.get("/v1/me").status == 200

    newer = good_password()
    assert change(a, new, newer, end_others=True).status == 204
    problem(other.get("/v1/me"), 401)
    assert a.get("/v1/me").status == 200
    st, b = a.get("/v1/sessions")
    assert [s["id"] for s in b["sessions"]] == [a.session_id]


@pytest.mark.parametrize("password", [
    "short-pw1",            # 9 characters
    "ééééééééééé",          # 22 bytes but 11 characters
    "password1234",         # a common word with digits
    "passwordpassword",     # repeated
    "123456789012",         # simplistic
    "aaaaaaaaaaaaaaa",      # too few different characters
    "abcdefghijklmnopqrst",  # 20 characters, all steps
])
def test_short_and_common_passwords_are_refused(srv, password):
    name = unique_name("weak")
    b = problem(register(srv, name, password), 400, "weak_password")
    assert b["detail"]
    # nothing was created: the name is free
    assert register(srv, name, good_password()).status == 201


@pytest.mark.parametrize("pw", [
    "correct horse battery staple",
    "Kq7-vz!mR2pw",
    "pw-45e9a1f0cd3287ba",  # 5 steps ("45", "cd", …): cracklib alone refuses it
])
def test_a_good_password_is_taken(srv, pw):
    name = unique_name("good")
    assert register(srv, name, pw).status == 201
    assert login(srv, name, pw).status == 201


def audit(user, **params):
    r = user.get("/v1/me/audit", params=params)
    assert r.status == 200, r
    return r


def test_audit_log(srv):
    pw = good_password()
    a = make_user(srv, password=pw)
    address = "198.51.100.42"
    problem(attempt(srv, a.username, "wrong-password-x", address=address), 401)
    b = a.device("laptop")
    c = a.device("old phone")
    assert a.delete(f"/v1/sessions/{c.session_id}").status == 204
    new = good_password()
    assert change(a, pw, new).status == 204
    problem(change(a, "not-it-at-all", good_password()), 403, "wrong_password")
    assert b.delete("/v1/sessions/current").status == 204
    for i in range(FREE):
        attempt(srv, a.username, "bad-%d" % i)
    for _ in range(3):
        problem(attempt(srv, a.username, "bad-again"), 429, "rate_limited")

    r = audit(a)
    events = r.body["events"]
    kinds = [e["event"] for e in events]
    for kind in ("login", "login_failed", "logout", "session_revoked", "password_changed",
                 "password_change_failed", "login_throttled"):
        assert kind in kinds, kinds
    ids = [e["id"] for e in events]
    assert ids == sorted(ids, reverse=True)  # newest first
    for e in events:
        assert set(e) == {"id", "at", "event", "session_id", "address"}, e
        assert isinstance(e["at"], int) and e["at"] > 0
    assert kinds.count("login_throttled") == 1  # one a minute, not one per try
    assert any(e["event"] == "login_failed" and e["address"] == address for e in events)
    assert any(e["event"] == "logout" and e["session_id"] == b.session_id for e in events)
    assert any(e["event"] == "session_revoked" and e["session_id"] == c.session_id
               for e in events)
    # never a secret
    for secret in (pw, new, "wrong-password-x", a.token, b.token, c.token):
        assert secret not in r.text
    assert len(audit(a, limit=2).body["events"]) == 2
    problem(a.get("/v1/me/audit", params={"limit": 0}), 400, "invalid_request")
    problem(a.get("/v1/me/audit", params={"limit": 201}), 400, "invalid_request")
    # one's own events only
    other = make_user(srv)
    assert all(e["event"] == "login" for e in audit(other).body["events"])
    problem(Client(srv).get("/v1/me/audit"), 401)


def test_sessions_per_user_are_capped(srv):
    a = make_user(srv)
    devices = [a] + [a.device("device %d" % i) for i in range(SESSIONS_MAX - 1)]
    for d in devices:
        assert d.get("/v1/me").status == 200
    newest = a.device("one too many")
    # the longest idle (the first) was logged out; the rest stay
    problem(devices[0].get("/v1/me"), 401)
    for d in devices[1:] + [newest]:
        assert d.get("/v1/me").status == 200
    st, b = newest.get("/v1/sessions")
    assert st == 200 and len(b["sessions"]) == SESSIONS_MAX
    revoked = [e for e in audit(newest).body["events"] if e["event"] == "session_revoked"]
    assert [e["session_id"] for e in revoked] == [devices[0].session_id]
