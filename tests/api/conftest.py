"""conftest.py — the harness of the API tests: a real chatd over real HTTP.

One pytest session starts one private MariaDB (scripts/db.sh, in a fresh
temporary directory) and one chatd (CHATD_BIN, the sanitizer build under
`make test`) on an ephemeral port, and stops both at the end, also when tests
fail. chatd's stderr goes to a file per start; when a chatd exits non-zero or
its stderr holds a sanitizer report, the session fails and prints that stderr.
With CHAT_API_URL=http://host:port the tests run against that server instead
(e.g. a cluster behind nginx) and start nothing; the tests that would restart
chatd or need a database or chatd of their own are skipped (see ExternalServer).

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
import contextlib
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
                   "ERROR: ThreadSanitizer", "SUMMARY: UndefinedBehaviorSanitizer",
                   # TSan reports races, lock-order inversions, ... as warnings
                   "WARNING: ThreadSanitizer")

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
        # Attachments' bytes: one store for every chatd on the session's database.
        env.setdefault("CHAT_MEDIA_DIR", os.path.join(self.db.dir, "media"))
        # The tests open many connections from 127.0.0.1 at once.
        env.setdefault("CHAT_CONNECTION_LIMIT_PER_ADDRESS", "0")
        # The tests send bursts from one account; test_rate_limits.py turns
        # the limits on in a chatd of its own.
        env.setdefault("CHAT_RATE_LIMITS", "false")
        # As scripts/test.sh sets them, when the caller did not.
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        supp = REPO / "tests" / "lsan.supp"
        if supp.exists():
            env.setdefault("LSAN_OPTIONS", f"suppressions={supp}:print_suppressions=0")
        tsupp = REPO / "tests" / "tsan.supp"  # for CHATD_BIN=build/chatd-tsan
        if tsupp.exists():
            env.setdefault("TSAN_OPTIONS", f"suppressions={tsupp}:second_deadlock_stack=1")
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


# CHAT_API_URL=http://host:port runs the tests against a chatd this session
# does not start (e.g. a cluster behind nginx, tests/cluster/test_api_rr.py):
# the two fixtures above are replaced; nothing is started or stopped. Tests
# that restart or kill chatd, or that need the session's own MariaDB (to stop
# or crash it, or to run a second chatd with other settings on it: the
# push, presence, no-tail and small-fan-out servers), are skipped.
CHAT_API_URL = os.environ.get("CHAT_API_URL", "").rstrip("/")


class ExternalServer:
    """The chatd at CHAT_API_URL, with the attributes of Server that tests
    read; start/stop/restart skip the test that calls them."""

    proc = None

    def __init__(self, url):
        m = re.fullmatch(r"http://([^/:]+)(?::(\d+))?", url)
        if not m:
            pytest.fail(f"CHAT_API_URL must be http://host[:port], not {url!r}", pytrace=False)
        self.base, self.host, self.port = url, m.group(1), int(m.group(2) or 80)

    def _skip(self, what):
        pytest.skip(f"CHAT_API_URL is set: the test would {what} chatd, which runs elsewhere")

    def start(self):
        self._skip("start")

    def stop(self, kill9=False):
        self._skip("kill -9" if kill9 else "stop")

    def restart(self, kill9=False):
        self._skip("kill -9 and restart" if kill9 else "restart")

    def stderr_text(self, path=None):
        return ""

    def check_stderr(self):
        pass


if CHAT_API_URL:
    @pytest.fixture(scope="session")
    def db():  # noqa: F811 (replaces the fixture above)
        pytest.skip("CHAT_API_URL is set: the test needs the session's own MariaDB "
                    "(to stop or crash it, or to run a chatd with other settings on it)")

    @pytest.fixture(scope="session")
    def server():  # noqa: F811
        yield ExternalServer(CHAT_API_URL)


# Every fixture that runs a chatd; _chatd_survives watches those a test used.
SERVER_FIXTURES = ("server", "push_server", "presence_server", "small_fanout_server")


@pytest.fixture(autouse=True)
def _chatd_survives(request):
    """After each test: if a chatd it used died during it (a crash, a
    sanitizer abort), fail that test with chatd's stderr, and start that chatd
    again so that the rest of the session still tests something. The death
    stays in SERVER_PROBLEMS, so the session fails too."""
    yield
    for name in SERVER_FIXTURES:
        if name not in request.fixturenames:
            continue
        s = request.getfixturevalue(name)
        if s.proc is not None and s.proc.poll() is not None:
            status, text = s.proc.returncode, s.stderr_text()
            s.stop()  # records the death
            s.start()
            pytest.fail(f"chatd ({name}) died (status {status}) during this test; its stderr:\n"
                        f"{text}", pytrace=False)


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

    def known_by(self, *others):
        """Each of others adds this user as a contact, so that this user's
        group adds of theirs are not message requests. Returns self."""
        for o in others:
            r = o.put(f"/v1/contacts/{self.id}", {})
            assert r.status in (200, 201), r
        return self

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


# --------------------------------------------------------------------------
# Push notifications: keys made with openssl, the provider fake, a chatd that
# pushes to it (tests/api/test_push.py; the fake is tests/fakes/push_fake.mjs)
# --------------------------------------------------------------------------

PUSH_FAKE_JS = REPO / "tests" / "fakes" / "push_fake.mjs"
PUSH_APNS_TEAM_ID = "TEAM4PUSH1"
PUSH_APNS_KEY_ID = "KEY4PUSH01"
PUSH_APNS_TOPIC = "com.example.chat"
PUSH_FCM_PROJECT = "proj-123"
PUSH_FCM_EMAIL = f"chatd-push@{PUSH_FCM_PROJECT}.iam.gserviceaccount.com"
PUSH_GRACE_MS = 1000
PUSH_MAX_ATTEMPTS = 4


def _openssl(*args, cwd=None):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        pytest.fail(f"openssl {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}", pytrace=False)
    return r.stdout


class PushKeys:
    """Keys generated for this session: .dir; APNs .apns_key (the .p8, EC P-256
    PKCS#8 PEM) and .apns_pub; FCM .fcm_key (RSA 2048) and .fcm_pub,
    .fcm_key_id; TLS .cert/.key (self-signed for IP 127.0.0.1, also the CA file
    chatd and the control client trust); .fcm_credentials, the service-account
    JSON, exists once the fake runs (its token_uri names the fake's port)."""

    def __init__(self, d):
        self.dir = d
        self.apns_key = os.path.join(d, "apns.p8")
        self.apns_pub = os.path.join(d, "apns_pub.pem")
        self.fcm_key = os.path.join(d, "fcm_key.pem")
        self.fcm_pub = os.path.join(d, "fcm_pub.pem")
        self.fcm_key_id = secrets.token_hex(20)
        self.cert = os.path.join(d, "cert.pem")
        self.key = os.path.join(d, "key.pem")
        self.fcm_credentials = os.path.join(d, "fcm_service_account.json")

    def write_fcm_credentials(self, token_uri):
        sa = {"type": "service_account", "project_id": PUSH_FCM_PROJECT,
              "private_key_id": self.fcm_key_id, "private_key": Path(self.fcm_key).read_text(),
              "client_email": PUSH_FCM_EMAIL, "client_id": "1234567890",
              "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri}
        Path(self.fcm_credentials).write_text(json.dumps(sa, indent=2))


@pytest.fixture(scope="session")
def push_keys():
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed; the push tests make their keys with it",
                    pytrace=False)
    d = tempfile.mkdtemp(prefix="chatd-push-keys-")
    try:
        k = PushKeys(d)
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", k.apns_key)
        _openssl("pkey", "-in", k.apns_key, "-pubout", "-out", k.apns_pub)
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                 "-out", k.fcm_key)
        _openssl("pkey", "-in", k.fcm_key, "-pubout", "-out", k.fcm_pub)
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                 "-keyout", k.key, "-out", k.cert)
        yield k
    finally:
        shutil.rmtree(d, ignore_errors=True)


