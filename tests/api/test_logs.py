"""The access log, JSON log lines and request ids (issue 13, item 9).

Every answer carries X-Request-Id: nginx's when it sent a well-formed one,
else one chatd made. With access_log on, each request ends with one line
naming that id, the method, the path without its query, the status, the
time taken, the user and the client address, and never the token or the
query. With log_format = json every line is one JSON object."""
import json
import re
import time

import pytest
import requests

from conftest import env_server, inbox_cursor, make_user


@pytest.fixture(scope="module")
def json_server(db):
    with env_server(db, "logs-json-", {"CHAT_LOG_FORMAT": "json", "CHAT_LOG_LEVEL": "info",
                                       "CHAT_ACCESS_LOG": "true"}) as s:
        yield s


@pytest.fixture(scope="module")
def quiet_server(db):
    with env_server(db, "logs-off-", {"CHAT_ACCESS_LOG": "false"}) as s:
        yield s


def lines_with(server, needle, timeout=5.0):
    """The stderr lines of the server's current run that contain needle,
    waiting a moment for the access line (written when the request ends)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [l for l in server.stderr_text().splitlines() if needle in l]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_request_id_is_made_and_unique(anon):
    ids = {anon.get("/healthz").headers.get("X-Request-Id") for _ in range(20)}
    assert None not in ids
    assert len(ids) == 20
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)


def test_request_id_from_the_proxy_is_kept(anon):
    r = anon.get("/healthz", headers={"X-Request-Id": "nginx-abc.123_X"})
    assert r.headers["X-Request-Id"] == "nginx-abc.123_X"


@pytest.mark.parametrize("bad", ["a b", "x" * 65, "é", "a;b", "a\tb"])
def test_malformed_request_id_is_replaced(server, bad):
    r = requests.get(server.base + "/healthz", headers={"X-Request-Id": bad.encode()})
    assert re.fullmatch(r"[0-9a-f]{16}", r.headers["X-Request-Id"])


def test_problem_answers_carry_the_request_id(anon):
    r = anon.get("/v1/threads/1")
    assert r.status == 401
    assert re.fullmatch(r"[0-9a-f]{16}", r.headers["X-Request-Id"])


def test_text_access_line(server):
    u = make_user(server)
    rid = "t-text-access-1"
    r = requests.get(server.base + "/v1/users?q=secretword",
                     headers={"Authorization": f"Bearer {u.token}", "X-Request-Id": rid})
    assert r.status_code == 200
    found = lines_with(server, f" access {rid} ")
    assert len(found) == 1, server.stderr_text()[-2000:]
    line = found[0]
    assert re.search(rf" info access {rid} GET /v1/users 200 [0-9.]+ms "
                     rf"user={u.id} addr=127\.0\.0\.1$", line), line
    assert "secretword" not in line and u.token not in line


def test_json_lines(json_server):
    u = make_user(json_server)
    rid = "t-json-access-1"
    r = requests.get(json_server.base + "/v1/threads?limit=5",
                     headers={"Authorization": f"Bearer {u.token}", "X-Request-Id": rid})
    assert r.status_code == 200
    found = lines_with(json_server, rid)
    assert len(found) == 1
    rec = json.loads(found[0])
    assert rec["type"] == "access" and rec["level"] == "info"
    assert rec["request_id"] == rid and rec["method"] == "GET"
    assert rec["path"] == "/v1/threads" and rec["status"] == 200
    assert rec["user_id"] == u.id and rec["addr"] == "127.0.0.1"
    assert isinstance(rec["ms"], (int, float)) and rec["ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rec["ts"])
    # Every line the server wrote is one JSON object, its start-up lines too.
    for line in json_server.stderr_text().splitlines():
        obj = json.loads(line)
        assert {"ts", "level"} <= obj.keys()
        assert "msg" in obj or obj.get("type") == "access"


def test_json_line_of_a_path_that_is_not_utf8(json_server):
    r = requests.get(json_server.base + "/v1/%ff%fe/x", headers={"X-Request-Id": "t-json-bad"})
    assert r.status_code == 404
    found = lines_with(json_server, "t-json-bad")
    assert len(found) == 1
    assert json.loads(found[0])["path"] == "/v1/??/x"


def test_a_parked_poll_is_logged_when_it_ends(server):
    # A client that gave up: its suspended connection is noticed when the
    # poll ends (here 2 s). The answer may still have fit into the socket
    # (200) or not (499); either way the line shows how long it was held.
    u = make_user(server)
    rid = "t-left-poll-1"
    cursor = inbox_cursor(u)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(server.base + "/v1/inbox", params={"since": cursor, "timeout": 2},
                     headers={"Authorization": f"Bearer {u.token}", "X-Request-Id": rid},
                     timeout=0.5)
    found = lines_with(server, f" access {rid} ", timeout=10)
    assert len(found) == 1, found
    m = re.search(r" GET /v1/inbox (200|499) ([0-9.]+)ms ", found[0])
    assert m and float(m.group(2)) >= 1900, found[0]


def test_access_log_off(quiet_server):
    requests.get(quiet_server.base + "/healthz", headers={"X-Request-Id": "t-quiet-1"})
    time.sleep(0.3)
    assert "t-quiet-1" not in quiet_server.stderr_text()
