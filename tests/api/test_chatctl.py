"""chatctl, the operator's command (issue 13, item 9): it works on the
database chatd uses, with the API's rules."""
import json
import os
import subprocess
import time

import pytest

from conftest import REPO, login, make_user, unique_name

CHATCTL_BIN = os.environ.get("CHATCTL_BIN") or str(REPO / "build" / "chatctl-asan")
PASSWORD = "a long and unusual passphrase 42"


def ctl(server, *args, stdin=None):
    if not os.access(CHATCTL_BIN, os.X_OK):
        pytest.fail(f"CHATCTL_BIN {CHATCTL_BIN} is not an executable; "
                    "build it with `make build/chatctl-asan`", pytrace=False)
    return subprocess.run([CHATCTL_BIN, *args], cwd=REPO, env=server._env(), input=stdin,
                          capture_output=True, text=True, timeout=60)


def wait_refused(user, timeout=40):
    """The token is refused once chatd's cache of verified tokens forgets it
    (AUTH_CACHE_TTL_MS: 30 s at most)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if user.get("/v1/me").status == 401:
            return True
        time.sleep(0.5)
    return False


def test_usage(server):
    r = ctl(server)
    assert r.returncode == 1 and "usage: chatctl" in r.stderr
    r = ctl(server, "user", "explode", "x")
    assert r.returncode == 1
    r = ctl(server, "--help")
    assert r.returncode == 0 and "session revoke" in r.stdout


def test_create_user_and_log_in(server):
    name = unique_name("ctl")
    r = ctl(server, "user", "create", name, "--display-name", "Ops Created", stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("created user ")
    r = login(server, name, PASSWORD)
    assert r.status == 201, r
    assert r.body["user"]["display_name"] == "Ops Created"
    # Taken, weak, invalid.
    assert ctl(server, "user", "create", name, stdin=PASSWORD + "\n").returncode == 3
    r = ctl(server, "user", "create", unique_name("ctl"), stdin="password123\n")
    assert r.returncode == 3 and "refused" in r.stderr
    assert ctl(server, "user", "create", "a", stdin=PASSWORD + "\n").returncode == 3
    assert ctl(server, "user", "create", unique_name("ctl"), "--display-name", "\u202eevil",
               stdin=PASSWORD + "\n").returncode == 3
    assert ctl(server, "user", "create", unique_name("ctl"), stdin="").returncode == 1


def test_reset_password_ends_sessions(server):
    u = make_user(server)
    new = "another quite unusual passphrase 7"
    r = ctl(server, "user", "reset-password", u.username, stdin=new + "\n")
    assert r.returncode == 0, r.stderr
    assert login(server, u.username, u.password).status == 401
    assert login(server, u.username, new).status == 201
    assert wait_refused(u)
    events = [e["event"] for e in make_user_audit(server, u.username, new)]
    assert "password_changed" in events and "session_revoked" in events
    assert ctl(server, "user", "reset-password", "nosuchuser42", stdin=new + "\n").returncode == 2


def make_user_audit(server, username, password):
    from conftest import User
    r = login(server, username, password)
    u = User(server, r.body["user"], password, r.body["token"], r.body["session_id"])
    return u.get("/v1/me/audit").body["events"]


def test_deactivate_and_reactivate(server):
    u = make_user(server)
    r = ctl(server, "user", "deactivate", u.username)
    assert r.returncode == 0, r.stderr
    r = login(server, u.username, u.password)
    assert r.status == 403 and r.body["code"] == "account_deactivated"
    # A wrong password still says only that.
    assert login(server, u.username, u.password + "x").status == 401
    assert wait_refused(u)
    counts = json.loads(ctl(server, "counts", "--json").stdout)
    assert counts["deactivated_users"] >= 1
    assert ctl(server, "user", "reactivate", u.username).returncode == 0
    assert login(server, u.username, u.password).status == 201
    assert ctl(server, "user", "deactivate", "nosuchuser42").returncode == 2


def test_sessions_list_and_revoke(server):
    u = make_user(server, device="laptop")
    phone = u.device("phone")
    r = ctl(server, "session", "list", u.username, "--json")
    assert r.returncode == 0, r.stderr
    sessions = json.loads(r.stdout)
    assert {s["device_name"] for s in sessions} == {"laptop", "phone"}
    assert {s["id"] for s in sessions} == {u.session_id, phone.session_id}
    text = ctl(server, "session", "list", u.username).stdout
    assert "laptop" in text and "phone" in text
    r = ctl(server, "session", "revoke", str(phone.session_id))
    assert r.returncode == 0 and r.stdout.startswith("1 session ended")
    assert wait_refused(phone)
    assert u.get("/v1/me").status == 200
    assert ctl(server, "session", "revoke", str(phone.session_id)).returncode == 2
    r = ctl(server, "session", "revoke", "--all", u.username)
    assert r.returncode == 0 and r.stdout.startswith("1 session ended")
    assert wait_refused(u)
    assert ctl(server, "session", "revoke", "abc").returncode == 1


def test_counts(server, new_users):
    before = json.loads(ctl(server, "counts", "--json").stdout)
    a, b = new_users(2)
    t = a.direct(b)
    a.say(t["id"], "one")
    a.say(t["id"], "two")
    after = json.loads(ctl(server, "counts", "--json").stdout)
    assert after["users"] == before["users"] + 2
    assert after["sessions"] == before["sessions"] + 2
    assert after["threads"] == before["threads"] + 1
    assert after["messages"] == before["messages"] + 2
    text = ctl(server, "counts").stdout
    assert text.startswith("users ") and "messages" in text