class PushFake:
    """The running tests/fakes/push_fake.mjs: .base ("https://127.0.0.1:PORT"),
    .port; .requests(token=None) -> every recorded provider request (or those
    of one device token; "oauth" for the token endpoint); .reset();
    .script(token, responses); .expect_topic(token, topic)."""

    def __init__(self, keys):
        node = shutil.which("node")
        if node is None:
            pytest.fail("node (>= 18) is not installed; the push tests run their APNs/FCM "
                        "fake on it", pytrace=False)
        self.keys = keys
        self.stderr_path = os.path.join(keys.dir, "push_fake.stderr")
        with open(self.stderr_path, "wb") as errf:
            self.proc = subprocess.Popen(
                [node, str(PUSH_FAKE_JS), "--cert", keys.cert, "--key", keys.key,
                 "--apns-pub", keys.apns_pub, "--fcm-pub", keys.fcm_pub,
                 "--apns-team", PUSH_APNS_TEAM_ID, "--apns-kid", PUSH_APNS_KEY_ID,
                 "--apns-topic", PUSH_APNS_TOPIC, "--fcm-email", PUSH_FCM_EMAIL,
                 "--fcm-kid", keys.fcm_key_id, "--project", PUSH_FCM_PROJECT],
                cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errf)
        line = []
        got = threading.Event()

        def drain(out):
            for ln in out:
                if not got.is_set():
                    line.append(ln.decode(errors="replace"))
                    got.set()
            got.set()

        threading.Thread(target=drain, args=(self.proc.stdout,), daemon=True).start()
        got.wait(START_TIMEOUT_S)
        m = re.fullmatch(r"push_fake: listening on 127\.0\.0\.1:(\d+)\n?", line[0] if line else "")
        if not m:
            self.stop()
            pytest.fail(f"push_fake did not start (printed {line!r}); its stderr:\n"
                        f"{Path(self.stderr_path).read_text(errors='replace')}", pytrace=False)
        self.port = int(m.group(1))
        self.base = f"https://127.0.0.1:{self.port}"
        self.token_url = self.base + "/token"
        self.http = requests.Session()

    def _call(self, method, path, body=None):
        # verify= per call: REQUESTS_CA_BUNDLE in the environment beats Session.verify
        r = self.http.request(method, self.base + path, json=body, timeout=30,
                              verify=self.keys.cert)
        assert r.status_code == 200, f"push_fake {method} {path} -> {r.status_code} {r.text}"
        return r.json()

    def requests(self, token=None):
        return self._call("GET", "/_control/requests" +
                          ("" if token is None else "?token=" + requests.utils.quote(token)))

    def reset(self):
        self._call("POST", "/_control/reset")

    def script(self, token, responses):
        return self._call("POST", "/_control/script", {"token": token, "responses": responses})

    def expect_topic(self, token, topic):
        return self._call("POST", "/_control/expect", {"token": token, "apns_topic": topic})

    def stop(self):
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture(scope="session")
def push_fake(push_keys):
    f = PushFake(push_keys)
    try:
        push_keys.write_fcm_credentials(f.token_url)
        yield f
    finally:
        f.stop()


