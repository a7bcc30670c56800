"""Push notifications (docs/push.md), against local fakes of APNs, FCM and
Google's OAuth token endpoint (tests/fakes/push_fake.mjs, an HTTP/2 server)
with keys made by openssl for this run. The fake checks every request chatd
sends — path, headers, payload, each JWT's signature and claims — and records
what it found; every test asserts that it found nothing wrong.

The push chatd (fixture push_server) runs with a 1 s grace period and at most
4 attempts per device. Each test uses fresh users and fresh device tokens and
looks only at the fake's requests for its own tokens."""
import secrets
import threading
import time

import pytest
import requests

from conftest import (PUSH_APNS_TOPIC, PUSH_GRACE_MS, PUSH_MAX_ATTEMPTS, Client, make_user,
                      problem)

GRACE_S = PUSH_GRACE_MS / 1000
WAIT_S = 15           # a push that must come comes within this
QUIET_S = GRACE_S + 1.0  # a push that must not come would have come by then
CLOCK_SLACK_MS = 5    # ms clock granularity between chatd's timers and the fake's


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def apns_token():
    return secrets.token_hex(32)


def fcm_token():
    return f"f{secrets.token_hex(11)}:APA91b{secrets.token_urlsafe(60)}"


def register(u, provider, token=None, topic=None):
    token = token or (apns_token() if provider == "apns" else fcm_token())
    body = {"provider": provider, "token": token}
    if topic is not None:
        body["topic"] = topic
    r = u.put("/v1/sessions/current/push", body)
    assert r.status == 204, r
    return token


def clean(reqs):
    """The fake found nothing wrong with these requests."""
    for r in reqs:
        assert r["problems"] == [], (f"push_fake: chatd's {r['kind']} request "
                                     f"{r['method']} {r['path']} breaks docs/push.md: "
                                     f"{r['problems']}")
    return reqs


def pushes(fake, token):
    """Every provider request for this device token, oldest first."""
    return clean([r for r in fake.requests(token) if r["kind"] in ("apns", "fcm")])


def ok(reqs):
    return [r for r in reqs if r["status_sent"] == 200]


def log(u, **params):
    st, b = u.get("/v1/notifications/log", params=params)
    assert st == 200, (st, b)
    return b["entries"]


def until(what, fn, timeout=WAIT_S, detail=lambda: ""):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}{detail()}", pytrace=False)
        time.sleep(0.1)


def wait_pushes(fake, token, n, user=None, answered=True, timeout=WAIT_S):
    """Waits until the fake has answered (or, answered=False, received) at
    least n provider requests for token; returns them all."""
    def got():
        rs = pushes(fake, token)
        done = [r for r in rs if r["status_sent"] is not None] if answered else rs
        return rs if len(done) >= n else None

    def detail():
        rs = fake.requests(token)
        s = f"\nthe fake saw {len(rs)} request(s) for {token[:16]}…: " + \
            str([(r["kind"], r["status_sent"]) for r in rs])
        if user is not None:
            s += f"\n{user!r}'s notification log: {log(user, limit=20)}"
        return s
    return until(f"{n} push(es) to {token[:16]}…", got, timeout, detail)


def wait_log(u, what, pred, timeout=WAIT_S):
    """Waits until u's notification log has an entry matching pred; returns it."""
    def find():
        for e in log(u, limit=100):
            if pred(e):
                return e
        return None
    return until(f"a log entry of {u!r}: {what}", find, timeout,
                 lambda: f"\nthe log: {log(u, limit=20)}")


def quiet(fake, token, n_expected=0, seconds=QUIET_S):
    """Waits `seconds`, then asserts the token got exactly n_expected requests."""
    time.sleep(seconds)
    rs = pushes(fake, token)
    assert len(rs) == n_expected, \
        f"{token[:16]}… got {len(rs)} push request(s), want {n_expected}: " \
        f"{[(r['kind'], r['status_sent'], r['body']) for r in rs]}"
    return rs


def alert(r):
    """The APNs message payload (asserting it is one)."""
    assert r["kind"] == "apns", r
    assert r["headers"]["apns-push-type"] == "alert", r["headers"]
    assert r["headers"]["apns-priority"] == "10"
    return r["body"]


def entry(e, **want):
    return all(e.get(k) == v for k, v in want.items())


class Poller:
    """One device's inbox long-poll loop that always passes back `next`
    (acknowledging, and so marking delivered, everything it was given)."""

    def __init__(self, user):
        self.user = user
        st, b = user.get("/v1/inbox")
        assert st == 200, (st, b)
        self.next = b["next"]
        self.events = []
        self.errors = []
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_ev.is_set():
            try:
                st, b = self.user.get("/v1/inbox", params={"since": self.next, "timeout": 1},
                                      timeout=15)
            except Exception as e:  # noqa: BLE001 - reported by stop()
                self.errors.append(repr(e))
                time.sleep(0.1)
                continue
            if st != 200:
                self.errors.append((st, b))
                time.sleep(0.1)
                continue
            self.events.extend(b["events"])
            self.next = b["next"]

    def stop(self):
        self.stop_ev.set()
        self.t.join(20)
        assert not self.errors, self.errors


