"""Message actions under a random mix, with kill -9 (issue 15, the property
test of docs/message-actions.md): seeded random sends, edits, deletes for
everyone, reactions, hides and unhides by three people on six devices in a
direct thread and a group, with polls of random size in between and chatd
killed twice. Then:

- every device of a user saw the same stream, event for event (a message
  event shows its message as it is when read, so it is compared by the
  message it names);
- applying each device's events (keeping the highest `version` of a
  message) gives exactly what the history shows to that user now: bodies,
  tombstones, versions, reactions, hidden stubs;
- every thread's history is seq 1..last_seq with no hole;
- no deleted body appears in anything the server answers afterwards: the
  whole stream read again, history, thread lists, search.

CHAT_TEST_SEED=<n> replays a run; the seed is in the failure message.
"""
import os
import random
import time
import uuid

from conftest import DURABLE_TYPES, inbox, inbox_cursor

STEPS = 260
KILLS = 2
EMOJI = ["👍", "❤️", "😂", "🎉"]


def drain(dev, cursor, limit=None):
    """(events with their positions, the last cursor) from cursor on."""
    out = []
    for _ in range(500):
        r = inbox(dev, cursor, timeout=0, limit=limit)
        assert r.status == 200, r
        evs = [e for e in r.body["events"] if e["type"] in DURABLE_TYPES]
        nxt = r.body["next"]
        if evs:
            first = int(cursor) + 1
            out.extend(evs)
            assert int(nxt) - first + 1 >= len(evs)
        if nxt == cursor:
            return out, cursor
        cursor = nxt
    raise AssertionError("the stream did not end")


def apply(state, hidden, ev):
    """One event into state {(thread, seq): message} and hidden {(t, s)}."""
    t = ev["type"]
    if t in ("message", "message_edited"):
        m = ev["message"]
        k = (m["thread_id"], m["seq"])
        if k not in state or m["version"] > state[k]["version"]:
            state[k] = m
    elif t == "message_deleted":
        k = (ev["thread_id"], ev["seq"])
        m = state.get(k)
        if m and ev["version"] > m["version"]:
            state[k] = {**m, "body": "", "attachments": [], "reactions": [], "reply_to": None,
                        "forwarded": None, "deleted_at": ev["deleted_at"],
                        "version": ev["version"]}
    elif t == "reaction":
        k = (ev["thread_id"], ev["seq"])
        m = state.get(k)
        if m and ev["version"] > m["version"]:
            rs = {r["emoji"]: set(r["user_ids"]) for r in m["reactions"]}
            who = rs.setdefault(ev["emoji"], set())
            (who.add if ev["op"] == "add" else who.discard)(ev["user_id"])
            state[k] = {**m, "version": ev["version"],
                        "reactions": [{"emoji": e, "user_ids": sorted(u)}
                                      for e, u in rs.items() if u]}
    elif t == "message_hidden":
        hidden.add((ev["thread_id"], ev["seq"]))
    elif t == "message_unhidden":
        hidden.discard((ev["thread_id"], ev["seq"]))


def comparable(m):
    return (m["body"], bool(m["deleted_at"]), m["version"],
            sorted((r["emoji"], tuple(sorted(r["user_ids"]))) for r in m["reactions"]))


