"""Presence and typing (API.md "Presence and typing", ephemeral events in
"The inbox").

Presence runs against a second chatd with a 2-second window
(CHAT_PRESENCE_WINDOW_S=2, the `presence_server` fixture) so that going
offline takes seconds, not a minute. Parked polls, presence and typing live in
one chatd process: a presence test does everything through that server.
Typing runs against the shared `server`."""
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import (SHORT_PRESENCE_WINDOW_S as WINDOW, DURABLE_TYPES, Client, ParkedPoll,
                      Poller, inbox, inbox_cursor, make_user, problem, stop_pollers)

SLACK = 8  # seconds allowed beyond what the contract names


def users_on(srv, n):
    with ThreadPoolExecutor(4) as ex:
        return list(ex.map(lambda _: make_user(srv), range(n)))


def now_ms():
    return int(time.time() * 1000)


def presence_of(watcher, *ids):
    st, b = watcher.get("/v1/presence", params={"user_ids": ",".join(str(i) for i in ids)})
    assert st == 200, (st, b)
    return b["presence"]


def registered_polls(srv):
    """The inbox polls registered on srv now (its chatd_parked_polls gauge)."""
    r = requests.get(srv.base + "/metrics", timeout=10)
    assert r.status_code == 200, r
    m = re.search(r"^chatd_parked_polls (\d+)$", r.text, re.M)
    assert m, "no chatd_parked_polls in /metrics"
    return int(m.group(1))


def wait_polls_registered(srv, n, timeout=SLACK):
    """Waits until at least n inbox polls are registered on srv. A poll of an
    earlier test that is still ending may count too, so this can return a
    little early: a change published then still reaches the new polls from
    the hub's recent events (test_presence_change_reaches_a_poll_that_comes_
    just_after), only not as a wake-up of a parked poll."""
    deadline = time.monotonic() + timeout
    while True:
        got = registered_polls(srv)
        if got >= n:
            return
        assert time.monotonic() < deadline, \
            f"{got} inbox polls registered after {timeout} s; want {n}"
        time.sleep(0.05)


def is_presence(uid, state=None):
    return lambda e: (e["type"] == "presence" and e["user_id"] == uid
                      and (state is None or e["state"] == state))


class Watcher:
    """A user watching with two devices, so that a presence change falls
    between two polls of both devices only by a rare coincidence (such a
    change still reaches the next poll that comes within seconds: see
    test_presence_change_reaches_a_poll_that_comes_just_after). Returns once
    both devices have a poll registered."""

    def __init__(self, user):
        self.user = user
        # timeouts that do not line the two devices' reconnects up with each
        # other, nor with the 2-second window
        self.pollers = [Poller(user, timeout=3), Poller(user.device("watcher 2"), timeout=5)]
        wait_polls_registered(user.server, len(self.pollers))

    def wait_for(self, pred, timeout, what, after=0.0):
        """The first matching event that arrived (at either device) after
        `after` (time.monotonic()): (event, arrival)."""
        deadline = time.monotonic() + timeout
        while True:
            hits = []
            for p in self.pollers:
                hits += [(at, e) for at, e, _ in list(p.items) if at >= after and pred(e)]
            if hits:
                at, e = min(hits, key=lambda h: h[0])
                return e, at
            assert time.monotonic() < deadline, f"{self.user} got no {what} within {timeout} s"
            time.sleep(0.05)

    def events(self, pred):
        """[(arrival, event)] per device."""
        return [[(at, e) for at, e, _ in list(p.items) if pred(e)] for p in self.pollers]

    def stop(self):
        stop_pollers(*self.pollers)
        for p in self.pollers:
            assert not p.errors, p.errors


# --------------------------------------------------------------------------
# Presence
# --------------------------------------------------------------------------