@pytest.fixture
def pu(push_server):
    """Factory: a new user (one session) on the push chatd."""
    def make(**kw):
        return make_user(push_server, **kw)
    return make


def pair(pu):
    """Alice (sender, display name known) and Bob, with a direct thread."""
    a = pu(display_name="Alice " + secrets.token_hex(3))
    b = pu(display_name="Bob " + secrets.token_hex(3))
    return a, b, a.direct(b)["id"]


# --------------------------------------------------------------------------
# registering a device
# --------------------------------------------------------------------------

def test_register_and_delete_push_token(pu):
    u = pu()
    register(u, "apns")
    register(u, "fcm")  # replaces the session's token
    register(u, "apns", topic="com.example.chat.voip")
    assert u.delete("/v1/sessions/current/push").status == 204
    assert u.delete("/v1/sessions/current/push").status == 204  # nothing left: still 204


def test_register_push_token_bad_input(pu, push_server):
    u = pu()
    path = "/v1/sessions/current/push"
    problem(u.put(path, {"provider": "gcm", "token": apns_token()}), 400, "invalid_request")
    problem(u.put(path, {"provider": "APNS", "token": apns_token()}), 400, "invalid_request")
    problem(u.put(path, {"token": apns_token()}), 400, "invalid_request")
    problem(u.put(path, {"provider": "apns"}), 400, "invalid_request")
    problem(u.put(path, {"provider": "apns", "token": ""}), 400, "invalid_request")
    problem(u.put(path, {"provider": "apns", "token": 12345}), 400, "invalid_request")
    problem(u.put(path, {"provider": "fcm", "token": None}), 400, "invalid_request")
    problem(u.put(path, {"provider": "apns", "token": apns_token(), "topic": 7}), 400,
            "invalid_request")
    problem(u.put(path, ["apns", apns_token()]), 400)
    problem(u.put(path, data=b"{not json", headers={"Content-Type": "application/json"}), 400)
    problem(Client(push_server).put(path, {"provider": "apns", "token": apns_token()}), 401,
            "unauthorized")
    problem(Client(push_server).delete(path), 401, "unauthorized")


def test_deleted_token_gets_no_push(pu, push_fake):
    a, b, tid = pair(pu)
    t = register(b, "apns")
    m = a.say(tid, "before the delete")
    assert b.delete("/v1/sessions/current/push").status == 204  # within the grace period
    e = wait_log(b, "suppressed/no_token", lambda e: entry(e, seq=m["seq"], thread_id=tid))
    assert entry(e, decision="suppressed", reason="no_token", session_id=None, provider=None,
                 status=None), e
    a.say(tid, "after the delete")
    quiet(push_fake, t)


def test_token_registered_again_moves_to_the_new_session(pu, push_fake):
    a, b, tid = pair(pu)
    c = pu(display_name="Carol")
    tid_c = a.direct(c)["id"]
    t = register(b, "apns")
    m = a.say(tid, "for bob")
    register(c, "apns", token=t)  # the phone changed hands: now Carol's
    e = wait_log(b, "suppressed/no_token", lambda e: entry(e, seq=m["seq"], thread_id=tid))
    assert entry(e, decision="suppressed", reason="no_token"), e
    a.say(tid, "bob again")
    mc = a.say(tid_c, "for carol")
    wait_pushes(push_fake, t, 1, user=c)
    got = quiet(push_fake, t, 1)
    assert len(got) == 1, got
    assert alert(got[0])["thread_id"] == tid_c and got[0]["body"]["seq"] == mc["seq"]
    assert [x for x in log(b) if x["decision"] == "sent"] == []


def test_session_topic_is_the_apns_topic(pu, push_fake):
    a, b, tid = pair(pu)
    t = apns_token()
    push_fake.expect_topic(t, "com.example.chat.beta")
    register(b, "apns", token=t, topic="com.example.chat.beta")
    a.say(tid, "topic")
    got = wait_pushes(push_fake, t, 1, user=b)
    assert got[0]["headers"]["apns-topic"] == "com.example.chat.beta"
    assert got[0]["status_sent"] == 200


# --------------------------------------------------------------------------
# who gets a push
# --------------------------------------------------------------------------