def test_random_actions_with_kill9_keep_every_stream_true(new_users, server):
    seed = int(os.environ.get("CHAT_TEST_SEED") or random.randrange(1 << 30))
    rnd = random.Random(seed)
    why = f"(CHAT_TEST_SEED={seed})"
    alice, bob, carol = new_users(3)
    alice.known_by(bob, carol)
    d = alice.direct(bob)["id"]
    g = alice.group(bob, carol)["id"]
    members = {d: [alice, bob], g: [alice, bob, carol]}
    devices = {u.id: [u] for u in (alice, bob, carol)}
    devices[alice.id].append(alice.device("a2"))
    devices[bob.id] += [bob.device("b2"), bob.device("b3")]
    start = {uid: inbox_cursor(devs[0]) for uid, devs in devices.items()}
    seen = {id(dev): [] for devs in devices.values() for dev in devs}
    cursor = {id(dev): start[uid] for uid, devs in devices.items() for dev in devs}
    sent = {d: [], g: []}  # (seq, sender)
    deleted_bodies = []
    bodies = {}
    kills = sorted(rnd.sample(range(40, STEPS - 20), KILLS))
    for step in range(STEPS):
        if kills and step == kills[0]:
            kills.pop(0)
            server.restart(kill9=True)
            continue
        t = rnd.choice([d, g])
        who = rnd.choice(members[t])
        op = rnd.random()
        live = [(q, s) for q, s in sent[t] if (t, q) not in deleted_keys(deleted_bodies)]
        if op < 0.35 or not live:
            body = f"m{step}-{uuid.uuid4().hex[:10]}"
            r = who.send(t, body)
            assert r.status == 201, (r, why)
            sent[t].append((r.body["message"]["seq"], who.id))
            bodies[(t, r.body["message"]["seq"])] = body
        elif op < 0.45:
            seq, sender = rnd.choice(live)
            author = next(u for u in members[t] if u.id == sender)
            body = f"e{step}-{uuid.uuid4().hex[:10]}"
            r = author.patch(f"/v1/threads/{t}/messages/{seq}", {"body": body})
            assert r.status == 200, (r, why)
            bodies[(t, seq)] = body
        elif op < 0.55:
            seq, sender = rnd.choice(live)
            author = next(u for u in members[t] if u.id == sender)
            r = author.delete(f"/v1/threads/{t}/messages/{seq}")
            assert r.status == 204, (r, why)
            deleted_bodies.append((t, seq, bodies[(t, seq)]))
        elif op < 0.75:
            seq, _ = rnd.choice(live)
            e = rnd.choice(EMOJI)
            path = f"/v1/threads/{t}/messages/{seq}/reactions/{e}"
            r = who.put(path) if rnd.random() < 0.7 else who.delete(path)
            assert r.status == 204, (r, why)
        elif op < 0.83:
            seq, _ = rnd.choice(sent[t])
            path = f"/v1/threads/{t}/messages/{seq}/hidden"
            r = who.put(path) if rnd.random() < 0.6 else who.delete(path)
            assert r.status == 204, (r, why)
        else:
            dev = rnd.choice(devices[who.id])
            got, cursor[id(dev)] = drain(dev, cursor[id(dev)], rnd.choice([None, 1, 3, 7]))
            seen[id(dev)] += got

    for uid, devs in devices.items():
        for dev in devs:
            got, cursor[id(dev)] = drain(dev, cursor[id(dev)])
            seen[id(dev)] += got
        # Every device of a user saw the same stream: the same events in
        # the same order (a message event shows the message as it was when
        # read — a device that read it later sees its later state, never a
        # deleted body — so messages are compared by what they name).
        for dev in devs[1:]:
            assert [identity(e) for e in seen[id(dev)]] == \
                [identity(e) for e in seen[id(devs[0])]], f"devices of {uid} differ {why}"
        # Applying it gives what the history shows this user now.
        state, hidden = {}, set()
        for ev in seen[id(devs[0])]:
            apply(state, hidden, ev)
        user = devs[0]
        for t in (d, g):
            if not any(m.id == uid for m in members[t]):
                continue
            hist = []
            before = None
            while True:
                params = {"limit": 100} | ({"before": before} if before else {})
                page = user.get(f"/v1/threads/{t}/messages", params=params).body
                hist = page["messages"] + hist
                if not page["has_more"]:
                    break
                before = page["messages"][0]["seq"]
            assert [m["seq"] for m in hist] == list(range(1, len(hist) + 1)), f"holes {why}"
            assert len(hist) == len(sent[t]), why
            for m in hist:
                k = (t, m["seq"])
                assert (k in hidden) == bool(m.get("hidden")), (k, m, why)
                if m.get("hidden"):
                    continue
                assert k in state, (k, why)
                assert comparable(state[k]) == comparable(m), (k, state[k], m, why)

    # No deleted body anywhere.
    texts = []
    for uid, devs in devices.items():
        texts.append(inbox(devs[0], start[uid], timeout=0, limit=100000).text)
        for t in (d, g):
            if any(m.id == uid for m in members[t]):
                texts.append(devs[0].get(f"/v1/threads/{t}/messages",
                                         params={"limit": 100}).text)
        texts.append(devs[0].get("/v1/threads").text)
    time.sleep(1.5)  # the indexer gathers for a moment
    for t, seq, body in deleted_bodies:
        for text in texts:
            assert body not in text, (t, seq, why)
        r = alice.get("/v1/search/messages", params={"q": body})
        assert r.status == 200 and r.body["results"] == [], (body, why)


def identity(ev):
    if ev["type"] in ("message", "message_edited"):
        return (ev["type"], ev["message"]["thread_id"], ev["message"]["seq"])
    if ev["type"] == "thread":
        return ("thread", ev["thread"]["id"])
    return tuple(sorted((k, str(v)) for k, v in ev.items()))


def deleted_keys(deleted):
    return {(t, s) for t, s, _ in deleted}
