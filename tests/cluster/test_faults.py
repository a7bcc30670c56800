"""test_faults.py — the cluster survives its faults (`make test-cluster`).

One cluster (3 Galera nodes, Redis, 3 chatd, nginx sticky by token) for the
module, started with a short presence window (CHAT_PRESENCE_WINDOW_S, passed
through scripts/cluster.sh to every chatd). Each fault happens under the
mixed load of load.py through nginx, and each ends with the verdict all
zeros (no acknowledged message lost, none duplicated, none out of order, no
gap in any thread's history) and more than a handful of acknowledged
messages:

  a. kill -9 of a chatd (c1: the first node, which also takes the janitor's
     lease at start-up), restarted later;
  b. kill -9 of the Galera writer g1; it rejoins (cluster size 3, g1
     Synced); then kill -9 of the new writer (g2: where the chatd
     connections are): the chatd nodes move on again (sends keep being
     acknowledged, their connections are on a live node);
  c. kill -9 of a Galera standby (g3), restarted;
  d. kill -9 of Redis: the load goes on (delivery across nodes through the
     database), every node's /readyz says bus false within a few seconds;
     Redis restarted: every node says bus true again by itself, and a
     message across nodes is carried by the bus again (its wake counter
     grows, no node's reconcile counter moves in a quiet period); a logout
     while the bus is down reaches another node's cache within 2 s;
  d2. the same without load: Redis restarted while nothing happens (every
     chatd thread's Redis connection stale), then messages across nodes
     must be carried by the bus again, not all wait for the database check;
  e. SIGSTOP of a chatd for 10 s, then SIGCONT: the other nodes' devices are
     served meanwhile, requests stuck on the stopped node finish after CONT;
     e2 (xfail, strict) records that nginx does not route new requests
     around the stopped node: they wait for the CONT;
  f. presence is one truth: a user with one device on c1 and one on c3 is
     online through every node; when one device stops, the user stays online
     (no offline event to a watcher); when both stop, exactly one offline
     event reaches the watcher.

Every test leaves the cluster whole (the autouse fixture restarts whatever a
failed test left down), so the tests are independent. After the module the
cluster is shut down and the chatd logs must hold no sanitizer report.
Only 127.0.0.1; every wait is bounded.
"""

import subprocess
import threading
import time

import pytest

from cluster import PARTS, Cluster
from load import Load, call, metric, until_ok

PRESENCE_WINDOW_S = 6
CHATDS = ("c1", "c2", "c3")
GALERAS = ("g1", "g2", "g3")


@pytest.fixture(scope="module")
def cluster():
    t0 = time.monotonic()
    with Cluster(env={"CHAT_PRESENCE_WINDOW_S": str(PRESENCE_WINDOW_S)}) as c:
        c.up()
        print(f"\ncluster up in {time.monotonic() - t0:.1f} s ({c.dir})")
        yield c
        c.down()  # first: LeakSanitizer reports come at exit
        reports = c.sanitizer_reports()
        assert not reports, f"sanitizer reports in chatd logs: {reports}"
    print(f"cluster module total {time.monotonic() - t0:.1f} s")


@pytest.fixture(autouse=True)
def whole(cluster):
    """Before and after each test: every part runs, Galera is one primary
    component of three Synced nodes, every chatd is ready and on the bus."""
    restore(cluster)
    t0 = time.monotonic()
    yield
    t1 = time.monotonic()
    restore(cluster)
    print(f"  (test {t1 - t0:.1f} s, then restored in {time.monotonic() - t1:.1f} s)")


# -- helpers -----------------------------------------------------------------

def wait_for(pred, timeout, what, every=0.2):
    """Calls pred() until it is truthy; returns (its value, seconds waited)."""
    t0 = time.monotonic()
    last = None
    while True:
        try:
            last = pred()
        except Exception as ex:  # a node not answering yet
            last = ex
        if last and not isinstance(last, Exception):
            return last, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")
        time.sleep(every)


def metrics(c, name):
    return {n: metric(c.chatd_urls[n], name) for n in CHATDS}


def bus(c, node):
    """The bus flag of node's /readyz, or None when it does not answer 200."""
    st, b = call(c.chatd_urls[node], "GET", "/readyz", timeout=5)
    return b["node"]["bus"] if st == 200 else None