def test_offline_member_gets_exactly_one_push_per_message(pu, push_fake):
    a, b, tid = pair(pu)
    ta = register(a, "apns")  # the sender's own device: never pushed for its own message
    tb = register(b, "apns")
    sent = []
    for i in (1, 2, 3):
        m = a.say(tid, f"message number {i} ✓")
        sent.append(m)
        got = wait_pushes(push_fake, tb, i, user=b)
        assert len(got) == i, got
        r = got[-1]
        assert r["status_sent"] == 200
        assert r["at_ms"] >= m["created_at"] + PUSH_GRACE_MS - CLOCK_SLACK_MS, \
            f"pushed {r['at_ms'] - m['created_at']:.0f} ms after the message, before the grace"
        assert r["path"] == f"/3/device/{tb}"
        h = r["headers"]
        assert h["apns-topic"] == PUSH_APNS_TOPIC
        assert h["apns-collapse-id"] == f"thread-{tid}"
        assert r["jwt"]["signature_ok"] is True
        body = alert(r)
        assert body == {"aps": {"alert": {"title": a.user["display_name"],
                                          "body": f"message number {i} ✓"},
                                "badge": i, "sound": "default", "thread-id": str(tid)},
                        "thread_id": tid, "seq": m["seq"]}, body
    quiet(push_fake, tb, 3)
    assert pushes(push_fake, ta) == []
    entries = log(b)
    sent_entries = [e for e in entries if e["thread_id"] == tid]
    assert sorted(e["seq"] for e in sent_entries) == [m["seq"] for m in sent]
    for e in sent_entries:
        assert entry(e, decision="sent", reason="ok", session_id=b.session_id, provider="apns",
                     status=200), e
    assert log(a) == []


def test_every_device_of_an_offline_member_gets_one_push_apns_and_fcm(pu, push_fake):
    a, b, tid = pair(pu)
    b2 = b.device("android")
    t1 = register(b, "apns")
    t2 = register(b2, "fcm")
    m = a.say(tid, "to both devices")
    r1 = wait_pushes(push_fake, t1, 1, user=b)[0]
    r2 = wait_pushes(push_fake, t2, 1, user=b)[0]
    assert alert(r1)["aps"]["alert"] == {"title": a.user["display_name"],
                                          "body": "to both devices"}
    assert r2["kind"] == "fcm" and r2["status_sent"] == 200
    assert r2["path"].startswith("/v1/projects/") and r2["path"].endswith("/messages:send")
    assert r2["body"] == {"message": {
        "token": t2,
        "notification": {"title": a.user["display_name"], "body": "to both devices"},
        "data": {"thread_id": str(tid), "seq": str(m["seq"]), "badge": "1"},
        "android": {"collapse_key": f"thread-{tid}", "priority": "high"}}}, r2["body"]
    quiet(push_fake, t1, 1, seconds=0.5)
    quiet(push_fake, t2, 1, seconds=0)
    sessions = {e["session_id"]: e for e in log(b) if e["seq"] == m["seq"]}
    assert set(sessions) == {b.session_id, b2.session_id}, sessions
    assert sessions[b2.session_id]["provider"] == "fcm"


def test_group_push_title_and_body(pu, push_fake):
    a = pu(display_name="Alice G")
    b = pu(display_name="Bob G")
    c = pu(display_name="Carol G")
    tb = register(b, "apns")
    tc = register(c, "fcm")
    a.known_by(b, c)  # else a stranger's group: a message request, no push
    g = a.group(b, c, title="Trip to Rome")["id"]
    a.say(g, "tickets booked")
    rb = wait_pushes(push_fake, tb, 1, user=b)[0]
    rc = wait_pushes(push_fake, tc, 1, user=c)[0]
    assert alert(rb)["aps"]["alert"] == {"title": "Trip to Rome", "body": "Alice G: tickets booked"}
    assert rc["body"]["message"]["notification"] == {"title": "Trip to Rome",
                                                     "body": "Alice G: tickets booked"}
    untitled = a.group(b, c, title=None)["id"]
    a.say(untitled, "no title here")
    rb = wait_pushes(push_fake, tb, 2, user=b)[1]
    assert alert(rb)["thread_id"] == untitled
    assert rb["body"]["aps"]["alert"] == {"title": "Alice G", "body": "Alice G: no title here"}
    assert rb["body"]["aps"]["badge"] == 2


def test_member_reading_on_any_device_gets_no_push(pu, push_fake):
    a, b, tid = pair(pu)
    register(a, "apns")
    tb = register(b, "apns")  # the phone, in a pocket
    laptop = b.device("laptop")
    poller = Poller(laptop)  # the laptop is reading
    try:
        m = a.say(tid, "seen on the laptop")
        e = wait_log(b, "suppressed/delivered",
                     lambda e: entry(e, seq=m["seq"], thread_id=tid))
        assert entry(e, decision="suppressed", reason="delivered", session_id=None,
                     provider=None, status=None), e
        assert any(ev["type"] == "message" and ev["message"]["seq"] == m["seq"]
                   for ev in poller.events)
        assert b.receipts(tid)[b.id]["delivered_seq"] >= m["seq"]
        quiet(push_fake, tb, seconds=0.5)
    finally:
        poller.stop()
    # the laptop stopped: the next message pushes
    m2 = a.say(tid, "laptop closed")
    r = wait_pushes(push_fake, tb, 1, user=b)[0]
    assert alert(r)["seq"] == m2["seq"]


