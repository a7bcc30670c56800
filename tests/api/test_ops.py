"""Operations endpoints, the static browser app, and chatd --check-config."""
import re
import shutil
import subprocess
import time

import pytest

from conftest import CHATD_BIN, REPO, problem, raw_http

INDEX = (REPO / "www" / "index.html").read_bytes()


def test_healthz(anon):
    st, b = anon.get("/healthz")
    assert st == 200
    assert b == {"status": "ok"}


def test_readyz(anon):
    r = anon.get("/readyz")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("application/json")


def test_metrics_counts_requests(anon):
    def count(text, route, status):
        m = re.search(r'^chatd_http_requests_total\{route="%s",status="%s"\} (\d+)$'
                      % (re.escape(route), status), text, re.M)
        return int(m.group(1)) if m else 0

    for _ in range(3):
        assert anon.get("/healthz").status == 200
    r = anon.get("/metrics")
    assert r.status == 200
    assert "# TYPE chatd_http_requests_total counter" in r.text
    before = count(r.text, "GET /healthz", "2xx")
    assert before >= 3
    assert anon.get("/healthz").status == 200
    after = count(anon.get("/metrics").text, "GET /healthz", "2xx")
    assert after == before + 1
    # every sample line is "name{labels} value" or "name value"
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(r'[a-z_:][a-z0-9_:]*'
                                r'(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? '
                                r'([0-9.eE+-]+|[+-]Inf|NaN)', line), line


def test_metrics_is_prometheus_text(anon):
    r = anon.get("/metrics")
    assert r.status == 200
    assert "chatd_http_requests_total" in r.text
    # Prometheus' text exposition format is announced as text/plain; version=0.0.4
    assert r.headers.get("Content-Type", "").startswith("text/plain"), dict(r.headers)


def test_root_serves_index_html(anon):
    r = anon.get("/")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.text.encode() == INDEX


@pytest.mark.parametrize("path", ["/index.html", "/some/client/route", "/threads/12",
                                  "/no-such-file.js"])
def test_unknown_paths_serve_index_html(anon, path):
    r = anon.get(path)
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.text.encode() == INDEX


def test_static_post_is_405(anon):
    r = anon.post("/index.html", {"x": 1})
    problem(r, 405, "method_not_allowed")
    assert "GET" in r.headers["Allow"]


@pytest.mark.parametrize("path", [
    "/../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
    "/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/./../../../../etc/passwd",
    "/..",
    "/../sql/001_init.sql",
    "/%2e%2e/sql/001_init.sql",
    "/../Makefile",
    "/%2e%2e/Makefile",
    "//etc/passwd",
    "/%2fetc%2fpasswd",
    "/foo/../../sql/001_init.sql",
])
def test_static_never_serves_outside_www(server, path):
    status, headers, body = raw_http(server, "GET", path)
    assert b"root:" not in body
    assert b"CREATE TABLE" not in body
    assert b"build/chatd" not in body
    if status == 200:
        assert body == INDEX, (path, body[:200])
    else:
        assert status in (400, 404), (path, status, body[:200])


def test_database_outage_is_503_and_recovers(server, db, new_users):
    """/readyz says 503 while the database is down, /healthz stays 200, API
    calls answer 503 unavailable (never 401: a client must not drop its
    token for an outage, nor 500), and all is well once it is back."""
    a, b = new_users(2)
    d = a.direct(b)
    a.say(d["id"], "before the outage")
    db.stop()
    try:
        r = a.get("/readyz")
        problem(r, 503, "unavailable")
        assert r.headers.get("Retry-After", "").isdigit()
        assert a.get("/healthz").status == 200
        for r in (a.get("/v1/me"), a.get(f"/v1/threads/{d['id']}"), a.send(d["id"], "lost"),
                  a.get("/v1/threads"), b.get(f"/v1/threads/{d['id']}/messages")):
            problem(r, 503, "unavailable")
            assert int(r.headers["Retry-After"]) > 0
    finally:
        db.start()
    deadline = time.monotonic() + 30
    while a.get("/readyz").status != 200:
        assert time.monotonic() < deadline, "chatd did not see the database come back"
        time.sleep(0.1)
    # every worker thread reconnects by itself: no 5xx once the database answers
    for _ in range(40):
        st, body = b.get(f"/v1/threads/{d['id']}")
        assert st == 200, body
    assert [m["body"] for m in b.history(d["id"])["messages"]] == ["before the outage"]
    assert a.say(d["id"], "after the outage")["seq"] == 2


# --------------------------------------------------------------------------
# chatd --check-config
# --------------------------------------------------------------------------

def check_config(server, **env):
    e = server._env()
    e.update(env)
    return subprocess.run([CHATD_BIN, "--check-config"], cwd=REPO, env=e, capture_output=True,
                          text=True, timeout=60)


def test_check_config_passes_on_the_running_setup(server):
    r = check_config(server)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok    every migration applied" in r.stdout
    assert r.stdout.rstrip().endswith("chatd: configuration ok")
    assert "FAIL" not in r.stdout


def test_check_config_names_what_is_wrong(server, tmp_path):
    r = check_config(server, CHAT_WWW_ROOT=str(tmp_path), CHAT_APNS_KEY_FILE=str(tmp_path / "no.p8"))
    assert r.returncode == 1
    assert "FAIL  www_root holds index.html" in r.stdout
    assert "FAIL  APNs key file readable" in r.stdout
    assert "ok    every migration applied" in r.stdout


def test_check_config_with_a_missing_migration(server, tmp_path):
    sql = tmp_path / "sql"
    shutil.copytree(REPO / "sql", sql)
    (sql / "999_not_yet.sql").write_text("SELECT 1;\n")
    r = check_config(server, CHAT_SQL_DIR=str(sql))
    assert r.returncode == 1
    assert "FAIL  every migration applied" in r.stdout
    # Nothing was applied.
    assert check_config(server, CHAT_SQL_DIR=str(sql)).returncode == 1


def test_check_config_refuses_a_bad_setting(server):
    r = check_config(server, CHAT_THREADS="0")
    assert r.returncode == 2
    assert "threads" in r.stderr
    r = check_config(server, CHAT_LOG_FORMAT="xml")
    assert r.returncode == 2
    assert "log_format" in r.stderr


def test_check_config_with_no_database(server):
    r = check_config(server, CHAT_DB_URL="mysql://root@127.0.0.1:1/chat")
    assert r.returncode == 1
    assert "FAIL  database reachable" in r.stdout


# --------------------------------------------------------------------------
# The systemd unit (tools/systemd/chatd.service)
# --------------------------------------------------------------------------

def test_systemd_unit_is_valid_and_sandboxed(tmp_path):
    """systemd's own checker accepts the unit (with the binary where this
    build put it), and rates its exposure 2.0 or better ("OK")."""
    unit = (REPO / "tools" / "systemd" / "chatd.service").read_text()
    assert "ExecStart=/usr/local/bin/chatd --config /etc/chatd/chatd.conf\n" in unit
    path = tmp_path / "chatd.service"
    path.write_text(unit.replace("/usr/local/bin/chatd", CHATD_BIN))
    r = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "", r.stderr
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=20",
                        str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"Overall exposure level for chatd\.service: ([0-9.]+)", r.stdout)
    assert m and float(m.group(1)) <= 2.0, r.stdout[-500:]
