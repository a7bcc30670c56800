"""test_nginx.py — the production nginx.conf, as scripts/run-nginx.sh runs it
(`make test-nginx`, and a stage of `make test`).

nginx runs with TLS (the self-signed certificate run-nginx.sh makes) and its
limits on, in front of a stub upstream written here instead of chatd: the
stub answers at once, says which headers reached it, can hold a request, and
can answer with an error of its own. So these tests see nginx alone: the
80→443 redirect, TLS versions and suites, the security headers on every
answer (errors too), nginx's own errors as problem+json, slow headers cut
off, the limits per address (429 rate_limited with Retry-After, freed
again), and that the upstream's own errors pass through untouched. chatd behind nginx is what the
e2e tests (tests/e2e) drive.

Everything listens on 127.0.0.1; a second and third client address
(127.0.0.2, 127.0.0.3: loopback too) show that limits are per address.
"""
import http.client
import http.server
import json
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="nginx is not installed")

# The headers nginx.conf adds to every answer of the HTTPS server.
SECURITY_HEADERS = {
    "strict-transport-security": "max-age=0",  # run-nginx.sh's local value
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}


def free_ports(n):
    """n distinct ports that were free a moment ago."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# ---- the stub upstream ----


class Stub(http.server.BaseHTTPRequestHandler):
    """Stands in for chatd. GET /healthz, /readyz: 200. /healthz?hold waits
    until `release` is set (counted in `holding` meanwhile). /v1/echo: the request headers it got, as JSON.
    /v1/own-429: a 429 problem of its own with Retry-After 7. Anything else
    under /v1: 200 {"method", "path"} after reading the body."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms wait on each keep-alive answer
    release = threading.Event()
    holding = 0
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def answer(self, status, body, ctype="application/json", extra=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        path, _, query = self.path.partition("?")
        if path in ("/healthz", "/readyz"):
            if query == "hold":
                with Stub.lock:
                    Stub.holding += 1
                Stub.release.wait(60)
                with Stub.lock:
                    Stub.holding -= 1
            return self.answer(200, {"ok": True})
        if path == "/v1/echo":
            return self.answer(200, {k.lower(): v for k, v in self.headers.items()})
        if path == "/v1/own-429":
            return self.answer(429, {"status": 429, "code": "rate_limited", "title": "Too Many Requests",
                                     "detail": "from the stub"},
                               "application/problem+json", [("Retry-After", "7")])
        return self.answer(200, {"method": self.command, "path": path})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any


class Front:
    """nginx (scripts/run-nginx.sh) in a temporary directory, in front of
    `upstream` ("host:port")."""

    def __init__(self, upstream):
        self.dir = tempfile.mkdtemp(prefix="chatd-nginx-test.")
        # Another process may take a port between our choice and nginx's
        # bind: then nginx exits, and we try other ports.
        for _ in range(3):
            self.port, self.http_port = free_ports(2)
            env = dict(os.environ, NGINX_LISTEN=f"127.0.0.1:{self.port}",
                       NGINX_HTTP_LISTEN=f"127.0.0.1:{self.http_port}",
                       NGINX_DIR=f"{self.dir}/nginx", NGINX_TLS_DIR=f"{self.dir}/tls",
                       CHATD_UPSTREAM=upstream, NGINX_TLS="on", NGINX_LIMITS="on")
            self.out = open(f"{self.dir}/nginx.out", "w")
            self.proc = subprocess.Popen([f"{ROOT}/scripts/run-nginx.sh"], env=env, cwd=ROOT,
                                         stdout=self.out, stderr=subprocess.STDOUT)
            if self.wait_ready():
                break
            self.proc.wait()
            self.out.close()
        else:
            raise RuntimeError("nginx did not start: " + open(f"{self.dir}/nginx.out").read())
        self.cafile = f"{self.dir}/tls/cert.pem"

    def wait_ready(self):
        """True once nginx answers on both ports (its pid file is written
        after it bound them); False if it exited."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.proc.poll() is None:
            if os.path.exists(f"{self.dir}/nginx/nginx.pid"):
                try:
                    for p in (self.port, self.http_port):
                        socket.create_connection(("127.0.0.1", p), timeout=1).close()
                    return True
                except OSError:
                    pass
            time.sleep(0.05)
        if self.proc.poll() is None:
            raise RuntimeError("nginx did not start within 20 s")
        return False

    def context(self, **kw):
        ctx = ssl.create_default_context(cafile=self.cafile)
        for k, v in kw.items():
            setattr(ctx, k, v)
        return ctx

    def conn(self, source="127.0.0.1", ctx=None):
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=ctx or self.context(),
                                           source_address=(source, 0))

    def request(self, method, path, body=None, headers=None, source="127.0.0.1"):
        c = self.conn(source)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            c.close()

    def raw(self, data):
        """Sends bytes as they are over TLS; returns the status, headers
        (lower-case names) and body of the answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            with self.context().wrap_socket(s, server_hostname="127.0.0.1") as t:
                t.sendall(data)
                got = b""
                while True:
                    chunk = t.recv(65536)
                    if not chunk:
                        break
                    got += chunk
        head, _, body = got.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return int(lines[0].split()[1]), headers, body

    def error_log(self):
        with open(f"{self.dir}/nginx/error.log") as f:
            return f.read()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def stub():
    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 256  # nginx opens a hundred connections at once

    srv = Server(("127.0.0.1", 0), Stub)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def front(stub):
    f = Front(stub)
    yield f
    log = f.error_log()
    f.stop()
    # No "using uninitialized variable" and the like, on any request.
    assert "uninitialized" not in log, log


def hdict(headers):
    d = {}
    for k, v in headers:
        d.setdefault(k.lower(), []).append(v)
    return d


def assert_security_headers(headers):
    h = headers if isinstance(headers, dict) else {k: v[0] for k, v in hdict(headers).items()}
    for name, value in SECURITY_HEADERS.items():
        assert h.get(name) == value, (name, h)
    assert "frame-ancestors 'none'" in h.get("content-security-policy", ""), h
    assert "camera=()" in h.get("permissions-policy", ""), h


def assert_problem(status, headers, body, want_status, code):
    h = headers if isinstance(headers, dict) else {k: v[0] for k, v in hdict(headers).items()}
    assert status == want_status, (status, body)
    assert h["content-type"] == "application/problem+json", h
    p = json.loads(body)
    assert p["status"] == want_status and p["code"] == code, p
    assert p["title"] and p["detail"], p
    assert h.get("cache-control") == "no-store", h
    assert_security_headers(h)


# ---- the tests ----


def test_plain_http_redirects_to_https(front):
    c = http.client.HTTPConnection("127.0.0.1", front.http_port, timeout=10)
    c.request("GET", "/some/path?x=1", headers={"Host": "chat.example.org"})
    r = c.getresponse()
    r.read()
    c.close()
    assert r.status == 301
    assert r.getheader("Location") == f"https://chat.example.org:{front.port}/some/path?x=1"
    # The API too: nothing is proxied over plain HTTP.
    c = http.client.HTTPConnection("127.0.0.1", front.http_port, timeout=10)
    c.request("POST", "/v1/sessions", body=b"{}")
    r = c.getresponse()
    r.read()
    c.close()
    assert r.status == 301 and r.getheader("Location").startswith("https://")


def test_tls_versions_and_suites(front):
    with socket.create_connection(("127.0.0.1", front.port)) as s:
        with front.context().wrap_socket(s, server_hostname="127.0.0.1") as t:
            assert t.version() == "TLSv1.3"
    # TLS 1.2 with a suite of the list: accepted.
    ctx = front.context(maximum_version=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    with socket.create_connection(("127.0.0.1", front.port)) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            assert t.version() == "TLSv1.2"
    # TLS 1.2 with CBC and without forward-secret AEAD (OpenSSL and nginx
    # would take these by default): refused.
    for suite in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"):
        ctx = front.context(maximum_version=ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers(suite)
        with socket.create_connection(("127.0.0.1", front.port)) as s:
            with pytest.raises(ssl.SSLError):
                ctx.wrap_socket(s, server_hostname="127.0.0.1")


def test_security_headers_on_the_app_and_the_api(front):
    status, headers, _ = front.request("GET", "/some/client/route")
    assert status == 200
    assert_security_headers(headers)
    assert hdict(headers)["cache-control"] == ["no-cache"]
    status, headers, _ = front.request("GET", "/v1/echo")
    assert status == 200
    assert_security_headers(headers)
    assert "retry-after" not in hdict(headers)
    # The metrics are not public; the 404 carries the headers too.
    status, headers, _ = front.request("GET", "/metrics")
    assert status == 404
    assert_security_headers(headers)


def test_what_reaches_the_upstream(front):
    status, _, body = front.request("GET", "/v1/echo", headers={
        "X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9", "Cookie": "other=app",
        "Authorization": "Bearer t"})
    assert status == 200
    seen = json.loads(body)
    # nginx replaces the client's X-Forwarded-For: chatd may trust it.
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-real-ip"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "https"
    assert "cookie" not in seen
    assert seen["authorization"] == "Bearer t"
    # A request id of nginx's own, never the client's: chatd logs it.
    assert re.fullmatch(r"[0-9a-f]{32}", seen["x-request-id"])
    _, _, again = front.request("GET", "/v1/echo", headers={"X-Request-Id": "client-chosen"})
    assert json.loads(again)["x-request-id"] not in (seen["x-request-id"], "client-chosen")


def test_body_over_1_mib_is_problem_json(front):
    status, headers, body = front.request("POST", "/v1/users", body=b"x" * (1024 * 1024 + 1))
    assert_problem(status, headers, body, 413, "payload_too_large")


def test_upload_bytes_may_pass_1_mib(front):
    # PUT /v1/uploads/{id}/content takes up to 100 MiB, streamed through;
    # every other route keeps the 1 MiB limit.
    big = b"x" * (3 * 1024 * 1024)
    status, _, body = front.request("PUT", "/v1/uploads/12/content", body=big,
                                    headers={"Content-Range": f"bytes 0-{len(big) - 1}/{len(big)}"})
    assert status == 200 and json.loads(body) == {"method": "PUT", "path": "/v1/uploads/12/content"}
    status, headers, body = front.request("PUT", "/v1/uploads/12/other", body=big)
    assert_problem(status, headers, body, 413, "payload_too_large")
    status, headers, body = front.request("PUT", "/v1/uploads/12/content",
                                          headers={"Content-Length": str(101 * 1024 * 1024)},
                                          body=None)
    assert_problem(status, headers, body, 413, "payload_too_large")


def test_chunked_body_stops_at_1_mib(front):
    # nginx counts a chunked body as it reads it and stops at the limit:
    # the rest is never read (here it is never even sent).
    chunk = b"x" * 65536
    head = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 17  # 1.0625 MiB, no final chunk
    status, headers, answer = front.raw(head + body)
    assert_problem(status, headers, answer, 413, "payload_too_large")


def test_slow_headers_are_cut_off(front):
    # Slowloris: a header line every second keeps the connection busy but
    # never ends the header block. nginx closes it 10 s after it opened
    # (client_header_timeout is a deadline for the whole block), without
    # passing anything on.
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as s:
        with front.context().wrap_socket(s, server_hostname="127.0.0.1") as t:
            t0 = time.monotonic()
            t.sendall(b"GET /v1/echo HTTP/1.1\r\nHost: x\r\n")
            closed_at = None
            while time.monotonic() - t0 < 30:
                try:
                    t.sendall(b"X-Slow: 1\r\n")
                    if select.select([t], [], [], 1.0)[0] and t.recv(1024) == b"":
                        closed_at = time.monotonic() - t0
                        break
                except (OSError, ssl.SSLError):
                    closed_at = time.monotonic() - t0
                    break
    assert closed_at is not None and 9 <= closed_at <= 15, closed_at


def test_malformed_requests_are_problem_json(front):
    status, headers, body = front.raw(b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_problem(status, headers, body, 400, "invalid_request")
    status, headers, body = front.raw(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                                      b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert_problem(status, headers, body, 400, "invalid_request")
    status, headers, body = front.raw(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                      b"Content-Length: 5\r\n\r\n{}")
    assert_problem(status, headers, body, 400, "invalid_request")
    status, headers, body = front.raw(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n")
    assert_problem(status, headers, body, 400, "invalid_request")
    status, headers, body = front.raw(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_problem(status, headers, body, 414, "uri_too_long")
    status, headers, body = front.raw(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n")
    assert_problem(status, headers, body, 431, "headers_too_large")


def test_upstream_errors_pass_through(front):
    status, headers, body = front.request("GET", "/v1/own-429")
    assert status == 429
    assert hdict(headers)["retry-after"] == ["7"]  # the upstream's, and only it
    assert json.loads(body)["detail"] == "from the stub"
    assert_security_headers(headers)


def test_login_and_signup_limit_per_address(front):
    # 30 a minute with 10 more at once: from one address 11 quick POSTs pass
    # (one more if a refill falls in between), the rest are refused.
    c = front.conn()
    answers = []
    for _ in range(16):
        c.request("POST", "/v1/sessions", body=b"{}", headers={"Content-Type": "application/json"})
        r = c.getresponse()
        answers.append((r.status, r.getheaders(), r.read()))
    c.close()
    passed = [a for a in answers if a[0] == 200]
    refused = [a for a in answers if a[0] == 429]
    assert len(passed) + len(refused) == 16
    assert 11 <= len(passed) <= 12, [a[0] for a in answers]
    status, headers, body = refused[0]
    assert_problem(status, headers, body, 429, "rate_limited")
    assert hdict(headers)["retry-after"] == ["2"]
    # The same paths' GETs (session list, user search) are not counted.
    assert front.request("GET", "/v1/sessions")[0] == 200
    assert front.request("GET", "/v1/users?q=al")[0] == 200
    # Sign-up shares the zone: refused too, from this address only.
    assert front.request("POST", "/v1/users", body=b"{}")[0] == 429
    assert front.request("POST", "/v1/users", body=b"{}", source="127.0.0.2")[0] == 200
    # After Retry-After, a POST passes again.
    time.sleep(2.1)
    assert front.request("POST", "/v1/sessions", body=b"{}")[0] == 200


def test_api_limit_per_address(front):
    # 20 a second with 100 more at once, over one keep-alive connection from
    # an address of its own.
    c = front.conn("127.0.0.3")
    statuses, retry = [], None
    t0 = time.monotonic()
    for _ in range(160):
        c.request("GET", "/v1/echo")
        r = c.getresponse()
        r.read()
        statuses.append(r.status)
        if r.status == 429:
            retry = r.getheader("Retry-After")
    elapsed = time.monotonic() - t0
    c.close()
    passed = statuses.count(200)
    assert passed + statuses.count(429) == 160
    assert 101 <= passed <= 101 + int(elapsed * 20) + 1, (passed, elapsed)
    assert statuses.count(429) > 0 and retry == "1"
    # Static files and health checks are not counted.
    assert front.request("GET", "/", source="127.0.0.3")[0] == 200
    assert front.request("GET", "/healthz", source="127.0.0.3")[0] == 200
    time.sleep(1.1)
    assert front.request("GET", "/v1/echo", source="127.0.0.3")[0] == 200


def test_connection_limit_per_address(front):
    # 100 requests in progress at once from one address; the 101st is
    # refused at once while another address is served.
    Stub.release.clear()

    def held(_):
        return front.request("GET", "/healthz?hold", source="127.0.0.4")[0]

    with ThreadPoolExecutor(100) as pool:
        try:
            calls = [pool.submit(held, i) for i in range(100)]
            deadline = time.monotonic() + 60
            while Stub.holding < 100 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert Stub.holding == 100
            status, headers, body = front.request("GET", "/healthz", source="127.0.0.4")
            assert_problem(status, headers, body, 429, "rate_limited")
            assert hdict(headers)["retry-after"] == ["1"]
            assert front.request("GET", "/healthz", source="127.0.0.5")[0] == 200
        finally:
            Stub.release.set()
        assert [c.result() for c in calls] == [200] * 100
    # Once they ended, the address is served again.
    assert front.request("GET", "/healthz", source="127.0.0.4")[0] == 200


def test_no_node_answers_is_problem_json():
    dead = free_ports(1)[0]  # nothing listens there
    f = Front(f"127.0.0.1:{dead}")
    try:
        status, headers, body = f.request("GET", "/v1/me")
        assert_problem(status, headers, body, 503, "unavailable")
        assert hdict(headers)["retry-after"] == ["5"]
    finally:
        f.stop()