def test_muted_thread_gets_no_push(pu, push_fake):
    a, b, tid = pair(pu)
    tb = register(b, "fcm")
    st, body = b.patch(f"/v1/threads/{tid}/settings", {"is_muted": True})
    assert st == 200 and body["thread"]["is_muted"] is True, body
    m = a.say(tid, "shh")
    e = wait_log(b, "suppressed/muted", lambda e: entry(e, seq=m["seq"], thread_id=tid))
    assert entry(e, decision="suppressed", reason="muted", session_id=None, provider=None,
                 status=None), e
    quiet(push_fake, tb, seconds=0.5)
    st, body = b.patch(f"/v1/threads/{tid}/settings", {"is_muted": False})
    assert st == 200, body
    m2 = a.say(tid, "loud again")
    r = wait_pushes(push_fake, tb, 1, user=b)[0]
    assert r["body"]["message"]["data"]["seq"] == str(m2["seq"])


def test_read_on_one_device_clears_the_others(pu, push_fake):
    a, b, tid = pair(pu)
    b2 = b.device("tablet")
    b3 = b.device("phone that reads")
    t1 = register(b, "apns")
    t2 = register(b2, "fcm")
    t3 = register(b3, "apns")
    m1 = a.say(tid, "one")
    m2 = a.say(tid, "two")
    for t in (t1, t2, t3):
        wait_pushes(push_fake, t, 2, user=b)
    t_read = time.time() * 1000
    assert b3.post(f"/v1/threads/{tid}/read", {"seq": m2["seq"]}).status == 204
    c1 = wait_pushes(push_fake, t1, 3, user=b)[2]
    c2 = wait_pushes(push_fake, t2, 3, user=b)[2]
    for c in (c1, c2):  # a clear job is due at once, not after the grace period
        assert c["at_ms"] - t_read < PUSH_GRACE_MS - 100, \
            f"the clear push came {c['at_ms'] - t_read:.0f} ms after /read"
    assert c1["status_sent"] == 200 and c2["status_sent"] == 200
    assert c1["headers"]["apns-push-type"] == "background"
    assert c1["headers"]["apns-priority"] == "5"
    assert c1["headers"]["apns-collapse-id"] == f"thread-{tid}"
    assert c1["body"] == {"aps": {"content-available": 1}, "type": "clear", "thread_id": tid,
                          "seq": m2["seq"]}, c1["body"]
    assert c2["body"] == {"message": {"token": t2,
                                      "data": {"type": "clear", "thread_id": str(tid),
                                               "seq": str(m2["seq"])},
                                      "android": {"priority": "normal"}}}, c2["body"]
    quiet(push_fake, t3, 2, seconds=0.5)  # the reading device gets no clear push
    quiet(push_fake, t1, 3, seconds=0)
    clears = [e for e in log(b) if e["reason"] == "clear"]
    assert {e["session_id"] for e in clears} == {b.session_id, b2.session_id}, clears
    for e in clears:
        assert entry(e, decision="sent", thread_id=tid, seq=m2["seq"], status=200), e
    assert m1["seq"] < m2["seq"]


# --------------------------------------------------------------------------
# provider answers
# --------------------------------------------------------------------------

def fcm_error(code, status, message, error_code=None):
    e = {"error": {"code": code, "status": status, "message": message}}
    if error_code:
        e["error"]["details"] = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                  "errorCode": error_code}]
    return e


def test_unregistered_and_bad_tokens_are_removed(pu, push_fake):
    a, b, tid = pair(pu)
    devs = [b] + [b.device(f"device {i}") for i in range(4)]
    t_ok = register(devs[0], "apns")
    cases = [  # (device, provider, scripted answer, reason, status)
        (devs[1], "apns", {"status": 410, "body": {"reason": "Unregistered",
                                                   "timestamp": int(time.time() * 1000)}},
         "unregistered", 410),
        (devs[2], "fcm", {"status": 404, "body": fcm_error(404, "NOT_FOUND",
                                                           "Requested entity was not found.",
                                                           "UNREGISTERED")},
         "unregistered", 404),
        (devs[3], "apns", {"status": 400, "body": {"reason": "BadDeviceToken"}}, "bad_token", 400),
        (devs[4], "fcm", {"status": 400, "body": fcm_error(400, "INVALID_ARGUMENT",
                                                           "The registration token is not a valid FCM registration token",
                                                           "INVALID_ARGUMENT")},
         "bad_token", 400),
    ]
    toks = []
    for dev, provider, answer, _, _ in cases:
        t = register(dev, provider)
        push_fake.script(t, [answer])
        toks.append(t)
    m1 = a.say(tid, "first")
    wait_pushes(push_fake, t_ok, 1, user=b)
    for (dev, provider, answer, reason, status), t in zip(cases, toks):
        wait_pushes(push_fake, t, 1, user=b)
        e = wait_log(b, f"failed/{reason} for session {dev.session_id}",
                     lambda e, dev=dev: entry(e, seq=m1["seq"], session_id=dev.session_id))
        assert entry(e, decision="failed", reason=reason, status=status, provider=provider), e
    a.say(tid, "second")
    wait_pushes(push_fake, t_ok, 2, user=b)
    time.sleep(0.5)
    for t in toks:
        assert len(pushes(push_fake, t)) == 1, f"{t[:16]}… was pushed after its removal"