def galera_whole(c):
    """True when g1..g3 are Synced members of one primary component of 3."""
    for g in GALERAS:
        w = c.wsrep(g)
        if (w.get("wsrep_cluster_size"), w.get("wsrep_local_state_comment"),
                w.get("wsrep_cluster_status"), w.get("wsrep_ready")) != ("3", "Synced", "Primary", "ON"):
            return False
    return True


def chatd_connections(c):
    """Connections of the chatd nodes per Galera node (ours left out); a
    dead node shows None. All chatd write through one node at a time."""
    out = {}
    for g in GALERAS:
        try:
            out[g] = int(c.sql(g, "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                                  "WHERE USER = 'chat' AND ID <> CONNECTION_ID()", timeout=15)[0][0])
        except Exception:
            out[g] = None
    return out


def part_states(c):
    """{part: 'down' | 'stopped' | 'up'} from cluster.sh status."""
    states = {}
    for line in c.status().splitlines():
        f = line.split()
        if f and f[0] in PARTS:
            states[f[0]] = "down" if f[-1] == "down" else "stopped" if line.endswith("(stopped)") else "up"
    return states


def restore(c):
    """Brings back whatever is stopped or down, then waits for a whole
    cluster (bounded)."""
    states = part_states(c)
    for name in PARTS:  # g1 g2 g3 redis c1 c2 c3 nginx: the order of a start
        if states.get(name) == "stopped":
            print(f"  restore: SIGCONT {name}")
            c.cont(name)
    for name in PARTS:
        if states.get(name) == "down":
            print(f"  restore: restarting {name}")
            c.restart(name)
    wait_for(lambda: galera_whole(c), 240, "Galera back to 3 Synced nodes")
    wait_for(lambda: all(bus(c, n) is True for n in CHATDS), 60, "every chatd ready and on the bus")


def acked(load):
    with load.lock:
        return sum(len(a) for a in load.acked.values())


def start_load(c, users=4, rate=5):
    t0 = time.monotonic()
    entry = c.nginx_url
    load = Load(entry, [entry], users=users)
    load.start(rate_per_sender=rate)
    print(f"  load of {users} users (two devices each) through nginx started in "
          f"{time.monotonic() - t0:.1f} s")
    return load


def abandon(load):
    """Stops a load without a verdict (the test failed already)."""
    load.stop.set()
    for d in load.devices:
        d.stop.set()


def finish_and_judge(load, what, min_acked=30):
    t0 = time.monotonic()
    # Every device's last poll ends at once (Load.finish ends them one after
    # the other: up to 5 s each), then each reads its stream to the end.
    load.stop.set()
    for d in load.devices:
        d.stop.set()
    load.finish()
    v = load.verdict()
    print(f"  verdict ({what}), read in {time.monotonic() - t0:.1f} s: {v}")
    assert v["acked"] > min_acked, v
    assert (v["lost"], v["duplicated"], v["out_of_order"], v["gaps"]) == (0, 0, 0, []), v
    return v


def acks_grow(load, seconds, what, at_least=3):
    """Waits seconds and asserts that sends were acknowledged meanwhile."""
    a0 = acked(load)
    time.sleep(seconds)
    got = acked(load) - a0
    print(f"  {what}: {got} messages acknowledged in {seconds} s")
    assert got >= at_least, f"{what}: only {got} messages acknowledged in {seconds} s"
    return got


def user(base, tag):
    """A fresh user logged in through base: (id, token)."""
    name = "f" + tag + str(time.monotonic_ns() % 10**9)
    until_ok(lambda: (lambda r: (201, r[1]) if r[0] in (201, 409) else r)(
        call(base, "POST", "/v1/users", {"username": name, "password": "password123-long-enough"})), "register")
    return name, login(base, name)


def login(base, name, device="d"):
    st, b = until_ok(lambda: call(base, "POST", "/v1/sessions",
                                  {"username": name, "password": "password123-long-enough",
                                   "device_name": device}), "login")
    return b["user"]["id"], b["token"]


class Poller:
    """One device long-polling its inbox on one node in a thread; keeps every
    event with its arrival time."""

    def __init__(self, base, token, timeout=5):
        self.base, self.token, self.timeout = base, token, timeout
        st, b = until_ok(lambda: call(base, "GET", "/v1/inbox", token=token), "inbox head")
        self.cursor = b["next"]
        self.events = []  # (monotonic time, event)
        self.errors = 0
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_ev.is_set():
            st, b = call(self.base, "GET", f"/v1/inbox?since={self.cursor}&timeout={self.timeout}",
                         token=self.token, timeout=self.timeout + 15)
            if st != 200:
                self.errors += 1
                time.sleep(0.2)
                continue
            now = time.monotonic()
            with self.lock:
                self.events += [(now, e) for e in b["events"]]
            self.cursor = b["next"]

    def stop(self):
        """Stops polling; returns once the last poll has ended."""
        self.stop_ev.set()
        self.thread.join(self.timeout + 20)
        assert not self.thread.is_alive(), "a poller did not end"

    def presence_of(self, uid, since=0.0):
        with self.lock:
            return [(t, e["state"]) for t, e in self.events
                    if e.get("type") == "presence" and e.get("user_id") == uid and t >= since]


# -- the faults ----------------------------------------------------------------

def test_a_kill9_chatd_under_load(cluster):
    c = cluster
    lease = _janitor_lease(c)
    load = start_load(c)
    try:
        time.sleep(4)
        c.kill("c1")
        print(f"  killed c1 (janitor lease was on {lease})")
        acks_grow(load, 8, "with c1 dead")
        t0 = time.monotonic()
        c.restart("c1")
        print(f"  c1 back in {time.monotonic() - t0:.1f} s")
        acks_grow(load, 4, "after c1's restart")
    except BaseException:
        abandon(load)
        raise
    finish_and_judge(load, "kill -9 c1")
    print(f"  janitor lease now on {_janitor_lease(c)}")


def test_b_kill9_galera_writer_then_the_next_one(cluster):
    c = cluster
    print(f"  chatd connections per Galera node: {chatd_connections(c)}")
    load = start_load(c)
    try:
        time.sleep(4)
        c.kill("g1")
        print("  killed g1 (the writer)")
        acks_grow(load, 10, "with g1 dead")
        conns = chatd_connections(c)
        print(f"  chatd connections per Galera node: {conns}")
        t0 = time.monotonic()
        c.restart("g1")  # returns once g1 is Synced (IST from its position)
        print(f"  g1 rejoined in {time.monotonic() - t0:.1f} s")
        _, took = wait_for(lambda: galera_whole(c), 120, "g1 rejoined: size 3, all Synced")
        sizes = {g: c.wsrep(g)["wsrep_cluster_size"] for g in GALERAS}
        states = {g: c.wsrep(g)["wsrep_local_state_comment"] for g in GALERAS}
        print(f"  after the rejoin: sizes {sizes}, states {states}")
        assert sizes == {"g1": "3", "g2": "3", "g3": "3"} and states["g1"] == "Synced"
        conns = chatd_connections(c)
        print(f"  chatd connections per Galera node: {conns}")
        # The writer now: where the chatd connections are (they stay on the
        # node they moved to; the list order only decides the next move).
        writer = max(GALERAS, key=lambda g: conns[g] or 0)
        print(f"  the writer now: {writer}")
        acks_grow(load, 3, "after g1's rejoin")
        c.kill(writer)
        print(f"  killed {writer} (the new writer)")
        acks_grow(load, 12, f"with {writer} dead")
        conns = chatd_connections(c)
        print(f"  chatd connections per Galera node: {conns}")
        assert conns[writer] is None and any(conns[g] for g in GALERAS if g != writer), conns
    except BaseException:
        abandon(load)
        raise
    finish_and_judge(load, "kill -9 g1, rejoin, kill -9 the next writer")
    t0 = time.monotonic()
    c.restart(writer)
    print(f"  {writer} rejoined in {time.monotonic() - t0:.1f} s")


def test_c_kill9_galera_standby(cluster):
    c = cluster
    load = start_load(c)
    try:
        time.sleep(4)
        c.kill("g3")
        print("  killed g3 (a standby)")
        acks_grow(load, 6, "with g3 dead")
        t0 = time.monotonic()
        c.restart("g3")
        print(f"  g3 rejoined in {time.monotonic() - t0:.1f} s")
        wait_for(lambda: galera_whole(c), 120, "g3 rejoined: size 3, all Synced")
        acks_grow(load, 3, "after g3's rejoin")
    except BaseException:
        abandon(load)
        raise
    finish_and_judge(load, "kill -9 g3")


def test_d_kill9_redis(cluster):
    c = cluster
    assert metrics(c, "chatd_cluster_bus_up") == {"c1": 1, "c2": 1, "c3": 1}
    load = start_load(c)
    try:
        time.sleep(4)
        rec0 = metrics(c, "chatd_cluster_reconcile_wakes_total")
        c.kill("redis")
        t_kill = time.monotonic()
        _, took = wait_for(lambda: all(bus(c, n) is False for n in CHATDS), 10,
                           "every chatd says bus false")
        print(f"  killed redis: every /readyz says bus false after {took:.1f} s")
        assert metrics(c, "chatd_cluster_bus_up") == {"c1": 0, "c2": 0, "c3": 0}
        logout_while_degraded(c)
        acks_grow(load, 6, "without redis")
        rec1 = metrics(c, "chatd_cluster_reconcile_wakes_total")
        print(f"  reconcile wakes during the outage: "
              f"{ {n: rec1[n] - rec0[n] for n in CHATDS} }")
        assert sum(rec1.values()) > sum(rec0.values()), "nothing went through the database"
        c.restart("redis")
        t_back = time.monotonic()
        _, took = wait_for(lambda: all(bus(c, n) is True for n in CHATDS), 30,
                           "every chatd says bus true again")
        print(f"  redis back ({t_back - t_kill:.1f} s after the kill): every /readyz says bus "
              f"true after {took:.1f} s")
        assert metrics(c, "chatd_cluster_bus_up") == {"c1": 1, "c2": 1, "c3": 1}
        acks_grow(load, 4, "after redis came back")
    except BaseException:
        abandon(load)
        raise
    finish_and_judge(load, "kill -9 redis, restart")
    # A healthy period: a message across nodes wakes a poll through the bus.
    wake_across_nodes(c, "c1", "c3")
    wake_across_nodes(c, "c3", "c2")


def logout_while_degraded(c):
    """Without the bus no logout is broadcast: another node that cached the
    session must refuse the token within its degraded cache time (2 s)."""
    c1, c2 = c.chatd_urls["c1"], c.chatd_urls["c2"]
    _, (uid, tok) = user(c1, "o")
    assert call(c2, "GET", "/v1/me", token=tok)[0] == 200  # c2 caches the session
    assert call(c1, "DELETE", "/v1/sessions/current", token=tok)[0] == 204
    t0 = time.monotonic()
    _, took = wait_for(lambda: call(c2, "GET", "/v1/me", token=tok)[0] == 401, 6,
                       "c2 refuses a token logged out on c1 while the bus is down")
    print(f"  a logout on c1 without the bus: c2 refuses the token after {took:.1f} s")


def wake_across_nodes(c, src, dst):
    """A message sent through src wakes a poll parked on dst, carried by the
    bus: dst counts a wake, no node counts a reconcile wake, fast."""
    s_url, d_url = c.chatd_urls[src], c.chatd_urls[dst]
    _, (a, ta) = user(s_url, "a")
    _, (b, tb) = user(d_url, "b")
    st, t = until_ok(lambda: call(s_url, "POST", "/v1/threads", {"member_ids": [b]}, token=ta), "thread")
    p = Poller(d_url, tb, timeout=20)
    time.sleep(1.5)  # parked, after the thread event
    wakes0 = metric(d_url, "chatd_cluster_wakes_received_total")
    rec0 = metrics(c, "chatd_cluster_reconcile_wakes_total")
    sent = time.monotonic()
    st, m = call(s_url, "POST", f"/v1/threads/{t['thread']['id']}/messages",
                 {"client_msg_id": "probe", "body": "across"}, token=ta)
    assert st == 201, (st, m)

    def arrived():
        with p.lock:
            return [at for at, e in p.events if e.get("type") == "message"]
    (at, *_), _ = wait_for(arrived, 15, f"the message from {src} reaches the poll on {dst}", every=0.05)
    time.sleep(0.5)
    wakes1 = metric(d_url, "chatd_cluster_wakes_received_total")
    rec1 = metrics(c, "chatd_cluster_reconcile_wakes_total")
    p.stop_ev.set()
    print(f"  {src} -> {dst}: delivered in {at - sent:.2f} s; {dst} wakes "
          f"{wakes0} -> {wakes1}; reconcile wakes {rec0} -> {rec1}")
    assert wakes1 > wakes0, "the bus did not carry the wake"
    assert rec1 == rec0, "the database check woke a poll while the bus works"
    assert at - sent < 3, "too slow for the bus"


def test_d2_bus_carries_wakes_again_after_a_redis_restart_in_a_quiet_period(cluster):
    """Redis restarted while nothing happens: every chatd thread's Redis
    connection is then stale, and is found dead at its first use. A user
    polling on c3 and a sender on c1: after the restart the bus must carry
    the wakes again (a first hint may be lost: latency), not leave c3 out of
    the user's routes (every message then waits for the 5 s database
    check)."""
    c = cluster
    c1, c3 = c.chatd_urls["c1"], c.chatd_urls["c3"]
    _, (a, ta) = user(c1, "a")
    _, (b, tb) = user(c3, "b")
    st, t = until_ok(lambda: call(c1, "POST", "/v1/threads", {"member_ids": [b]}, token=ta), "thread")
    tid = t["thread"]["id"]
    p = Poller(c3, tb, timeout=20)
    k = [0]

    def send():
        """One message c1 -> b; returns (seconds to arrive on c3, carried by the bus)."""
        with p.lock:
            have = sum(1 for _, e in p.events if e.get("type") == "message")
        w0 = metric(c3, "chatd_cluster_wakes_received_total")
        r0 = metric(c3, "chatd_cluster_reconcile_wakes_total")
        k[0] += 1
        t0 = time.monotonic()
        st, m = call(c1, "POST", f"/v1/threads/{tid}/messages",
                     {"client_msg_id": f"q{k[0]}", "body": "quiet"}, token=ta)
        assert st == 201, (st, m)

        def arrived():
            with p.lock:
                return [at for at, e in p.events if e.get("type") == "message"][have:]
        (at, *_), _ = wait_for(arrived, 15, "the message reaches the poll on c3", every=0.02)
        time.sleep(0.2)
        w1 = metric(c3, "chatd_cluster_wakes_received_total")
        r1 = metric(c3, "chatd_cluster_reconcile_wakes_total")
        return round(at - t0, 2), w1 > w0 and r1 == r0

    try:
        time.sleep(1.5)
        before = [send() for _ in range(2)]
        c.kill("redis")
        wait_for(lambda: all(bus(c, n) is False for n in CHATDS), 10, "every chatd says bus false")
        c.restart("redis")
        wait_for(lambda: all(bus(c, n) is True for n in CHATDS), 30, "every chatd says bus true")
        after = []
        for _ in range(5):
            after.append(send())
            time.sleep(0.5)
        print(f"  c1 -> c3, (seconds, by the bus): before the restart {before}, after {after}")
        assert all(bus_ for _, bus_ in before), before
        assert all(bus_ for _, bus_ in after[-3:]), \
            f"after a Redis restart the bus no longer carries wakes to c3: {after}"
    finally:
        p.stop_ev.set()


# What test_e saw through nginx while a chatd was stopped (for test_e2).
STOPPED_NODE_PROBES = {}


def test_e_sigstop_chatd(cluster):
    c = cluster
    load = start_load(c)
    victim = "c3"
    # During the stop, one GET /v1/me through nginx per device of the load
    # (nginx picks the node by the token), and some without a token (a new
    # client: nginx picks by $request_id): which answer at once, which wait
    # for the CONT.
    toks = [tok for u in load.users for tok, _ in u["tokens"]] + [None] * 6
    probes = []

    def probe(tok):
        t0 = time.monotonic()
        st, _ = call(c.nginx_url, "GET", "/v1/me", token=tok, timeout=60)
        probes.append((time.monotonic() - t0, st, tok is not None))

    try:
        time.sleep(4)
        c.stop(victim)
        t_stop = time.monotonic()
        print(f"  SIGSTOP {victim}")
        time.sleep(1)
        ths = [threading.Thread(target=probe, args=(tok,), daemon=True) for tok in toks]
        for th in ths:
            th.start()
        a0 = acked(load)
        time.sleep(9)
        during = acked(load) - a0
        c.cont(victim)
        t_cont = time.monotonic()
        print(f"  SIGCONT {victim} after {t_cont - t_stop:.1f} s; {during} messages acknowledged "
              f"in the last 9 s of the stop")
        for th in ths:
            th.join(45)
        fast = [p for p in probes if p[0] < 3]
        slow = [p for p in probes if p[0] >= 3]
        print(f"  probes through nginx during the stop: {len(fast)} answered at once, "
              f"{len(slow)} waited for the CONT: "
              f"{[(round(d, 1), st, 'token' if t else 'no token') for d, st, t in slow]}")
        STOPPED_NODE_PROBES.update(fast=fast, slow=slow)
        assert len(probes) == len(toks), probes
        assert all(st == (200 if t else 401) for _, st, t in probes), probes
        assert any(t for _, _, t in fast), "no device was served while one node was stopped"
        assert during > 0, "nothing was acknowledged while one node was stopped"
        acks_grow(load, 4, f"after {victim}'s CONT")
    except BaseException:
        abandon(load)
        c.cont(victim)
        raise
    finish_and_judge(load, f"SIGSTOP {victim} 10 s")


@pytest.mark.xfail(strict=True, reason=(
    "nginx (open source, passive checks only) does not route around a hung chatd: the "
    "kernel still completes TCP handshakes on the stopped node's listening socket, so "
    "proxy_connect_timeout (5 s) never fires, and proxy_read_timeout (30 s; 75 s for "
    "/v1/inbox) is longer than the hang; every request hashed to that node waits for "
    "the SIGCONT"))
def test_e2_nginx_routes_new_requests_around_a_stopped_chatd():
    if not STOPPED_NODE_PROBES:
        pytest.skip("test_e_sigstop_chatd did not record its probes")
    slow = STOPPED_NODE_PROBES["slow"]
    assert not slow, f"{len(slow)} requests through nginx waited for the stopped node: {slow}"


def test_f_presence_is_one_truth(cluster):
    c = cluster
    W = PRESENCE_WINDOW_S
    urls = c.chatd_urls
    name, (u, tok_a) = user(urls["c1"], "p")
    _, tok_b = login(urls["c3"], name, "second")
    _, (w, tok_w) = user(urls["c2"], "w")
    until_ok(lambda: call(urls["c2"], "POST", "/v1/threads", {"member_ids": [u]}, token=tok_w), "thread")

    def state_everywhere():
        out = {}
        for n in CHATDS:
            st, b = call(urls[n], "GET", f"/v1/presence?user_ids={u}", token=tok_w)
            assert st == 200, (n, st, b)
            out[n] = b["presence"][str(u)]["state"]
        return out

    watcher = Poller(urls["c2"], tok_w)
    dev_a = Poller(urls["c1"], tok_a)
    dev_b = Poller(urls["c3"], tok_b)
    try:
        wait_for(lambda: set(state_everywhere().values()) == {"online"}, 10,
                 "online through every node")
        t_online = time.monotonic()
        print(f"  u{u} polls on c1 and c3: {state_everywhere()}; watcher (c2) got "
              f"{[s for _, s in watcher.presence_of(u)]}")
        dev_b.stop()
        t_b = time.monotonic()
        seen = set()
        while time.monotonic() - t_b < 2.5 * W:  # well past a window since c3's last poll
            seen |= {f"{n}:{s}" for n, s in state_everywhere().items()}
            time.sleep(0.5)
        flap = watcher.presence_of(u, since=t_online)
        print(f"  c3's device stopped {2.5 * W:.0f} s ago: states seen {sorted(seen)}; "
              f"watcher events since {flap}")
        assert seen == {"c1:online", "c2:online", "c3:online"}, seen
        assert flap == [], "a presence change was published while a device still polls"
        dev_a.stop()
        t_a = time.monotonic()
        wait_for(lambda: [s for _, s in watcher.presence_of(u, since=t_online) if s == "offline"],
                 W + 15, "an offline event at the watcher")
        t_off = time.monotonic()
        time.sleep(3)  # a second one would come now
        changes = [s for _, s in watcher.presence_of(u, since=t_online)]
        final = state_everywhere()
        print(f"  both devices stopped: offline after {t_off - t_a:.1f} s (window {W} s); "
              f"watcher events {changes}; states {final}")
        assert changes == ["offline"], changes
        assert final == {"c1": "offline", "c2": "offline", "c3": "offline"}, final
    finally:
        for p in (watcher, dev_a, dev_b):
            p.stop_ev.set()


def _janitor_lease(c):
    """The node holding the janitor's lease in Redis (or None)."""
    r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(c.redis_port), "GET",
                        "chatd:lock:janitor"], capture_output=True, text=True, timeout=10)
    return r.stdout.strip() or None