def test_presence_online_and_offline_reach_a_co_member(presence_server):
    u, w = users_on(presence_server, 2)
    w.direct(u)  # co-members; u itself has made no authenticated request yet
    assert presence_of(w, u.id)[str(u.id)]["state"] == "offline"
    watch = Watcher(w)
    try:
        # an authenticated request: online within a second (bound: a few)
        t_req, wall_req = time.monotonic(), now_ms()
        assert u.get("/v1/me").status == 200
        e, at = watch.wait_for(is_presence(u.id, "online"), 1 + SLACK, "online event")
        assert set(e) == {"type", "user_id", "state", "last_seen_at"}, e
        assert isinstance(e["last_seen_at"], int)
        assert at - t_req < 1 + SLACK
        p = presence_of(w, u.id)[str(u.id)]
        assert p["state"] == "online" and isinstance(p["last_seen_at"], int)
        # nothing more: offline once the window has passed, not before
        e, at = watch.wait_for(is_presence(u.id, "offline"), WINDOW + SLACK, "offline event")
        assert at - t_req >= WINDOW - 0.5, "offline before the window had passed"
        assert abs(e["last_seen_at"] - wall_req) < 1500, (e, wall_req)
        p = presence_of(w, u.id)[str(u.id)]
        assert p["state"] == "offline"
        assert abs(p["last_seen_at"] - e["last_seen_at"]) < 1500, (p, e)

        # a parked poll keeps u online past the window; offline comes after it ends
        poll_started = time.monotonic()  # the cursor's request already counts
        c = inbox_cursor(u)
        # (answers with ephemeral events only are polled again at once, as a client does)
        poll = ParkedPoll(u, c, timeout=WINDOW + 1, deadline=WINDOW + 1, until=lambda evs: False)
        watch.wait_for(is_presence(u.id, "online"), 1 + SLACK, "online event again",
                       after=poll_started)
        # The point: let the window pass while the poll is parked (a sleep,
        # not a synchronisation), then u must still be online.
        time.sleep(max(0.0, poll_started + WINDOW + 0.5 - time.monotonic()))
        assert poll.alive(), "the poll ended early"
        assert presence_of(w, u.id)[str(u.id)]["state"] == "online", \
            "offline while a poll is parked"
        poll.join(WINDOW + 30)
        poll_ended = time.monotonic()
        assert poll.error is None and all(x.status == 200 for x in poll.answers), poll.answers
        e, at = watch.wait_for(is_presence(u.id, "offline"), WINDOW + SLACK,
                               "offline event after the poll", after=poll_started)
        assert at >= poll_ended - 0.5, "offline while the poll was parked"
        assert at - poll_ended < WINDOW + SLACK
        assert poll_ended - poll_started >= WINDOW + 0.5
        # Proving a negative: a duplicate change would come by now (the
        # sweeper publishes every 200 ms); the checks below count them.
        time.sleep(0.3)
    finally:
        watch.stop()
    for dev in watch.events(is_presence(u.id)):
        states = [x["state"] for _, x in dev]
        assert all(a != b for a, b in zip(states, states[1:])), f"a change came twice: {dev}"
        assert len(states) <= 4, dev
        late = [at for at, x in dev if at >= poll_started and x["state"] == "offline"]
        assert all(at >= poll_ended - 0.5 for at in late), "offline while the poll was parked"


def test_reconnect_storm_publishes_at_most_one_change(presence_server):
    u, w = users_on(presence_server, 2)
    w.direct(u)
    assert u.get("/v1/me").status == 200
    watch = Watcher(w)
    polls = []
    try:
        # u offline first as published, not only as GET /v1/presence computes
        # it: the sweeper publishes every 200 ms, and a storm that starts
        # before it has seen u offline changes nothing
        watch.wait_for(is_presence(u.id, "offline"), WINDOW + SLACK, "offline before the storm")
        storm_start = time.monotonic()  # the cursor's request is the storm's first
        c = inbox_cursor(u)
        results = []

        def one():
            try:
                results.append(inbox(u, c, timeout=1))
            except requests.RequestException as e:
                results.append(e)

        for _ in range(10):  # each new poll of the session answers the one before
            t = threading.Thread(target=one)
            t.start()
            polls.append(t)
            # The storm's pace (a reconnect every 50 ms, within one sweeper
            # tick or a few), not a synchronisation: any interleaving of
            # the polls must give the same result.
            time.sleep(0.05)
        for t in polls:
            t.join(30)
        storm_end = time.monotonic()
        assert len(results) == 10 and all(getattr(r, "status", None) == 200 for r in results), \
            results
        watch.wait_for(is_presence(u.id, "offline"), WINDOW + SLACK, "offline after the storm",
                       after=storm_start)
        # Proving a negative: a change too many would come by now.
        time.sleep(0.5)
    finally:
        for t in polls:
            t.join(30)
        watch.stop()
    # (changes from before the storm may reach the watcher's first polls: ephemeral
    # events go to polls that come within a few seconds)
    devs = [[(at, e) for at, e in dev if at >= storm_start] for dev in watch.events(is_presence(u.id))]
    assert any(any(e["state"] == "online" for _, e in dev) for dev in devs), devs
    for dev in devs:
        during = [e for at, e in dev if at <= storm_end + 0.5]
        assert len(during) <= 2, f"the storm published {len(during)} changes: {during}"
        assert len(dev) <= 2, f"10 reconnects: {dev}"