def test_429_retry_after_is_respected(pu, push_fake):
    a, b, tid = pair(pu)
    t = register(b, "apns")
    push_fake.script(t, [{"status": 429, "headers": {"retry-after": "2"},
                          "body": {"reason": "TooManyRequests"}}])
    m = a.say(tid, "rate limited")
    got = wait_pushes(push_fake, t, 2, user=b)
    first, second = got[0], got[1]
    assert first["status_sent"] == 429 and second["status_sent"] == 200
    gap = second["at_ms"] - first["answered_ms"]
    assert gap >= 2000 - CLOCK_SLACK_MS, f"retried {gap:.0f} ms after a 429 with Retry-After: 2"
    assert gap < 6000, f"retried only {gap:.0f} ms after the 429"
    assert alert(second)["seq"] == m["seq"]
    assert second["headers"]["apns-collapse-id"] == first["headers"]["apns-collapse-id"]
    quiet(push_fake, t, 2, seconds=1.0)
    mine = [e for e in log(b) if e["seq"] == m["seq"]]
    assert any(entry(e, decision="failed", reason="retry", status=429) for e in mine), mine
    assert [e for e in mine if e["decision"] == "sent"] == \
        [e for e in mine if entry(e, decision="sent", reason="ok", status=200)]
    assert len([e for e in mine if e["decision"] == "sent"]) == 1, mine


def test_5xx_retried_with_growing_backoff_then_given_up(pu, push_fake):
    a, b, tid = pair(pu)
    b2 = b.device("second")
    t1 = register(b, "apns")
    t2 = register(b2, "fcm")
    push_fake.script(t1, [{"status": 500, "body": {"reason": "InternalServerError"}}] * 3)
    push_fake.script(t2, [{"status": 503, "body": fcm_error(503, "UNAVAILABLE",
                                                            "The service is unavailable.")}]
                     * PUSH_MAX_ATTEMPTS)
    m = a.say(tid, "flaky provider")
    r1 = wait_pushes(push_fake, t1, 4, user=b, timeout=30)
    r2 = wait_pushes(push_fake, t2, PUSH_MAX_ATTEMPTS, user=b, timeout=30)
    assert [r["status_sent"] for r in r1] == [500, 500, 500, 200]
    for rs in (r1, r2):
        gaps = [(y["at_ms"] - x["answered_ms"]) / 1000 for x, y in zip(rs, rs[1:])]
        # 1 s, 2 s, 4 s, each +-20 %
        for k, g in enumerate(gaps):
            base = 2 ** k
            assert 0.8 * base - 0.005 <= g <= 1.2 * base + 1.0, \
                f"attempt {k + 2} came {g:.2f} s after attempt {k + 1}; gaps {gaps}"
        assert all(y > x for x, y in zip(gaps, gaps[1:])), f"backoff does not grow: {gaps}"
    e = wait_log(b, "failed/gave_up", lambda e: entry(e, seq=m["seq"], session_id=b2.session_id,
                                                     reason="gave_up"))
    assert entry(e, decision="failed", provider="fcm", status=503), e
    quiet(push_fake, t2, PUSH_MAX_ATTEMPTS, seconds=1.5)  # no attempt past the maximum
    quiet(push_fake, t1, 4, seconds=0)
    mine = [e for e in log(b) if e["seq"] == m["seq"] and e["session_id"] == b.session_id]
    assert sorted((e["decision"], e["reason"], e["status"]) for e in mine) == \
        sorted([("failed", "retry", 500)] * 3 + [("sent", "ok", 200)]), mine


def test_apns_jwt_and_fcm_access_token_are_reused(pu, push_fake):
    a, b, tid = pair(pu)
    b2 = b.device("android")
    t1 = register(b, "apns")
    t2 = register(b2, "fcm")
    t0 = time.time() * 1000
    n = 6
    for i in range(n):
        a.say(tid, f"burst {i}")
    r1 = wait_pushes(push_fake, t1, n, user=b)
    r2 = wait_pushes(push_fake, t2, n, user=b)
    assert len(ok(r1)) == n and len(ok(r2)) == n
    auths = {r["headers"]["authorization"] for r in r1}
    assert len(auths) == 1, f"{n} APNs pushes carried {len(auths)} different JWTs"
    assert len({r["jwt"]["claims"]["iat"] for r in r1}) == 1
    tokens = {r["headers"]["authorization"] for r in r2}
    assert len(tokens) == 1, f"{n} FCM pushes carried {len(tokens)} different access tokens"
    oauth = clean([r for r in push_fake.requests("oauth") if r["at_ms"] >= t0])
    assert len(oauth) <= 1, f"{len(oauth)} token requests for {n} FCM pushes"
    # across the whole module so far: one access token, unless a 401 forced a refresh
    assert len(push_fake.requests("oauth")) >= 1
    issued = {r["answer"]["body"]["access_token"] for r in push_fake.requests("oauth")
              if r["status_sent"] == 200}
    assert tokens.pop().split(" ", 1)[1] in issued


