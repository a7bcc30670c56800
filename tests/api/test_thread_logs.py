"""Big groups read from the group's log (docs/delivery.md, step c).

A chatd with CHAT_STREAM_COPY_MAX=3: groups of up to three members get each
message copied into every member's stream; the first send into a bigger
group switches it to its log (one thread_log row per message, read by each
member through its membership interval). The tests check, against the API
and the database:

- the switch: messages before it stay copied, after it are one log row, and
  every device reads one stream, in order, whichever way it reads it (a poll
  woken from the in-memory tails, a read from the database, after a
  restart);
- membership intervals: a member who joins reads nothing from before, one
  who leaves keeps what came before and nothing after, one who comes back
  reads from the return on;
- cursors: every `next` a device was given reads on to the same rest of the
  stream; a cursor past the end answers 410;
- acknowledgements of log events move delivered receipts, and the sender
  hears of them.
"""
import subprocess
import threading

import pytest

from conftest import env_server, inbox, inbox_cursor, make_user, metric, problem

COPY_MAX = 3


@pytest.fixture(scope="module")
def logs_server(db):
    with env_server(db, "logs-", {"CHAT_STREAM_COPY_MAX": str(COPY_MAX)}) as s:
        yield s


def sql(db, query):
    r = subprocess.run(["mariadb", "-uroot", "-S", db.socket, "-N", "-B", "chat_test", "-e",
                        query], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [line.split("\t") for line in r.stdout.splitlines()]


def users(server, n):
    us = [make_user(server) for _ in range(n)]
    for u in us:
        u.known_by(*[o for o in us if o is not u])
    return us


def drain(user, cursor, limit=None):
    """Every durable event after cursor, read page by page with timeout=0;
    returns (events, the cursor after them, every cursor given on the way)."""
    events, cursors = [], []
    while True:
        r = inbox(user, cursor, timeout=0, limit=limit)
        assert r.status == 200, r
        got = [e for e in r.body["events"] if e["type"] != "typing" and e["type"] != "presence"]
        events.extend(got)
        if r.body["next"] == cursor and not got:
            return events, cursor, cursors
        cursor = r.body["next"]
        cursors.append(cursor)


def wait_durable(user, cursor):
    """Long polls from cursor until one answers durable events (presence
    wakes a poll too); returns that answer."""
    for _ in range(10):
        r = inbox(user, cursor, timeout=20)
        assert r.status == 200, r
        if any(e["type"] not in ("typing", "presence") for e in r.body["events"]):
            return r
        cursor = r.body["next"]
    raise AssertionError("no durable event came")


def messages(events, tid):
    return [e["message"]["seq"] for e in events
            if e["type"] == "message" and e["message"]["thread_id"] == tid]


def is_logged(db, tid):
    return sql(db, f"SELECT logged FROM threads WHERE id = {tid}") == [["1"]]


def log_seqs(db, tid):
    return [int(r[0]) for r in sql(db, f"SELECT seq FROM thread_log WHERE thread_id = {tid} "
                                       "ORDER BY pos")]


def copied_seqs(db, tid):
    return sorted({int(r[0]) for r in sql(
        db, f"SELECT seq FROM user_events WHERE thread_id = {tid} AND type = 1")})


def test_a_group_switches_to_its_log_and_every_device_reads_one_stream(logs_server, db):
    a, b, c, d = users(logs_server, 4)
    a2 = a.device()
    start = {u.id: inbox_cursor(u) for u in (a, b, c, d)}
    start_a2 = inbox_cursor(a2)
    tid = a.group(b, c)["id"]
    a.say(tid, "copied")                    # 3 members: copied to each stream
    assert not is_logged(db, tid)
    assert copied_seqs(db, tid) == [1] and log_seqs(db, tid) == []

    st, body = a.post(f"/v1/threads/{tid}/members", {"user_ids": [d.id]})
    assert st == 200, body
    # d parks a poll now: the next message wakes it from the tails.
    woken = {}
    at_d = drain(d, start[d.id])[1]
    hits = metric(logs_server, "chatd_tail_reads_total")
    t = threading.Thread(target=lambda: woken.update(r=wait_durable(d, at_d)))
    t.start()
    b.say(tid, "logged")                    # 4 members: the switch
    t.join(30)
    assert is_logged(db, tid)
    assert log_seqs(db, tid) == [2] and copied_seqs(db, tid) == [1]
    assert woken["r"].status == 200
    assert messages(woken["r"].body["events"], tid) == [2], woken["r"].body
    # the woken poll read it from the tails: the log event was linked into
    # d's stream after the commit
    assert metric(logs_server, "chatd_tail_reads_total") > hits
    c.say(tid, "logged too")
    assert log_seqs(db, tid) == [2, 3]

    for u, expect in ((a, [1, 2, 3]), (b, [1, 2, 3]), (c, [1, 2, 3]), (d, [2, 3])):
        events, end, cursors = drain(u, start[u.id], limit=1)
        assert messages(events, tid) == expect, (u, events)
        # every cursor given on the way reads on to the same rest
        for i, cur in enumerate(cursors[:-1]):
            rest = drain(u, cur)[0]
            assert rest == events[i + 1:], (u, i)
        # a cursor past the end is not one of this stream's
        assert problem(inbox(u, str(int(end) + 1000), timeout=0), 410)
    # both of a's devices read the same stream
    assert drain(a2, start_a2)[0] == drain(a, start[a.id])[0]

    # and the same after a restart (no tails: everything from the database)
    before = {u.id: drain(u, start[u.id])[0] for u in (a, b, c, d)}
    logs_server.restart()
    for u in (a, b, c, d):
        assert drain(u, start[u.id])[0] == before[u.id]


def test_membership_intervals(logs_server, db):
    a, b, c, d, e = users(logs_server, 5)
    start = {u.id: inbox_cursor(u) for u in (a, b, c, d, e)}
    tid = a.group(b, c, d)["id"]
    a.say(tid, "one")                       # 4 members: logged from the first send
    assert is_logged(db, tid) and log_seqs(db, tid) == [1]
    st, body = b.delete(f"/v1/threads/{tid}/members/{b.id}")   # b leaves
    assert st == 204, body
    a.say(tid, "two")
    st, body = a.post(f"/v1/threads/{tid}/members", {"user_ids": [e.id]})
    assert st == 200, body
    a.say(tid, "three")
    st, body = a.post(f"/v1/threads/{tid}/members", {"user_ids": [b.id]})  # b comes back
    assert st == 200, body
    a.say(tid, "four")
    assert log_seqs(db, tid) == [1, 2, 3, 4] and copied_seqs(db, tid) == []

    expect = {a.id: [1, 2, 3, 4], b.id: [1, 4], c.id: [1, 2, 3, 4], d.id: [1, 2, 3, 4],
              e.id: [3, 4]}
    for u in (a, b, c, d, e):
        events, _, cursors = drain(u, start[u.id], limit=1)
        assert messages(events, tid) == expect[u.id], u
        for i, cur in enumerate(cursors[:-1]):
            assert drain(u, cur)[0] == events[i + 1:], (u, i)
    # b's thread events tell it left and came back, around the messages
    events = drain(b, start[b.id])[0]
    kinds = [(ev["type"], ev["message"]["seq"] if ev["type"] == "message" else None)
             for ev in events if ev["type"] in ("message", "thread")]
    assert kinds.index(("message", 1)) < kinds.index(("message", 4))
    # the history itself is whole for those in it
    assert sorted(m["seq"] for m in a.history(tid)["messages"]) == [1, 2, 3, 4]


def test_acknowledging_log_events_moves_delivered_receipts(logs_server, db):
    a, b, c, d = users(logs_server, 4)
    cur = {u.id: inbox_cursor(u) for u in (a, b, c, d)}
    tid = a.group(b, c, d)["id"]
    a.say(tid, "m1")
    a.say(tid, "m2")
    assert log_seqs(db, tid) == [1, 2]
    for u in (b, c):
        events, end, _ = drain(u, cur[u.id])
        assert messages(events, tid) == [1, 2]
        r = inbox(u, end, timeout=0)        # acknowledges everything before end
        assert r.status == 200, r
    rec = a.receipts(tid)
    assert rec[b.id]["delivered_seq"] == 2 and rec[c.id]["delivered_seq"] == 2
    assert rec[d.id]["delivered_seq"] == 0  # d never polled
    # the sender heard of both deliveries
    seen = [(ev["user_id"], ev["delivered_seq"]) for ev in drain(a, cur[a.id])[0]
            if ev["type"] == "receipt" and ev["thread_id"] == tid]
    assert (b.id, 2) in seen and (c.id, 2) in seen
    assert all(uid != d.id for uid, _ in seen)


def test_a_user_outside_the_group_reads_nothing_of_it(logs_server, db):
    a, b, c, d, x = users(logs_server, 5)
    cx = inbox_cursor(x)
    tid = a.group(b, c, d)["id"]
    a.say(tid, "not for x")
    assert is_logged(db, tid)
    events = drain(x, cx)[0]
    assert all(ev.get("thread_id") != tid and
               (ev.get("message") or {}).get("thread_id") != tid and
               (ev.get("thread") or {}).get("id") != tid for ev in events)
    assert problem(x.get(f"/v1/threads/{tid}/messages"), 404)


def log_types(db, tid):
    return [int(r[0]) for r in sql(db, f"SELECT type FROM thread_log WHERE thread_id = {tid} "
                                       "ORDER BY pos")]


def test_edits_deletions_and_reactions_in_a_logged_group_are_one_log_row_each(logs_server, db):
    a, b, c, d, e = users(logs_server, 5)
    start = {u.id: inbox_cursor(u) for u in (a, b, c, d, e)}
    tid = a.group(b, c, d)["id"]
    m1 = a.say(tid, "first")
    m2 = a.say(tid, "second")
    copies = sql(db, f"SELECT COUNT(*) FROM user_events WHERE thread_id = {tid} AND type <> 2")
    assert a.patch(f"/v1/threads/{tid}/messages/{m1['seq']}", {"body": "first, edited"}).status == 200
    assert b.put(f"/v1/threads/{tid}/messages/{m1['seq']}/reactions/%F0%9F%91%8D").status == 204
    st, body = b.delete(f"/v1/threads/{tid}/members/{b.id}")            # b leaves
    assert st == 204, body
    assert a.delete(f"/v1/threads/{tid}/messages/{m2['seq']}").status == 204
    assert c.put(f"/v1/threads/{tid}/messages/{m1['seq']}/hidden").status == 204  # c's own
    st, body = a.post(f"/v1/threads/{tid}/members", {"user_ids": [e.id]})       # e joins
    assert st == 200, body
    assert d.put(f"/v1/threads/{tid}/messages/{m1['seq']}/reactions/%E2%9D%A4").status == 204

    # message, message, edited, reaction, deleted, reaction: one row each
    assert log_types(db, tid) == [1, 1, 4, 8, 5, 8]
    # no copies beyond the thread events and c's own hide
    assert sql(db, f"SELECT COUNT(*) FROM user_events WHERE thread_id = {tid} AND type <> 2") \
        == [[str(int(copies[0][0]) + 1)]]

    def kinds(u):
        return [ev["type"] for ev in drain(u, start[u.id])[0]
                if ev["type"] not in ("thread", "receipt", "presence", "typing")]
    full = ["message", "message", "message_edited", "reaction", "message_deleted", "reaction"]
    assert kinds(a) == full and kinds(d) == full
    assert kinds(c) == full[:5] + ["message_hidden", "reaction"]
    assert kinds(b) == full[:4]                 # left before the deletion
    assert kinds(e) == ["reaction"]             # joined after everything but the last
    # the same events from the database (a message event read there shows
    # the message as it is now: edited, reacted to)
    before = {u.id: kinds(u) for u in (a, b, c, d, e)}
    logs_server.restart()
    for u in (a, b, c, d, e):
        assert kinds(u) == before[u.id]
    evs = drain(a, start[a.id])[0]
    deleted = [ev for ev in evs if ev["type"] == "message_deleted"]
    assert deleted and deleted[0]["seq"] == m2["seq"] and deleted[0]["thread_id"] == tid
    reactions = [ev for ev in evs if ev["type"] == "reaction"]
    assert [r["user_id"] for r in reactions] == [b.id, d.id], reactions
