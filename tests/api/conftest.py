"""conftest.py — the harness of the API tests: a real chatd over real HTTP.

One pytest session starts one private MariaDB (scripts/db.sh, in a fresh
temporary directory) and one chatd (CHATD_BIN, the sanitizer build under
`make test`) on an ephemeral port, and stops both at the end, also when tests
fail. chatd's stderr goes to a file per start; when a chatd exits non-zero or
its stderr holds a sanitizer report, the session fails and prints that stderr.

Fixtures
  db          the MariaDB: .dir, .socket, .url (the CHAT_DB_URL chatd gets)
  server      the running chatd: .base ("http://127.0.0.1:PORT"), .host,
              .port, .restart(kill9=False) -> new base URL (the port may change)
  new_user    factory: new_user() registers a user with a unique name and logs
              it in; returns a User
  new_users   factory: new_users(n) makes n users, a few at a time
  anon        a Client without a token

Helpers (import them from conftest)
  Client / User  .get/.post/.put/.patch/.delete(path, body) -> R, which unpacks
                 as (status, body) and has .headers and .text
  problem(r, status, code)  asserts an RFC 9457 answer
  raw_http(server, method, path, ...)  one request with the path sent as is
"""
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
CHATD_BIN = os.environ.get("CHATD_BIN") or str(REPO / "build" / "chatd-asan")
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ERROR: ThreadSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")

# Findings about chatd itself (crash, sanitizer report, refusal to stop); any
# of them fails the session.
SERVER_PROBLEMS = []


# --------------------------------------------------------------------------
# The database and the server
# --------------------------------------------------------------------------

class Database:
    """The private MariaDB of the session; tests may stop, crash and start it."""

    def __init__(self, tmp):
        self.dir = tmp
        self.socket = os.path.join(tmp, "mysql.sock")
        self.pid_file = os.path.join(tmp, "mysqld.pid")
        self.url = f"mysql://root@localhost/chat_test?socket={self.socket}"

    def start(self):
        r = _db_sh("start", self.dir)
        if r.returncode != 0:
            pytest.fail(f"scripts/db.sh start failed:\n{r.stdout}\n{r.stderr}", pytrace=False)

    def stop(self):
        _db_sh("stop", self.dir)

    def kill9(self):
        """SIGKILL to mariadbd (a crash), then waits until it is gone."""
        pid = int(Path(self.pid_file).read_text().strip())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                break  # gone
            if state in ("Z", "X"):
                break  # dead; waiting for its reaper
            time.sleep(0.05)
        # a crash leaves the pid file behind; db.sh would take a zombie for alive
        try:
            os.unlink(self.pid_file)
        except FileNotFoundError:
            pass