class PushServer(Server):
    """A second chatd, configured to push to the fake. It has a database of its
    own on the session's MariaDB: the default server (push off) would otherwise
    take its due jobs and log them `push_off`."""

    DB_NAME = "chat_push_test"

    def __init__(self, db, tmp, extra_env):
        super().__init__(db, tmp)
        self.extra_env = dict(extra_env)

    def _env(self):
        env = super()._env()
        env["CHAT_DB_URL"] = self.db.url.replace("/chat_test?", f"/{self.DB_NAME}?")
        env.update(self.extra_env)
        return env


@pytest.fixture(scope="module")
def push_server(db, push_keys, push_fake):
    env = {
        "CHAT_PUSH_GRACE_MS": str(PUSH_GRACE_MS),
        "CHAT_PUSH_MAX_ATTEMPTS": str(PUSH_MAX_ATTEMPTS),
        "CHAT_APNS_URL": push_fake.base,
        "CHAT_APNS_KEY_FILE": push_keys.apns_key,
        "CHAT_APNS_KEY_ID": PUSH_APNS_KEY_ID,
        "CHAT_APNS_TEAM_ID": PUSH_APNS_TEAM_ID,
        "CHAT_APNS_TOPIC": PUSH_APNS_TOPIC,
        "CHAT_FCM_URL": push_fake.base,
        "CHAT_FCM_CREDENTIALS_FILE": push_keys.fcm_credentials,
        "CHAT_PUSH_CA_FILE": push_keys.cert,
    }
    tmp = tempfile.mkdtemp(prefix="push-chatd-", dir=db.dir)
    s = PushServer(db, tmp, env)
    before = len(SERVER_PROBLEMS)
    try:
        s.start()
        yield s
    finally:
        s.stop()
        s.check_stderr()
    if len(SERVER_PROBLEMS) > before:
        pytest.fail("chatd (push) failed:\n" + "\n\n".join(SERVER_PROBLEMS[before:]),
                    pytrace=False)


# --------------------------------------------------------------------------
# The inbox (long-poll) helpers, and a second chatd with other settings
# --------------------------------------------------------------------------

