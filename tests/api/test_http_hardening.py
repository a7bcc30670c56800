"""test_http_hardening.py — what nobody vouched for costs little (issue 13).

Requests are routed and their token checked once the headers are in, before
any of the body is read; a chunked body stops at the limit; request line,
headers and body have absolute deadlines (slowloris); connections per client
address are limited; NUL bytes and ambiguous framing (request smuggling) are
refused with problem+json; a storm of logins meets a bounded queue and a
503 with Retry-After instead of delaying everyone. Raw sockets throughout:
an HTTP client library would tidy up exactly what is tested here.
"""
import gc
import json
import re
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from conftest import CHAT_API_URL, Client, env_server, make_user, metric, unique_name

# What is tested here is chatd's own reading of the wire; in front of it,
# nginx reads the requests and answers these cases itself.
pytestmark = pytest.mark.skipif(bool(CHAT_API_URL),
                                reason="CHAT_API_URL is set: these test chatd's own HTTP layer")

MIB = 1024 * 1024

# A second chatd with short deadlines and a small per-address limit.
SHORT_HEADER_S = 2
SHORT_BODY_S = 2
PER_ADDRESS = 6


@pytest.fixture(scope="module")
def strict_server(db):
    with env_server(db, "strict-", {"CHAT_REQUEST_HEADER_TIMEOUT_S": str(SHORT_HEADER_S),
                                    "CHAT_REQUEST_BODY_TIMEOUT_S": str(SHORT_BODY_S),
                                    "CHAT_CONNECTION_LIMIT_PER_ADDRESS": str(PER_ADDRESS)}) as s:
        yield s


# -- helpers ---------------------------------------------------------------------

def connect(server, timeout=10):
    return socket.create_connection((server.host, server.port), timeout=timeout)


def read_answer(s):
    """Reads one answer from socket s until its body is complete or the
    server closes. Returns (status, headers with lower-case names, body), or
    None when the server closed (or reset) without a byte."""
    buf = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            break
        if not chunk:
            break
        buf += chunk
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if sep:
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if m and len(rest) >= int(m.group(1)):
                break
    if not buf:
        return None
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.decode().strip().lower()] = v.decode().strip()
    return status, headers, rest


def raw(server, data, timeout=10):
    """Sends data (a whole request, bytes) on a fresh socket and reads the
    answer (see read_answer)."""
    s = connect(server, timeout)
    try:
        s.sendall(data)
        return read_answer(s)
    finally:
        s.close()


def assert_problem(answer, status, code=None):
    assert answer is not None, "the server closed without an answer"
    st, headers, body = answer
    assert st == status, (st, body[:300])
    assert headers.get("content-type", "").startswith("application/problem+json"), headers
    p = json.loads(body)
    assert p["status"] == status and isinstance(p["title"], str) and isinstance(p["detail"], str)
    if code:
        assert p["code"] == code, p
    return p


def head(server, method, path, *lines):
    return (f"{method} {path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
            + "".join(line + "\r\n" for line in lines) + "\r\n").encode()


def rss_kib(pid):
    m = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    return int(m.group(1))


