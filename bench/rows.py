#!/usr/bin/env python3
"""rows.py — the database work of one delivery, from MariaDB's own counters.

    bench/rows.py BASE_URL MYSQL_SOCKET [SIZES...]      (sizes default: 2 10 100)

For each thread size n (2 = a direct thread) it registers n users, puts them
in one thread, lets every member's device drain its inbox, and then, K times:
the first member sends one message and every member's device polls its inbox
until it has nothing more (each poll acknowledges the one before: an online
device that is woken once per message, the worst case for acknowledgements).
Around those K rounds it reads SHOW GLOBAL STATUS and prints, per message,
the rows written (Handler_write, _update, _delete), the statements and the
commits; then the same for K `/read` calls of one member. Nothing else may
use the database meanwhile. The output is one JSON object per size on
stdout (docs/delivery.md quotes it).

Python 3 standard library only; talks to 127.0.0.1 and to the socket given.
"""
import http.client
import json
import subprocess
import sys
import time
import urllib.parse
import uuid

K = 20
# Handler_write/update/delete count row writes to base tables (temporary
# tables have their own Handler_tmp_*); an INSERT … ON DUPLICATE KEY UPDATE
# that updates counts one write attempt and one update, as MariaDB does the
# work of both.
COUNTERS = ("Handler_write", "Handler_update", "Handler_delete", "Questions", "Com_commit")


class Api:
    """One keep-alive connection to chatd."""

    def __init__(self, base, token=None):
        u = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        self.token = token

    def call(self, method, path, body=None):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        self.conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)


def status(sock):
    out = subprocess.run(["mariadb", "-uroot", "-S", sock, "-N", "-B", "-e", "SHOW GLOBAL STATUS"],
                         check=True, capture_output=True, text=True).stdout
    vals = dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
    return {k: int(vals.get(k, 0)) for k in COUNTERS}


def delta(a, b, per):
    d = {k: (b[k] - a[k]) / per for k in COUNTERS}
    d["Questions"] -= 1 / per  # the SHOW GLOBAL STATUS itself
    d["rows_written"] = d["Handler_write"] + d["Handler_update"] + d["Handler_delete"]
    return {k: round(v, 2) for k, v in d.items()}


def user(base, tag):
    name = f"r{tag}{uuid.uuid4().hex[:10]}"
    a = Api(base)
    st, _ = a.call("POST", "/v1/users", {"username": name, "password": "Qv7-rows-Kp2m-9xTb",
                                         "display_name": name})
    assert st == 201, st
    st, b = a.call("POST", "/v1/sessions", {"username": name, "password": "Qv7-rows-Kp2m-9xTb",
                                            "device_name": "rows"})
    assert st == 201, (st, b)
    a.token = b["token"]
    st, b = a.call("GET", "/v1/me")
    a.id = b["id"] if "id" in b else b["user"]["id"]
    st, b = a.call("GET", "/v1/inbox")
    a.cursor = b["next"]
    return a


def drain(devices):
    """Polls every device until none has events; returns the events seen."""
    seen, busy = 0, list(devices)
    for _ in range(50):
        nxt = []
        for d in busy:
            st, b = d.call("GET", f"/v1/inbox?since={urllib.parse.quote(d.cursor)}&timeout=0")
            assert st == 200, (st, b)
            d.cursor = b["next"]
            if b["events"]:
                seen += len(b["events"])
                nxt.append(d)
        if not nxt:
            return seen
        busy = nxt
    raise RuntimeError("inboxes did not drain")


def measure(base, sock, n):
    members = [user(base, n) for _ in range(n)]
    sender = members[0]
    if n == 2:
        st, b = sender.call("POST", "/v1/messages", {"to": members[1].id, "client_msg_id": "w",
                                                     "body": "warm"})
        thread = b["message"]["thread_id"]
    else:
        st, b = sender.call("POST", "/v1/threads", {"title": f"rows {n}",
                                                    "member_ids": [m.id for m in members[1:]]})
        assert st == 201, (st, b)
        thread = b["thread"]["id"] if "thread" in b else b["id"]
        st, b = sender.call("POST", f"/v1/threads/{thread}/messages",
                            {"client_msg_id": "w", "body": "warm"})
    assert st in (200, 201), (st, b)
    drain(members)
    time.sleep(0.3)
    drain(members)
    a = status(sock)
    events = 0
    for i in range(K):
        st, b = sender.call("POST", f"/v1/threads/{thread}/messages",
                            {"client_msg_id": f"m{i}", "body": f"message {i}"})
        assert st == 201, (st, b)
        events += drain(members)
    time.sleep(0.3)
    events += drain(members)
    b_ = status(sock)
    reader = members[1]
    for i in range(K):
        st, _ = reader.call("POST", f"/v1/threads/{thread}/read", {"seq": 2 + i})
        assert st == 204, st
        drain(members)
    c = status(sock)
    return {"members": n, "messages": K, "events_per_message": round(events / K, 1),
            "per_message": delta(a, b_, K), "per_read": delta(b_, c, K)}


def main():
    base, sock = sys.argv[1], sys.argv[2]
    sizes = [int(s) for s in sys.argv[3:]] or [2, 10, 100]
    for n in sizes:
        print(json.dumps(measure(base, sock, n)), flush=True)


if __name__ == "__main__":
    main()