DURABLE_TYPES = ("message", "thread", "receipt", "message_edited", "message_deleted",
                 "message_hidden", "message_unhidden", "reaction", "history_purged")


def inbox(user, since=None, timeout=None, limit=None, http_timeout=None):
    """GET /v1/inbox for one device; returns the R (status not checked)."""
    params = {}
    if since is not None:
        params["since"] = since
    if timeout is not None:
        params["timeout"] = timeout
    if limit is not None:
        params["limit"] = limit
    if http_timeout is None:
        try:
            http_timeout = min(float(timeout), 60) + 30
        except (TypeError, ValueError):
            http_timeout = 60  # no timeout, or one the server should refuse
    return user.get("/v1/inbox", params=params, timeout=http_timeout)


def metric(server, name):
    """The value of the counter or gauge `name` in the server's /metrics."""
    text = requests.get(server.base + "/metrics", timeout=10).text
    m = re.search(rf"^{name} (\d+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return int(m.group(1))


def inbox_cursor(user):
    """The device's current cursor (a poll without since)."""
    r = inbox(user)
    assert r.status == 200, r
    assert r.body["events"] == [], r
    assert isinstance(r.body["next"], str), r
    return r.body["next"]


def drain_inbox(user, since, limit=None, max_polls=1000):
    """Reads the device's stream from since until it is empty (timeout=0).
    Returns ([(event, next after the batch it came in)], last next);
    ephemeral events are left out."""
    out, cursor = [], since
    for _ in range(max_polls):
        r = inbox(user, cursor, timeout=0, limit=limit)
        assert r.status == 200, r
        durable = [e for e in r.body["events"] if e["type"] in DURABLE_TYPES]
        out.extend((e, r.body["next"]) for e in durable)
        if not durable and r.body["next"] == cursor:
            return out, cursor
        cursor = r.body["next"]
    raise AssertionError(f"the stream of {user} did not end within {max_polls} polls")


class Poller:
    """One device polling its inbox in a background thread as a client does:
    always passing back the `next` it was given. Keeps every batch and every
    event with its arrival time (time.monotonic())."""

    def __init__(self, user, since=None, timeout=1, limit=None):
        self.user, self.timeout, self.limit = user, timeout, limit
        self.cursor = since if since is not None else inbox_cursor(user)
        self.start_cursor = self.cursor
        self.batches = []  # (since, events, next)
        self.items = []    # (arrived_at, event, next)
        self.errors = []
        self.polls = 0
        self.cond = threading.Condition()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                r = inbox(self.user, self.cursor, timeout=self.timeout, limit=self.limit)
            except requests.RequestException as e:
                self.errors.append(repr(e))
                time.sleep(0.2)
                continue
            now = time.monotonic()
            if r.status != 200:
                with self.cond:
                    self.polls += 1
                    self.errors.append(repr(r))
                    self.cond.notify_all()
                self._stop.wait(0.2)
                continue
            with self.cond:
                self.polls += 1
                evs, nxt = r.body["events"], r.body["next"]
                self.batches.append((self.cursor, evs, nxt))
                self.items.extend((now, e, nxt) for e in evs)
                self.cursor = nxt
                self.cond.notify_all()

    def events(self, *types):
        """The events so far (of these types, when given)."""
        with self.cond:
            return [e for _, e, _ in self.items if not types or e["type"] in types]

    def durable(self):
        """[(event, next of its batch)] of message, thread and receipt events."""
        with self.cond:
            return [(e, n) for _, e, n in self.items if e["type"] in DURABLE_TYPES]

    def wait_for(self, pred, timeout=10, what="an event"):
        """Waits until an event satisfies pred; returns (event, arrived_at)."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                for at, e, _ in self.items[seen:]:
                    if pred(e):
                        return e, at
                seen = len(self.items)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.user} got no {what} within {timeout} s; got "
                        f"{[e for _, e, _ in self.items][-20:]}; errors {self.errors[-3:]}")
                self.cond.wait(min(left, 0.5))

    def wait_count(self, pred, n, timeout=10, what="events"):
        """Waits until n events satisfy pred; returns them."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [e for _, e, _ in self.items if pred(e)]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.user} got {len(got)} of {n} {what} "
                                         f"within {timeout} s; errors {self.errors[-3:]}")
                self.cond.wait(min(left, 0.5))

    def signal_stop(self, hurry=True):
        """Asks the loop to end. With hurry, a poll of the same session (one
        parked poll per session) answers the parked one at once; that poll
        is abandoned by the client and ends on the server within 1 s."""
        self._stop.set()
        if hurry and self.timeout > 1:
            try:
                inbox(self.user, self.cursor, timeout=1, http_timeout=0.3)
            except requests.RequestException:
                pass

    def stop(self, hurry=True):
        if not self._stop.is_set():
            self.signal_stop(hurry)
        deadline = time.monotonic() + self.timeout + 30
        while self.thread.is_alive() and time.monotonic() < deadline:
            self.thread.join(0.5)
            if hurry and self.thread.is_alive():
                self.signal_stop(hurry)  # its last poll had not registered yet
        assert not self.thread.is_alive(), f"the poller of {self.user} does not end"