def test_presence_change_reaches_a_poll_that_comes_just_after(presence_server):
    """Ephemeral events reach polls that come within a few seconds: a watcher
    between two polls when the user comes online still hears of it."""
    u, w, probe = users_on(presence_server, 3)
    w.direct(u)
    probe.direct(u)
    c = inbox_cursor(w)
    # probe hears of u in the same publication as w: once it has, the change
    # was published while w had no poll
    pp = Poller(probe)
    try:
        t_req = time.monotonic()
        assert u.get("/v1/me").status == 200  # u's first authenticated request
        _, published = pp.wait_for(is_presence(u.id, "online"), 1 + SLACK, "u's online event")
    finally:
        stop_pollers(pp)
    assert not pp.errors, pp.errors
    assert published - t_req < 1 + SLACK
    # The point: w's poll comes a while after the publication, not just
    # after it (the hub keeps such events for 5 s).
    time.sleep(0.7)
    r = inbox(w, c, timeout=1)
    assert r.status == 200, r
    got = [e["state"] for e in r.body["events"] if is_presence(u.id)(e)]
    assert "online" in got, (f"a poll {time.monotonic() - published:.1f} s after u's online "
                             f"was published did not get it: {r.body}")
    assert r.body["next"] == c, "an ephemeral event moved the cursor"


def test_presence_visible_to_mutual_contacts_and_co_members_only(presence_server):
    u, member, owner, stranger, lonely = users_on(presence_server, 5)
    member.direct(u)
    assert owner.put(f"/v1/contacts/{u.id}").status == 200   # owner has u as a contact
    assert str(u.id) not in presence_of(owner, u.id)         # one-sided: nothing
    assert u.put(f"/v1/contacts/{owner.id}").status == 200   # and u has owner: mutual
    assert lonely.put(f"/v1/contacts/{owner.id}").status == 200  # not the other way round
    assert stranger.get("/v1/me").status == 200
    for viewer in (member, owner):
        p = presence_of(viewer, u.id, stranger.id, 987654321)
        assert set(p) == {str(u.id)}, p
        assert set(p[str(u.id)]) == {"state", "last_seen_at"}
    # lonely's contact is one-sided: neither sees the other
    assert str(owner.id) not in presence_of(lonely, owner.id)
    assert str(lonely.id) not in presence_of(owner, lonely.id)
    assert presence_of(stranger, u.id) == {}
    # bad lists
    for bad in ("", "x", "1,,2", "1,", "0", "-3", "1.5"):
        problem(member.get("/v1/presence", params={"user_ids": bad}), 400, "invalid_request")
    problem(member.get("/v1/presence"), 400, "invalid_request")
    problem(Client(presence_server).get("/v1/presence", params={"user_ids": str(u.id)}),
            401, "unauthorized")


def test_a_strangers_state_change_produces_no_presence_event(presence_server):
    u, w, stranger, other = users_on(presence_server, 4)
    w.direct(u)
    stranger.direct(other)  # the stranger has co-members, just not w
    watch = Watcher(w)
    po = Poller(other)  # other, a co-member of stranger, hears stranger's changes
    try:
        # both offline first, so that coming online below is a change for
        # each: u has made no authenticated request yet; stranger has, so
        # wait until its offline is published (the sweeper's view, a tick
        # behind GET /v1/presence)
        assert presence_of(w, u.id)[str(u.id)]["state"] == "offline"
        po.wait_for(is_presence(stranger.id, "offline"), WINDOW + SLACK,
                    "stranger's offline event")
        stranger_onlines = len([e for e in po.events("presence")
                                if is_presence(stranger.id, "online")(e)])
        # both come online together; w hears of u only
        t_req = time.monotonic()
        assert stranger.get("/v1/me").status == 200
        assert u.get("/v1/me").status == 200
        watch.wait_for(is_presence(u.id, "online"), 1 + SLACK, "u's online event", after=t_req)
        # stranger's change was published too (to other), just not to w
        po.wait_count(is_presence(stranger.id, "online"), stranger_onlines + 1, 1 + SLACK,
                      "online events of stranger")
        watch.wait_for(is_presence(u.id, "offline"), WINDOW + SLACK, "u's offline event",
                       after=t_req)
        # Proving a negative: an event about stranger, published with u's
        # changes, would have come by now.
        time.sleep(0.5)
    finally:
        stop_pollers(po)
        watch.stop()
    assert not po.errors, po.errors
    for dev in watch.events(lambda e: e["type"] == "presence"):
        assert all(e["user_id"] == u.id for _, e in dev), dev
    assert str(stranger.id) not in presence_of(w, stranger.id)