def closed_within(s, seconds):
    """True when the server ends the connection within `seconds` (while
    nothing is sent to it)."""
    s.settimeout(seconds)
    try:
        while True:
            if not s.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def wait_for(pred, timeout=10, what="the condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"{what} did not hold within {timeout} s"
        time.sleep(0.05)


# -- before the body: route and token ------------------------------------------------

def test_unauthenticated_bodies_are_refused_unread_and_cost_no_memory(server, new_user):
    """40 connections each announce and start sending 1 MiB to an
    authenticated route without a valid token: each is answered 401 at once
    from the headers, none of the bodies is kept, and chatd's RSS does not
    grow by what they sent (it grew by 43 MiB when bodies were buffered
    before the token was checked). /healthz and a login answer meanwhile."""
    if server.proc is None:
        pytest.skip("needs chatd's pid")
    u = new_user()
    pid = server.proc.pid
    path = "/v1/threads/1/messages"
    before = rss_kib(pid)
    socks, answers = [], []
    try:
        for i in range(40):
            s = connect(server)
            s.sendall(head(server, "POST", path, "Authorization: Bearer " + "A" * 43,
                           "Content-Type: application/json", f"Content-Length: {MIB}"))
            socks.append(s)
        body = b"x" * MIB
        for s in socks:
            try:
                s.sendall(body)
            except OSError:
                pass
        for s in socks:
            answers.append(read_answer(s))
        r = requests.get(server.base + "/healthz", timeout=10)
        assert r.status_code == 200
        assert u.device().get("/v1/me").status == 200
        grown = rss_kib(pid) - before
    finally:
        for s in socks:
            s.close()
    for a in answers:
        assert_problem(a, 401, "unauthorized")
    assert grown < 16 * 1024, f"chatd grew by {grown} KiB"


def test_unknown_route_with_a_body_is_404_before_the_body(server):
    s = connect(server)
    try:
        s.sendall(head(server, "POST", "/v1/nope", f"Content-Length: {MIB}"))
        assert_problem(read_answer(s), 404, "not_found")
    finally:
        s.close()


def test_login_body_limit_is_16_kib_and_checked_from_content_length(server):
    """Routes without a token take 16 KiB at most: a bigger Content-Length
    is 413 at once, before the body."""
    s = connect(server)
    try:
        s.sendall(head(server, "POST", "/v1/sessions", "Content-Type: application/json",
                       f"Content-Length: {16 * 1024 + 1}"))
        assert_problem(read_answer(s), 413, "payload_too_large")
    finally:
        s.close()
    # a login of ordinary size still works
    name, pw = unique_name(), "pw-" + uuid.uuid4().hex
    make_user(server, name, pw)


def test_static_file_request_with_a_big_body_is_413(server):
    assert_problem(raw(server, head(server, "GET", "/index.html", f"Content-Length: {MIB}")),
                   413, "payload_too_large")


def test_authenticated_body_over_content_length_limit_is_413_at_once(server, new_user):
    u = new_user()
    s = connect(server)
    try:
        s.sendall(head(server, "POST", "/v1/threads", "Authorization: Bearer " + u.token,
                       f"Content-Length: {MIB + 1}"))
        assert_problem(read_answer(s), 413, "payload_too_large")
    finally:
        s.close()


def test_chunked_body_over_the_limit_is_cut_at_the_limit(server, new_user):
    """An authenticated chunked body past 1 MiB ends the connection there:
    the server reads about the limit (plus what the sockets' buffers hold),
    not the rest (it used to read 1 GiB before its 413)."""
    u = new_user()
    t = u.group(title="chunks")
    s = connect(server)
    sent = 0
    chunk = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
    try:
        s.sendall(head(server, "POST", f"/v1/threads/{t['id']}/messages",
                       "Authorization: Bearer " + u.token, "Transfer-Encoding: chunked"))
        s.settimeout(10)
        try:
            while sent < 256 * MIB:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        assert read_answer(s) is None  # closed, no answer possible mid-body
    finally:
        s.close()
    assert sent < 32 * MIB, f"the server read {sent} bytes"
    assert u.history(t["id"])["messages"] == []


def test_unauthenticated_chunked_body_is_401_unread(server):
    s = connect(server)
    try:
        s.sendall(head(server, "POST", "/v1/threads", "Transfer-Encoding: chunked"))
        assert_problem(read_answer(s), 401, "unauthorized")
    finally:
        s.close()


# -- NUL bytes and smuggling -----------------------------------------------------------

@pytest.mark.parametrize("target", [b"/v1/me%00", b"/v1/threads/1%00/messages",
                                    b"/v1/me\x00/x", b"/v1/me?x=1%00", b"/v1/users?q=ab%00cd",
                                    b"/healthz\x00"])
def test_nul_in_the_request_target_is_400(server, new_user, target):
    u = new_user()
    req = (b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
           + u.token.encode() + b"\r\n\r\n")
    assert_problem(raw(server, req), 400, "invalid_request")


def test_nul_in_a_header_value_is_400(server, new_user):
    """The token up to the NUL is valid: a server that read the header as a
    C string would answer 200."""
    u = new_user()
    for line in (b"Authorization: Bearer " + u.token.encode() + b"\x00junk",
                 b"X-Note: a\x00b"):
        req = b"GET /v1/me HTTP/1.1\r\nHost: x\r\n" + line + b"\r\nAuthorization: Bearer " \
            + u.token.encode() + b"\r\n\r\n" if line.startswith(b"X-") else \
            b"GET /v1/me HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n\r\n"
        assert_problem(raw(server, req), 400, "invalid_request")


@pytest.mark.parametrize("line", [b"X-Note: a\rb", b"X-Note: a\r\n  folded"])
def test_bare_cr_or_folded_header_is_400(server, line):
    """A bare CR ends a line for some proxies; obs-fold is obsolete (RFC
    9112 lets a server refuse it): either could frame differently."""
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n\r\n"
    assert_problem(raw(server, req), 400, "invalid_request")


def test_nul_in_the_method_is_400(server):
    assert_problem(raw(server, b"GET\x00X /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), 400,
                   "invalid_request")


def test_ordinary_requests_still_pass_the_nul_check(server, new_user):
    """Header lines ending in bare LF, headers without a value, a query."""
    u = new_user()
    req = (b"GET /v1/users?q=" + u.username[:3].encode() + b" HTTP/1.1\n" b"Host: x\n"
           b"X-Empty:\n" b"Authorization: Bearer " + u.token.encode() + b"\n\n")
    st, _, body = raw(server, req)
    assert st == 200, body


MESSAGE = b'{"client_msg_id": "smuggled", "body": "hi"}'
N = len(MESSAGE)


@pytest.mark.parametrize("lines,status,code", [
    ([f"Content-Length: {N}", f"Content-Length: {N}"], 400, "invalid_request"),
    ([f"Content-Length: {N}", "Content-Length: 2"], 400, "invalid_request"),
    ([f"Content-Length: {N}", "Transfer-Encoding: chunked"], 400, "invalid_request"),
    (["Transfer-Encoding: chunked", f"Content-Length: {N}"], 400, "invalid_request"),
    (["Transfer-Encoding: gzip"], 501, "not_implemented"),
    (["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], 501, "not_implemented"),
])
def test_ambiguous_framing_is_refused(server, new_user, lines, status, code):
    """What a proxy in front could frame differently (request smuggling) is
    refused, and the message in it is not stored."""
    u = new_user()
    t = u.group(title="smuggle")
    body = MESSAGE
    if any("chunked" in line for line in lines):
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (N, MESSAGE)
    req = head(server, "POST", f"/v1/threads/{t['id']}/messages",
               "Authorization: Bearer " + u.token, *lines) + body
    assert_problem(raw(server, req), status, code)
    assert u.history(t["id"])["messages"] == []


def test_a_plain_chunked_message_is_stored(server, new_user):
    """The same message, framed once, goes through."""
    u = new_user()
    t = u.group(title="chunked")
    req = head(server, "POST", f"/v1/threads/{t['id']}/messages",
               "Authorization: Bearer " + u.token, "Transfer-Encoding: chunked") \
        + b"%x\r\n%s\r\n0\r\n\r\n" % (N, MESSAGE)
    st, _, body = raw(server, req)
    assert st == 201, body
    assert [m["body"] for m in u.history(t["id"])["messages"]] == ["hi"]


# -- deadlines -------------------------------------------------------------------------

def test_slow_headers_are_cut_at_the_header_deadline(strict_server):
    """A client that trickles its headers (a byte every 0.5 s: never idle)
    is cut at the absolute deadline; /healthz answers meanwhile."""
    s = connect(strict_server)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        cut = False
        while time.monotonic() - t0 < SHORT_HEADER_S + 4:
            try:
                s.sendall(b"X")
            except OSError:
                cut = True
                break
            if closed_within(s, 0.5):
                cut = True
                break
        assert cut, "a trickling client was not cut"
        assert time.monotonic() - t0 >= SHORT_HEADER_S - 0.5
    finally:
        s.close()
    assert requests.get(strict_server.base + "/healthz", timeout=10).status_code == 200


def test_silent_new_connection_is_cut_at_the_header_deadline(strict_server):
    before = metric(strict_server, "chatd_http_deadline_cuts")
    s = connect(strict_server)
    try:
        assert closed_within(s, SHORT_HEADER_S + 3)
    finally:
        s.close()
    assert metric(strict_server, "chatd_http_deadline_cuts") > before


def test_slow_body_is_cut_at_the_body_deadline(strict_server):
    s = connect(strict_server)
    try:
        s.sendall(head(strict_server, "POST", "/v1/sessions", "Content-Length: 1000"))
        t0 = time.monotonic()
        cut = False
        while time.monotonic() - t0 < SHORT_BODY_S + 4:
            try:
                s.sendall(b" ")
            except OSError:
                cut = True
                break
            if closed_within(s, 0.5):
                cut = True
                break
        assert cut, "a trickling body was not cut"
    finally:
        s.close()


def test_parked_poll_outlives_the_header_deadline(strict_server):
    """A long-poll is parked after its headers: no deadline applies."""
    u = make_user(strict_server)
    c = Client(strict_server, u.token)
    r = c.get("/v1/inbox")
    assert r.status == 200, r
    t0 = time.monotonic()
    r = c.get("/v1/inbox", params={"since": r.body["next"], "timeout": SHORT_HEADER_S + 2},
              timeout=30)
    assert r.status == 200, r
    assert r.body["events"] == [] or all(e["type"] == "presence" for e in r.body["events"])
    assert time.monotonic() - t0 >= SHORT_HEADER_S + 1


def test_kept_alive_connection_serves_requests_after_the_header_deadline(strict_server):
    """The header deadline counts from each request line, not from accept."""
    s = connect(strict_server)
    try:
        for _ in range(3):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            st, _, _ = read_answer(s)
            assert st == 200
            time.sleep(SHORT_HEADER_S / 2 + 0.2)
    finally:
        s.close()


# -- connections per address -----------------------------------------------------------

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def hold(server, n):
    """Opens n connections and has each served once (kept alive). Returns
    the sockets, or None (all closed) when one was refused."""
    socks = []
    for _ in range(n):
        s = connect(server)
        socks.append(s)
        try:
            s.sendall(HEALTHZ)
            a = read_answer(s)
        except OSError:
            a = None
        if a is None or a[0] != 200:
            for x in socks:
                x.close()
            return None
    return socks


def test_connections_per_address_are_limited(strict_server):
    """PER_ADDRESS connections from 127.0.0.1 are taken; one more is closed
    at once; when one closes, a new one is taken again."""
    gc.collect()  # closes what earlier tests' clients left open
    deadline = time.monotonic() + 15
    while (socks := hold(strict_server, PER_ADDRESS)) is None:
        assert time.monotonic() < deadline, f"{PER_ADDRESS} connections were never all served"
        time.sleep(0.2)
    try:
        extra = connect(strict_server)
        try:
            extra.sendall(HEALTHZ)
        except OSError:
            pass
        assert read_answer(extra) is None
        extra.close()
        socks.pop().close()

        def one_more():
            a = raw(strict_server, HEALTHZ)
            return a is not None and a[0] == 200
        wait_for(one_more, what="a connection after one closed")
    finally:
        for s in socks:
            s.close()


# -- the password-hash queue -----------------------------------------------------------

def test_login_storm_meets_a_bounded_queue(server, new_user):
    """200 concurrent bad logins: the queue behind the hashing slots is
    bounded, the rest are answered 503 unavailable with Retry-After at once,
    and a real login in the middle of it answers within the bounded wait
    (hash_wait_ms, 1 s, plus its own hash) instead of after the whole storm
    (9 s before)."""
    u = new_user()
    url = server.base + "/v1/sessions"
    start = threading.Event()

    def bad(i):
        start.wait()
        r = requests.post(url, json={"username": unique_name("storm"), "password": "wrong-pw-1"},
                          timeout=60)
        return r.status_code, r.headers.get("Retry-After"), r.headers.get("Content-Type", "")

    with ThreadPoolExecutor(200) as ex:
        futures = [ex.submit(bad, i) for i in range(200)]
        start.set()
        time.sleep(0.3)  # the storm is under way
        t0 = time.monotonic()
        r = requests.post(url, json={"username": u.username, "password": u.password}, timeout=60)
        took = time.monotonic() - t0
        results = [f.result() for f in futures]
    assert r.status_code in (201, 503), r.text
    if r.status_code == 503:
        assert r.headers.get("Retry-After") == "1"
    assert took < 5, f"the real login took {took:.1f} s"
    busy = [x for x in results if x[0] == 503]
    assert busy, "no 503 in 200 concurrent logins"
    assert all(ra == "1" and ct.startswith("application/problem+json") for _, ra, ct in busy)
    assert {s for s, _, _ in results} <= {401, 503}
    # afterwards, logins work
    r = Client(server).post("/v1/sessions", {"username": u.username, "password": u.password})
    assert r.status == 201, r