def stop_pollers(*pollers):
    for p in pollers:
        p.signal_stop()
    for p in pollers:
        p.stop()


class ParkedPoll:
    """A client's long-poll from one cursor, in a thread of its own, until an
    answer brings what it waits for: message, thread or receipt events by
    default (`until` picks others). Answers with nothing of that (ephemeral
    events only: they may come at any time, and do not move the cursor) are
    polled again from their `next`, as a client would. .r is the final
    answer (or the last one at the deadline), .answers all of them, .started
    the start of the poll that brought .r, .answered_at its end, .error a
    transport error (e.g. chatd was killed)."""

    def __init__(self, user, since, timeout=30, deadline=60, until=None):
        self.user, self.since = user, since
        self.until = until or (lambda evs: any(e["type"] in DURABLE_TYPES for e in evs))
        self.r = self.error = self.started = self.answered_at = None
        self.answers = []
        self._outstanding = None  # start of the poll under way
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, args=(timeout, deadline), daemon=True)
        self.thread.start()

    def _run(self, timeout, deadline):
        end = time.monotonic() + deadline
        cursor = self.since
        while True:
            t = max(1, min(timeout, int(end - time.monotonic() + 0.999)))
            started = time.monotonic()
            with self._lock:
                self._outstanding = started
            try:
                r = inbox(self.user, cursor, timeout=t)
            except requests.RequestException as e:
                with self._lock:
                    self._outstanding = None
                self.error, self.started, self.answered_at = e, started, time.monotonic()
                return
            with self._lock:
                self._outstanding = None
            self.answers.append(r)
            done = r.status != 200 or self.until(r.body["events"])
            if done or time.monotonic() >= end:
                self.r, self.started, self.answered_at = r, started, time.monotonic()
                return
            cursor = r.body["next"]

    def events(self):
        return [e for r in self.answers if r.status == 200 for e in r.body["events"]]

    def alive(self):
        return self.thread.is_alive()

    def wait_parked(self, settle=0.5, timeout=15):
        """Waits until a poll has been under way for `settle` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.thread.is_alive(), f"the poll ended: {self.r!r} {self.error!r}"
            with self._lock:
                out = self._outstanding
            if out is not None and time.monotonic() - out >= settle:
                return
            assert time.monotonic() < deadline, "no poll stayed parked"
            time.sleep(0.05)

    def join(self, timeout=90):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the poll did not end"
        return self.r


class EnvServer(Server):
    """A chatd like `server` (same database) with extra environment settings,
    e.g. {"CHAT_PRESENCE_WINDOW_S": "2"}; its stderr files go to tmp."""

    def __init__(self, db, tmp, extra_env):
        super().__init__(db, tmp)
        self.extra_env = dict(extra_env)

    def _env(self):
        env = super()._env()
        env.update(self.extra_env)
        return env


@contextlib.contextmanager
def env_server(db, prefix, extra_env):
    """A second chatd on the session's database with extra settings, for a
    module fixture; stopped, and its stderr checked, when the block ends."""
    s = EnvServer(db, tempfile.mkdtemp(prefix=prefix, dir=db.dir), extra_env)
    try:
        s.start()
        yield s
    finally:
        s.stop()
        s.check_stderr()


SHORT_PRESENCE_WINDOW_S = 2


@pytest.fixture(scope="module")
def presence_server(db):
    """A second chatd, for one test module, with CHAT_PRESENCE_WINDOW_S=2.
    Users made on it (make_user(presence_server)) live in the same database,
    but parked polls, presence and typing are per process: a test using it
    does everything through it."""
    with env_server(db, "presence-", {"CHAT_PRESENCE_WINDOW_S": str(SHORT_PRESENCE_WINDOW_S)}) as s:
        yield s