# --------------------------------------------------------------------------
# Typing
# --------------------------------------------------------------------------

def test_typing_reaches_the_other_members_parked_poll(server, new_users):
    alice, bob, carol = new_users(3)
    alice2 = alice.device("other")
    g = alice.group(bob, carol, title="typing")["id"]
    pa2, pc = Poller(alice2), Poller(carol)
    try:
        cb = inbox_cursor(bob)
        poll = ParkedPoll(bob, cb, timeout=20,
                          until=lambda evs: any(e["type"] in ("typing",) + DURABLE_TYPES
                                                for e in evs))
        poll.wait_parked(0.5)
        t0 = time.monotonic()
        r = alice.post(f"/v1/threads/{g}/typing")
        assert r.status == 204 and r.text == "", r
        poll.join(40)
        assert poll.started < t0 and poll.answered_at - t0 < 10
        body = poll.r.body
        assert poll.r.status == 200, poll.r
        typing = [e for e in body["events"] if e["type"] == "typing"]
        assert typing == [{"type": "typing", "thread_id": g, "user_id": alice.id}], body
        assert not [e for e in body["events"] if e["type"] in DURABLE_TYPES], body
        assert body["next"] == cb, "a typing event moved the cursor"
        pc.wait_for(lambda e: e == {"type": "typing", "thread_id": g, "user_id": alice.id},
                    what="the typing event")
        # the typer's own devices do not get it: the message after it comes, the typing not
        m = alice.say(g, "typed")
        pa2.wait_for(lambda e: e["type"] == "message" and e["message"]["seq"] == m["seq"])
        # Proving a negative: a second typing event to carol would come by now.
        time.sleep(0.3)
    finally:
        stop_pollers(pa2, pc)
    assert not pa2.events("typing"), pa2.events("typing")
    assert len(pc.events("typing")) == 1, "typing came twice"


def test_typing_reaches_a_poll_that_comes_just_after_once(server, new_users):
    alice, bob = new_users(2)
    t = alice.direct(bob)["id"]
    cb = inbox_cursor(bob)  # a poll without since: nothing stays registered
    assert alice.post(f"/v1/threads/{t}/typing").status == 204  # published when answered
    # The point: bob's poll comes only after the event was published, while
    # bob had no poll (the hub keeps it a few seconds for such polls).
    time.sleep(0.5)
    t0 = time.monotonic()
    r = inbox(bob, cb, timeout=10)
    assert r.status == 200, r
    assert time.monotonic() - t0 < 5, "the queued typing event did not answer at once"
    assert [e for e in r.body["events"] if e["type"] == "typing"] == \
        [{"type": "typing", "thread_id": t, "user_id": alice.id}]
    assert r.body["next"] == cb
    # not replayed to the same device
    r = inbox(bob, cb, timeout=1)
    assert r.status == 200 and not [e for e in r.body["events"] if e["type"] == "typing"], r


def test_typing_by_a_non_member_is_404(server, new_users):
    alice, bob, carol = new_users(3)
    t = alice.direct(bob)["id"]
    cb = inbox_cursor(bob)
    problem(carol.post(f"/v1/threads/{t}/typing"), 404, "not_found")
    problem(carol.post("/v1/threads/999999999/typing"), 404, "not_found")
    problem(Client(server).post(f"/v1/threads/{t}/typing"),
            401, "unauthorized")
    r = inbox(bob, cb, timeout=1)
    assert r.status == 200 and not [e for e in r.body["events"] if e["type"] == "typing"], r
