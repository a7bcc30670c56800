"""The move to one stream clock (migration 018, docs/delivery.md step b).

A database at migration 017 — per-user streams with positions 1, 2, 3 …,
some users' oldest events pruned already — is upgraded by a chatd of this
version. Every cursor a device held stays what it was: it reads the rest of
its old stream and then the new events; a cursor whose events were pruned
answers 410, before and after; new positions lie above every old one. Then
the janitor prunes, and a cursor below what it pruned answers 410 too.

The old state is written in SQL (no chatd of the old version is at hand):
users, sessions and receipt events, the kind of event that needs no other
row to be shown."""
import hashlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import (CHATD_BIN, REPO, EnvServer, User, inbox, problem)

DB = "chat_upgrade"


def sql(db, query):
    r = subprocess.run(["mariadb", "-uroot", "-S", db.socket, "-N", "-B", DB, "-e", query],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [line.split("\t") for line in r.stdout.splitlines()]


def receipts(events):
    """The old events (thread 77's receipts) among events."""
    return [(e["thread_id"], e["delivered_seq"]) for e in events
            if e["type"] == "receipt" and e["thread_id"] == 77]


@pytest.fixture(scope="module")
def old_db(db):
    """The database at 017 with three users' streams (see the test)."""
    subprocess.run(["mariadb", "-uroot", "-S", db.socket, "-e",
                    f"DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB}"], check=True)
    sql_dir = tempfile.mkdtemp(prefix="sql-017-", dir=db.dir)
    for f in sorted(os.listdir(REPO / "sql")):
        if f.endswith(".sql") and f < "018":
            shutil.copy(REPO / "sql" / f, sql_dir)
    env = dict(os.environ, CHAT_DB_URL=f"mysql://root@localhost/{DB}?socket={db.socket}",
               CHAT_SQL_DIR=sql_dir, CHAT_LOG_LEVEL="warn")
    env.pop("CHAT_CONFIG", None)
    r = subprocess.run([CHATD_BIN, "--migrate"], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert sql(db, "SELECT COUNT(*) FROM schema_migrations WHERE name LIKE '018%'") == [["0"]]
    return db


def seed_user(db, name, last_pos, kept, old_ms):
    """A user whose old stream ended at last_pos, with the receipt events at
    the positions in kept (delivered_seq = the position; thread 77); the
    events below 3 are old enough for the janitor. Returns (id, token)."""
    now = int(time.time() * 1000)
    sql(db, f"INSERT INTO users (username, display_name, password_hash, created_at) "
            f"VALUES ('{name}', '{name}', 'x', {now})")
    uid = int(sql(db, f"SELECT id FROM users WHERE username = '{name}'")[0][0])
    token = secrets.token_urlsafe(32)
    h = hashlib.sha256(token.encode()).hexdigest()
    rows = ",".join(f"({uid}, {p}, 3, 77, 0, {p}, {old_ms if p < 3 else now})" for p in kept)
    sql(db, f"INSERT INTO user_streams (user_id, last_pos) VALUES ({uid}, {last_pos});"
            f"INSERT INTO user_acks (user_id, acked_pos) VALUES ({uid}, 0);"
            f"INSERT INTO sessions (user_id, token_hash, device_name, created_at, last_seen_at) "
            f"VALUES ({uid}, X'{h}', 'old', {now}, {now});"
            + (f"INSERT INTO user_events (user_id, pos, type, thread_id, actor_id, delivered_seq, "
               f"created_at) VALUES {rows};" if kept else ""))
    return uid, token


def test_cursors_survive_the_move_to_the_clock(old_db):
    db = old_db
    old_ms = int(time.time() * 1000) - 40 * 86400 * 1000  # past the 30 days kept
    ann_id, ann_tok = seed_user(db, "upg_ann", 5, [1, 2, 3, 4, 5], old_ms)
    bob_id, bob_tok = seed_user(db, "upg_bob", 6, [4, 5, 6], old_ms)  # 1–3 pruned
    cid_id, cid_tok = seed_user(db, "upg_cid", 4, [], old_ms)  # everything pruned

    s = EnvServer(db, tempfile.mkdtemp(prefix="upgrade-", dir=db.dir),
                  {"CHAT_DB_URL": f"mysql://root@localhost/{DB}?socket={db.socket}",
                   "CHAT_EVENT_RETENTION_DAYS": "3650"})  # nothing pruned yet
    s.start()
    try:
        ann = User(s, {"id": ann_id, "username": "upg_ann"}, "x", ann_tok, 0)
        bob = User(s, {"id": bob_id, "username": "upg_bob"}, "x", bob_tok, 0)
        cid = User(s, {"id": cid_id, "username": "upg_cid"}, "x", cid_tok, 0)
        assert sql(db, "SELECT pos FROM stream_clock") == [["6"]]

        # Old cursors: the rest of the old stream, exactly as before.
        r = inbox(ann, "2", timeout=0)
        assert r.status == 200, r
        assert receipts(r.body["events"]) == [(77, 3), (77, 4), (77, 5)]
        assert r.body["next"] == "5"
        assert receipts(inbox(ann, "0", timeout=0).body["events"]) == [(77, p) for p in range(1, 6)]
        r = inbox(bob, "3", timeout=0)
        assert receipts(r.body["events"]) == [(77, 4), (77, 5), (77, 6)] and r.body["next"] == "6"
        # What was pruned stays pruned, past the end stays refused.
        for user, cursor in ((bob, "2"), (bob, "0"), (cid, "3"), (ann, "6"), (bob, "7")):
            problem(inbox(user, cursor, timeout=0), 410, "cursor_expired")
        for user, end in ((ann, "5"), (bob, "6"), (cid, "4")):
            assert inbox(user).body["next"] == end
            r = inbox(user, end, timeout=0)
            assert r.status == 200 and r.body["events"] == [] and r.body["next"] == end

        # New events come after every old one, from the old cursors on.
        t = ann.direct(bob)["id"]
        m = ann.say(t, "after the upgrade")
        r = inbox(bob, "6", timeout=0)
        new = [e for e in r.body["events"] if e["type"] in ("thread", "message")]
        assert [e["type"] for e in new] == ["thread", "message"], new
        assert (new[1]["message"]["seq"], new[1]["message"]["body"]) == (m["seq"], m["body"])
        assert int(r.body["next"]) > 6
        r2 = inbox(bob, "3", timeout=0)  # the old rest, then the same new events
        assert receipts(r2.body["events"])[:3] == [(77, 4), (77, 5), (77, 6)]
        assert [e for e in r2.body["events"] if e["type"] in ("thread", "message")] == new
        ann_next = inbox(ann, "5", timeout=0).body["next"]
        assert int(ann_next) > 6
        positions = sql(db, f"SELECT pos FROM user_events WHERE user_id IN ({ann_id}, {bob_id}) "
                            "AND pos > 6")
        assert len(positions) >= 4 and len({p[0] for p in positions}) == len(positions)
        assert int(sql(db, "SELECT pos FROM stream_clock")[0][0]) >= max(int(p[0]) for p in positions)
        # The old stream ends are frozen: nothing bumps them any more.
        assert sql(db, f"SELECT user_id, last_pos FROM user_streams WHERE user_id IN "
                       f"({ann_id}, {bob_id}, {cid_id}) ORDER BY user_id") == \
            [[str(ann_id), "5"], [str(bob_id), "6"], [str(cid_id), "4"]]
    finally:
        s.stop()
        s.check_stderr()

    # The janitor prunes ann's two old events: a cursor before them has
    # missed something (410), one after them reads on.
    s = EnvServer(db, tempfile.mkdtemp(prefix="upgrade-", dir=db.dir),
                  {"CHAT_DB_URL": f"mysql://root@localhost/{DB}?socket={db.socket}",
                   "CHAT_JANITOR_INTERVAL_S": "1"})
    s.start()
    try:
        ann = User(s, {"id": ann_id, "username": "upg_ann"}, "x", ann_tok, 0)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if sql(db, f"SELECT COUNT(*) FROM user_events WHERE user_id = {ann_id} "
                       "AND pos < 3") == [["0"]]:
                break
            time.sleep(0.2)
        assert sql(db, f"SELECT pruned_pos FROM user_streams WHERE user_id = {ann_id}") == [["2"]]
        for cursor in ("0", "1"):
            problem(inbox(ann, cursor, timeout=0), 410, "cursor_expired")
        r = inbox(ann, "2", timeout=0)
        assert r.status == 200 and receipts(r.body["events"]) == [(77, 3), (77, 4), (77, 5)]
        assert r.body["next"] == ann_next
    finally:
        s.stop()
        s.check_stderr()