def _db_sh(*args, timeout=120):
    return subprocess.run([str(REPO / "scripts" / "db.sh"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def db():
    tmp = tempfile.mkdtemp(prefix="chatd-api-")
    try:
        d = Database(tmp)
        d.start()
        yield d
    finally:
        _db_sh("stop", tmp)
        shutil.rmtree(tmp, ignore_errors=True)


class Server:
    """One chatd process at a time, always on the same database."""

    def __init__(self, db, tmp):
        self.db = db
        self.tmp = tmp
        self.proc = None
        self.base = None
        self.host = "127.0.0.1"
        self.port = None
        self.starts = 0
        self.stderr_paths = []
        self.reported = set()  # stderr files already shown in SERVER_PROBLEMS

    def _env(self):
        env = dict(os.environ)
        env.update(CHAT_DB_URL=self.db.url, CHAT_LISTEN="127.0.0.1:0",
                   CHAT_WWW_ROOT=str(REPO / "www"), CHAT_SQL_DIR=str(REPO / "sql"),
                   CHAT_LOG_LEVEL="warn")
        # As scripts/test.sh sets them, when the caller did not.
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        supp = REPO / "tests" / "lsan.supp"
        if supp.exists():
            env.setdefault("LSAN_OPTIONS", f"suppressions={supp}:print_suppressions=0")
        env.pop("CHAT_CONFIG", None)
        return env

    def stderr_text(self, path=None):
        try:
            return Path(path or self.stderr_paths[-1]).read_text(errors="replace")
        except (OSError, IndexError):
            return ""

    def start(self):
        if not os.access(CHATD_BIN, os.X_OK):
            pytest.fail(f"CHATD_BIN {CHATD_BIN} is not an executable; "
                        "build it with `make build/chatd-asan`", pytrace=False)
        self.starts += 1
        err_path = os.path.join(self.tmp, f"chatd-{self.starts}.stderr")
        self.stderr_paths.append(err_path)
        with open(err_path, "wb") as errf:
            self.proc = subprocess.Popen([CHATD_BIN], cwd=REPO, env=self._env(),
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=errf)
        first_line = []
        got_line = threading.Event()

        def drain(out):
            for line in out:  # the first line names the port; keep draining the rest
                if not got_line.is_set():
                    first_line.append(line.decode(errors="replace"))
                    got_line.set()
            got_line.set()

        threading.Thread(target=drain, args=(self.proc.stdout,), daemon=True).start()
        if not got_line.wait(START_TIMEOUT_S) or not first_line:
            self._abort_start("printed no 'listening' line")
        m = re.fullmatch(r"chatd: listening on http://([0-9.]+):(\d+)\n?", first_line[0])
        if not m:
            self._abort_start(f"printed {first_line[0]!r} instead of the 'listening' line")
        self.host, self.port = m.group(1), int(m.group(2))
        self.base = f"http://{self.host}:{self.port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if requests.get(self.base + "/readyz", timeout=5).status_code == 200:
                    return self.base
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._abort_start("did not become ready (GET /readyz != 200)")
            time.sleep(0.05)

    def _abort_start(self, why):
        p = self.proc
        if p.poll() is None:
            p.kill()
            p.wait()
        self.proc = None
        pytest.fail(f"chatd {why} (exit status {p.returncode}); its stderr:\n"
                    f"{self.stderr_text()}", pytrace=False)

    def stop(self, kill9=False):
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is not None:
            self._problem(f"chatd (start #{self.starts}) died on its own with status "
                          f"{p.returncode}")
            return
        if kill9:
            p.kill()
            p.wait()
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            self._problem(f"chatd (start #{self.starts}) did not stop within "
                          f"{STOP_TIMEOUT_S} s of SIGTERM; killed")
            return
        if p.returncode != 0:
            self._problem(f"chatd (start #{self.starts}) exited with status {p.returncode} "
                          "after SIGTERM")

    def _problem(self, what):
        self.reported.add(self.stderr_paths[-1])
        SERVER_PROBLEMS.append(f"{what}; its stderr:\n{self.stderr_text()}")

    def restart(self, kill9=False):
        """Stops chatd (SIGKILL when kill9, else SIGTERM) and starts it again on
        the same database; returns the new base URL."""
        self.stop(kill9=kill9)
        return self.start()

    def check_stderr(self):
        for path in self.stderr_paths:
            if path in self.reported:
                continue
            text = self.stderr_text(path)
            if any(mark in text for mark in SANITIZER_MARKS):
                SERVER_PROBLEMS.append(f"sanitizer report in {os.path.basename(path)}:\n{text}")


@pytest.fixture(scope="session")
def server(db):
    s = Server(db, db.dir)
    try:
        s.start()
        yield s
    finally:
        s.stop()
        s.check_stderr()
    if SERVER_PROBLEMS:
        pytest.fail("chatd failed:\n" + "\n\n".join(SERVER_PROBLEMS), pytrace=False)


@pytest.fixture(autouse=True)
def _chatd_survives(request):
    """After each test: if chatd died during it (a crash, a sanitizer abort),
    fail that test with chatd's stderr, and start chatd again so that the
    rest of the session still tests something. The death stays in
    SERVER_PROBLEMS, so the session fails too."""
    yield
    if "server" not in request.fixturenames:
        return
    s = request.getfixturevalue("server")
    if s.proc is not None and s.proc.poll() is not None:
        status, text = s.proc.returncode, s.stderr_text()
        s.stop()  # records the death
        s.start()
        pytest.fail(f"chatd died (status {status}) during this test; its stderr:\n{text}",
                    pytrace=False)


def pytest_sessionfinish(session, exitstatus):
    if SERVER_PROBLEMS and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if SERVER_PROBLEMS:
        terminalreporter.section("chatd problems (these fail the session)", red=True)
        for p in SERVER_PROBLEMS:
            terminalreporter.write_line(p)


# --------------------------------------------------------------------------
# HTTP helpers
# --------------------------------------------------------------------------

class R:
    """One answer: unpacks as (status, body); .headers, .text, .raw."""
    __slots__ = ("status", "body", "headers", "text")

    def __init__(self, status, body, headers, text):
        self.status, self.body, self.headers, self.text = status, body, headers, text

    def __iter__(self):
        return iter((self.status, self.body))

    def __repr__(self):
        return f"R({self.status}, {self.text[:300]!r})"


def _answer(resp):
    text = resp.text
    body = None
    ctype = resp.headers.get("Content-Type", "")
    if text and "json" in ctype:
        try:
            body = resp.json()
        except ValueError:
            body = None
    return R(resp.status_code, body, resp.headers, text)


_NONE = object()


def check_api_answer(method, path, r):
    """What holds for every answer under /v1: errors are problem+json with
    status, code, title and detail; 204 has no body; other successes are a
    JSON object."""
    where = f"{method} {path} -> {r!r}"
    ctype = r.headers.get("Content-Type", "").split(";")[0].strip()
    if r.status >= 400:
        assert ctype == "application/problem+json", f"Content-Type {ctype!r}: {where}"
        b = r.body
        assert isinstance(b, dict) and b.get("status") == r.status, where
        assert isinstance(b.get("code"), str) and b["code"], where
        assert isinstance(b.get("title"), str) and isinstance(b.get("detail"), str), where
    elif r.status == 204:
        assert r.text == "", where
    elif method != "HEAD":
        assert ctype == "application/json", f"Content-Type {ctype!r}: {where}"
        assert isinstance(r.body, dict), where


class Client:
    """requests.Session over the server's current base URL (re-read per call,
    so a client lives through server.restart())."""

    def __init__(self, server, token=None):
        self.server = server
        self.http = requests.Session()
        self.token = token
        if token:
            self.http.headers["Authorization"] = "Bearer " + token

    def call(self, method, path, body=_NONE, *, data=None, params=None, headers=None,
             timeout=60):
        kw = {}
        if body is not _NONE:
            kw["data"] = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        elif data is not None:
            kw["data"] = data
        resp = self.http.request(method, self.server.base + path, params=params,
                                 headers=headers, timeout=timeout, allow_redirects=False, **kw)
        r = _answer(resp)
        if path.startswith("/v1"):
            check_api_answer(method, path, r)
        return r

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=_NONE, **kw):
        return self.call("POST", path, body, **kw)

    def put(self, path, body=_NONE, **kw):
        return self.call("PUT", path, body, **kw)

    def patch(self, path, body=_NONE, **kw):
        return self.call("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


class User(Client):
    """A registered, logged-in user (one session = one device)."""

    def __init__(self, server, user, password, token, session_id):
        super().__init__(server, token)
        self.user = user
        self.id = user["id"]
        self.username = user["username"]
        self.password = password
        self.session_id = session_id

    def __repr__(self):
        return f"User({self.id}, {self.username!r})"

    def device(self, device_name="another device"):
        """Logs in again: the same user on another session."""
        r = login(self.server, self.username, self.password, device_name)
        assert r.status == 201, r
        return User(self.server, r.body["user"], self.password, r.body["token"],
                    r.body["session_id"])

    # -- threads and messages, asserting success --
    def direct(self, other):
        st, b = self.post("/v1/threads", {"member_ids": [other.id]})
        assert st in (200, 201), (st, b)
        return b["thread"]

    def group(self, *others, title="a group"):
        body = {"member_ids": [o.id for o in others]}
        if title is not None:
            body["title"] = title
        st, b = self.post("/v1/threads", body)
        assert st == 201, (st, b)
        return b["thread"]

    def thread(self, tid):
        st, b = self.get(f"/v1/threads/{tid}")
        assert st == 200, (st, b)
        return b["thread"]

    def send(self, tid, body="hello", cmid=None):
        """POST a message; returns the R (status not checked)."""
        return self.post(f"/v1/threads/{tid}/messages",
                         {"client_msg_id": cmid or str(uuid.uuid4()), "body": body})

    def say(self, tid, body="hello", cmid=None):
        """Sends and asserts 201; returns the message."""
        r = self.send(tid, body, cmid)
        assert r.status == 201, r
        return r.body["message"]

    def history(self, tid, **params):
        st, b = self.get(f"/v1/threads/{tid}/messages", params=params)
        assert st == 200, (st, b)
        return b

    def receipts(self, tid):
        st, b = self.get(f"/v1/threads/{tid}/receipts")
        assert st == 200, (st, b)
        return {r["user_id"]: r for r in b["receipts"]}


def unique_name(prefix="u"):
    return f"{prefix}{secrets.token_hex(5)}"


def _retry_busy(fn):
    """Calls fn() until it does not answer 503 (the hasher saturated)."""
    for _ in range(50):
        r = fn()
        if r.status != 503:
            return r
        time.sleep(0.1)
    return r


def register(server, username, password, display_name=None):
    body = {"username": username, "password": password}
    if display_name is not None:
        body["display_name"] = display_name
    return _retry_busy(lambda: Client(server).post("/v1/users", body))


def login(server, username, password, device_name=None):
    body = {"username": username, "password": password}
    if device_name is not None:
        body["device_name"] = device_name
    return _retry_busy(lambda: Client(server).post("/v1/sessions", body))


def make_user(server, name=None, password=None, display_name=None, device="pytest"):
    name = name or unique_name()
    password = password or "pw-" + secrets.token_hex(8)
    r = register(server, name, password, display_name)
    assert r.status == 201, r
    r = login(server, name, password, device)
    assert r.status == 201, r
    return User(server, r.body["user"], password, r.body["token"], r.body["session_id"])


@pytest.fixture
def new_user(server):
    return lambda **kw: make_user(server, **kw)


@pytest.fixture
def new_users(server):
    def make(n, **kw):
        with ThreadPoolExecutor(4) as ex:
            return list(ex.map(lambda _: make_user(server, **kw), range(n)))
    return make


@pytest.fixture
def anon(server):
    return Client(server)


def problem(r, status, code=None):
    """Asserts that r is an RFC 9457 problem with this status (and code)."""
    assert r.status == status, f"expected {status} {code or ''}, got {r!r}"
    ctype = r.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip() == "application/problem+json", \
        f"Content-Type {ctype!r} for {r!r}"
    b = r.body
    assert isinstance(b, dict), r
    assert b.get("status") == status, r
    assert isinstance(b.get("code"), str) and re.fullmatch(r"[a-z][a-z0-9_]*", b["code"]), r
    assert isinstance(b.get("title"), str) and b["title"], r
    assert isinstance(b.get("detail"), str), r
    if code is not None:
        assert b["code"] == code, f"expected code {code}, got {r!r}"
    return b


def raw_http(server, method, path, headers=None, body=None, timeout=30):
    """One request with the path sent byte for byte (no client normalisation).
    Returns (status, headers dict with lower-case names, body bytes)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        hdrs = dict(headers or {})
        if body is not None and "Content-Length" not in hdrs:
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body is not None:
            conn.send(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def raw_socket(server, request_head, body=b"", timeout=30):
    """Writes request_head on a fresh socket, then body from another thread
    while the answer is read (the server may answer before the body is sent,
    and close), until the server closes or the answer is complete. Returns
    (status, headers dict with lower-case names, body bytes)."""
    s = socket.create_connection((server.host, server.port), timeout=timeout)
    s.sendall(request_head)

    def pump():
        try:
            view = memoryview(body)
            while view:
                view = view[s.send(view[:65536]):]
        except OSError:
            pass  # the server answered early and closed

    sender = threading.Thread(target=pump, daemon=True)
    sender.start()
    buf = b""
    try:
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            buf += chunk
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if m and len(rest) >= int(m.group(1)):
                    break
    finally:
        try:
            s.shutdown(socket.SHUT_RDWR)  # wakes the sender
        except OSError:
            pass
        sender.join(10)
        s.close()
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines and lines[0].startswith(b"HTTP/1."), f"no HTTP answer: {buf[:200]!r}"
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.decode().strip().lower()] = v.decode().strip()
    return status, headers, rest