def test_fcm_401_refreshes_the_access_token_once(pu, push_fake):
    a, b, tid = pair(pu)
    t = register(b, "fcm")
    a.say(tid, "warm up")  # chatd has an access token from here on
    first = wait_pushes(push_fake, t, 1, user=b)[0]
    assert first["status_sent"] == 200
    push_fake.script(t, [{"status": 401, "body": fcm_error(
        401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")}])
    m = a.say(tid, "after the token was revoked")
    got = wait_pushes(push_fake, t, 3, user=b)
    rejected, retried = got[1], got[2]
    assert rejected["status_sent"] == 401 and retried["status_sent"] == 200
    oauth = clean([r for r in push_fake.requests("oauth")
                   if rejected["answered_ms"] <= r["at_ms"] <= retried["at_ms"]])
    assert len(oauth) == 1, f"{len(oauth)} token requests between the 401 and the retry"
    new = oauth[0]["answer"]["body"]["access_token"]
    assert retried["headers"]["authorization"] == f"Bearer {new}"
    assert rejected["headers"]["authorization"] != retried["headers"]["authorization"]
    assert retried["body"]["message"]["data"]["seq"] == str(m["seq"])
    quiet(push_fake, t, 3, seconds=1.0)
    assert len([r for r in push_fake.requests("oauth") if r["at_ms"] > retried["at_ms"]]) == 0


def test_apns_expired_provider_token_makes_a_new_jwt(pu, push_fake):
    a, b, tid = pair(pu)
    t = register(b, "apns")
    push_fake.script(t, [{"status": 403, "body": {"reason": "ExpiredProviderToken"}}])
    m = a.say(tid, "jwt expired")
    got = wait_pushes(push_fake, t, 2, user=b)
    old, new = got[0], got[1]
    assert old["status_sent"] == 403 and new["status_sent"] == 200
    assert new["headers"]["authorization"] != old["headers"]["authorization"], \
        "retried with the JWT APNs called expired"
    assert new["jwt"]["signature_ok"] is True
    assert new["at_ms"] - old["answered_ms"] < 1000, "the retry after a fresh JWT is not at once"
    assert alert(new)["seq"] == m["seq"]
    quiet(push_fake, t, 2, seconds=1.0)
    # the fresh JWT is the one reused from then on
    a.say(tid, "next")
    nxt = wait_pushes(push_fake, t, 3, user=b)[2]
    assert nxt["headers"]["authorization"] == new["headers"]["authorization"]


# --------------------------------------------------------------------------
# crashes
# --------------------------------------------------------------------------

def test_kill9_between_commit_and_send_still_pushes(pu, push_fake, push_server):
    a, b, tid = pair(pu)
    t = register(b, "apns")
    m = a.say(tid, "survives a crash")
    push_server.restart(kill9=True)  # within the grace period: nothing was sent yet
    got = wait_pushes(push_fake, t, 1, user=b, timeout=30)
    assert pushes(push_fake, t) and ok(got), got
    for r in got:
        assert r["headers"]["apns-collapse-id"] == f"thread-{tid}"
        assert alert(r)["seq"] == m["seq"] and r["body"]["thread_id"] == tid


REPUSH_AFTER_CRASH_S = 30     # a push lost in flight by a crash comes again within this
REPUSH_AFTER_SIGTERM_S = 10   # ... and one dropped by a clean stop, sooner


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
def test_restart_while_the_request_is_in_flight_pushes_again(pu, push_fake, push_server, how):
    """The provider has not answered when chatd stops: the job is still in the
    outbox, and the restarted chatd sends it again, within
    REPUSH_AFTER_CRASH_S of a kill -9, within REPUSH_AFTER_SIGTERM_S of a
    clean stop (which knows what it drops)."""
    a, b, tid = pair(pu)
    t = register(b, "apns")
    push_fake.script(t, [{"status": 200, "delay_ms": 8000}])  # holds the answer back
    m = a.say(tid, "in flight")
    wait_pushes(push_fake, t, 1, user=b, answered=False)
    push_server.restart(kill9=(how == "kill9"))
    got = until("a push after the restart",
                lambda: [r for r in pushes(push_fake, t)[1:] if r["status_sent"] == 200],
                timeout=REPUSH_AFTER_CRASH_S if how == "kill9" else REPUSH_AFTER_SIGTERM_S)
    every = pushes(push_fake, t)
    assert len(every) >= 2, every
    for r in every:
        assert r["headers"]["apns-collapse-id"] == f"thread-{tid}"  # folds the duplicate
        assert alert(r)["seq"] == m["seq"]
    assert got


# --------------------------------------------------------------------------
# the log, the payload limit, metrics, push off
# --------------------------------------------------------------------------

def test_notification_log_shape_order_and_limits(pu, push_fake, push_server):
    a, b, tid = pair(pu)
    outsider = pu()
    t = register(b, "apns")
    m1 = a.say(tid, "log one")
    wait_pushes(push_fake, t, 1, user=b)
    m2 = a.say(tid, "log two")
    wait_pushes(push_fake, t, 2, user=b)
    entries = wait_log(b, "two entries", lambda e: e["seq"] == m2["seq"]) and log(b)
    assert len(entries) == 2, entries
    for e in entries:
        assert set(e) == {"thread_id", "seq", "session_id", "provider", "decision", "reason",
                          "status", "at"}, e
        assert isinstance(e["at"], int) and e["at"] >= m1["created_at"], e
        assert entry(e, thread_id=tid, session_id=b.session_id, provider="apns",
                     decision="sent", reason="ok", status=200), e
    assert [e["seq"] for e in entries] == [m2["seq"], m1["seq"]], "not newest first"
    assert entries[0]["at"] >= entries[1]["at"]
    assert log(b, limit=1) == entries[:1]
    assert log(b, limit=500) == entries
    # only the caller's own devices
    assert log(a) == [] and log(outsider) == []
    for bad in ("0", "501", "-1", "x", "1.5", ""):
        problem(b.get("/v1/notifications/log", params={"limit": bad}), 400, "invalid_request")
    problem(Client(push_server).get("/v1/notifications/log"), 401, "unauthorized")


def test_long_message_preview_fits_the_payload_limit(pu, push_fake):
    a, b, tid = pair(pu)
    b2 = b.device("android")
    t1 = register(b, "apns")
    t2 = register(b2, "fcm")
    text = ("é🙂ü" * 3000)[:8000]  # 2-, 4- and 2-byte characters, ~ 21 KB of UTF-8
    a.say(tid, text)
    r1 = wait_pushes(push_fake, t1, 1, user=b)[0]
    r2 = wait_pushes(push_fake, t2, 1, user=b)[0]
    assert r1["body_bytes"] <= 4096 and r1["status_sent"] == 200
    preview = r1["body"]["aps"]["alert"]["body"]
    assert 0 < len(preview) < len(text) and text.startswith(preview.rstrip("…").rstrip("..."))
    assert r2["body_bytes"] <= 4096 and r2["status_sent"] == 200
    fpreview = r2["body"]["message"]["notification"]["body"]
    assert 0 < len(fpreview) < len(text) and text.startswith(fpreview.rstrip("…").rstrip("..."))


def test_metrics_count_push_requests(pu, push_fake, push_server):
    a, b, tid = pair(pu)
    t = register(b, "apns")
    a.say(tid, "counted")
    wait_pushes(push_fake, t, 1, user=b)
    time.sleep(0.2)
    text = requests.get(push_server.base + "/metrics", timeout=10).text
    assert 'chatd_push_requests_total{provider="apns",result="ok"}' in text, text[-3000:]
    assert "chatd_push_outbox_depth" in text
    assert "chatd_push_latency_seconds_bucket" in text
    assert "chatd_push_latency_seconds_count" in text


def test_without_push_configured_tokens_register_and_jobs_log_push_off(new_user, push_fake):
    """The default test server has no provider configured."""
    a = new_user(display_name="Alice off")
    b = new_user()
    tid = a.direct(b)["id"]
    t = register(b, "apns")
    register(b.device("android"), "fcm")
    m = a.say(tid, "nobody to push to")
    e = wait_log(b, "failed/push_off", lambda e: entry(e, seq=m["seq"], thread_id=tid),
                 timeout=15)
    assert entry(e, decision="failed", reason="push_off"), e
    assert b.post(f"/v1/threads/{tid}/read", {"seq": m["seq"]}).status == 204
    assert b.delete("/v1/sessions/current/push").status == 204
    assert push_fake.requests(t) == []


def test_zz_the_fake_found_no_problem_in_any_request(push_fake, push_server):
    """Runs last: every request chatd sent during this module meets docs/push.md."""
    everything = push_fake.requests()
    assert everything, "chatd sent no request at all to the fake"
    bad = [(r["kind"], r["path"][:60], r["problems"]) for r in everything if r["problems"]]
    assert bad == [], bad
    kinds = {r["kind"] for r in everything}
    assert kinds == {"apns", "fcm", "oauth"}, kinds


def test_push_names_the_attachments(pu, push_fake):
    """A message with attachments pushes what it holds: "Photo", "Voice
    message" or the file name, with the caption after it."""
    a, b, tid = pair(pu)
    tb = register(b, "apns")
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c63f8ffff3f0005fe02fea7d6a4a50000000049454e44ae426082")

    def attach(data, name):
        up = a.post("/v1/uploads", {"filename": name, "size": len(data)}).body["upload"]
        r = a.put(f"/v1/uploads/{up['id']}/content", data=data,
                  headers={"Content-Type": "application/octet-stream"})
        assert r.status == 200, r
        return up["id"]

    sent = [({"body": "at the beach", "attachments": [attach(png, "IMG_1.png")]},
             "Photo: at the beach"),
            ({"attachments": [attach(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "invoice.pdf")]},
             "invoice.pdf")]
    for i, (msg, text) in enumerate(sent, 1):
        r = a.post(f"/v1/threads/{tid}/messages", {"client_msg_id": f"att-{i}", **msg})
        assert r.status == 201, r
        got = wait_pushes(push_fake, tb, i, user=b)
        assert alert(got[-1])["aps"]["alert"] == {"title": a.user["display_name"], "body": text}


def test_no_push_for_a_message_request(pu, push_fake):
    """A stranger's group is a message request: no push until accepted."""
    a, b = pu(), pu()
    tb = register(b, "apns")
    g = a.group(b)["id"]
    a.say(g, "buy my stuff")
    quiet(push_fake, tb, 0)
    assert [e["reason"] for e in log(b) if e["thread_id"] == g] == ["request"]
    assert b.post(f"/v1/threads/{g}/accept").status == 200
    a.say(g, "thanks for accepting")
    assert len(wait_pushes(push_fake, tb, 1, user=b)) == 1


def test_a_delete_clears_the_push_and_stops_a_pending_one(pu, push_fake):
    """API.md "Message actions": a delete clears the message's push; a push
    not sent yet finds the message deleted and sends nothing."""
    a, b, tid = pair(pu)
    tb = register(b, "apns")
    m1 = a.say(tid, "pushed, then deleted")
    wait_pushes(push_fake, tb, 1, user=b)
    assert a.delete(f"/v1/threads/{tid}/messages/{m1['seq']}").status == 204
    c = wait_pushes(push_fake, tb, 2, user=b)[1]
    assert c["headers"]["apns-push-type"] == "background"
    assert c["body"] == {"aps": {"content-available": 1}, "type": "clear", "thread_id": tid,
                         "seq": m1["seq"]}, c["body"]
    m2 = a.say(tid, "deleted before its push")
    assert a.delete(f"/v1/threads/{tid}/messages/{m2['seq']}").status == 204
    wait_log(b, "the pending push suppressed",
             lambda e: entry(e, seq=m2["seq"], decision="suppressed", reason="deleted"))
    rs = quiet(push_fake, tb, 3)  # m1, its clear, and m2's clear only
    assert rs[2]["body"]["type"] == "clear" and rs[2]["body"]["seq"] == m2["seq"]
    assert "deleted before its push" not in str(rs)


def test_notify_mentions_pushes_only_mentions(pu, push_fake):
    a, b, tid = pair(pu)
    tb = register(b, "apns")
    r = b.patch(f"/v1/threads/{tid}/settings", {"notify": "mentions"})
    assert r.status == 200 and r.body["thread"]["notify"] == "mentions"
    m1 = a.say(tid, "nothing for you")
    m2 = a.say(tid, f"@{b.username} look")
    got = wait_pushes(push_fake, tb, 1, user=b)
    assert alert(got[0])["aps"]["alert"]["body"] == f"@{b.username} look"
    wait_log(b, "the unmentioned message suppressed",
             lambda e: entry(e, seq=m1["seq"], decision="suppressed", reason="not_mentioned"))
    quiet(push_fake, tb, 1)
    assert m2["mentions"]["user_ids"] == [b.id]


def test_a_reaction_to_your_message_pushes(pu, push_fake):
    a, b, tid = pair(pu)
    ta = register(a, "apns")
    tb = register(b, "apns")
    m = a.say(tid, "lunch at noon?")
    wait_pushes(push_fake, tb, 1, user=b)
    assert b.put(f"/v1/threads/{tid}/messages/{m['seq']}/reactions/👍").status == 204
    got = wait_pushes(push_fake, ta, 1, user=a)
    body = alert(got[0])
    assert body["aps"]["alert"] == {"title": b.user["display_name"],
                                    "body": "Reacted 👍 to: lunch at noon?"}, body
    # Taken back within the grace period: nothing.
    assert b.put(f"/v1/threads/{tid}/messages/{m['seq']}/reactions/🎉").status == 204
    assert b.delete(f"/v1/threads/{tid}/messages/{m['seq']}/reactions/🎉").status == 204
    wait_log(a, "the taken-back reaction suppressed",
             lambda e: entry(e, seq=m["seq"], decision="suppressed", reason="removed"))
    # One's own reaction to one's own message: nothing; the reactor gets nothing.
    assert a.put(f"/v1/threads/{tid}/messages/{m['seq']}/reactions/❤️").status == 204
    quiet(push_fake, ta, 1)
    quiet(push_fake, tb, 1, seconds=0)
