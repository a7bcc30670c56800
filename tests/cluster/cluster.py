"""cluster.py — the multi-node set-up (scripts/cluster.sh) for tests.

    from cluster import Cluster

    with Cluster() as c:            # a fresh CLUSTER_DIR in a temporary directory
        c.up()                      # 3 Galera nodes, Redis, c1..c3, nginx; returns when ready
        c.nginx_url                 # "http://127.0.0.1:PORT"
        c.chatd_urls["c2"]          # one chatd directly
        c.galera_ports["g1"], c.redis_port
        c.kill("c2"); c.restart("c2")        # kill -9 / bring back one part
        c.stop("g3"); c.cont("g3")           # SIGSTOP / SIGCONT
        c.sql("g2", "SELECT 1")              # rows (lists of str), as chat@127.0.0.1
        c.wsrep("g1")["wsrep_cluster_size"]  # SHOW GLOBAL STATUS LIKE 'wsrep%'
    # leaving the block (or the interpreter, or SIGTERM) stops everything

The parts are g1 g2 g3 redis c1 c2 c3 nginx. chatd is CHATD_BIN (default
build/chatd-asan, as for the API tests); balance (default NGINX_BALANCE, else
"hash"): "hash" is sticky by token, as in production, "rr" puts every request
possibly on another node.
Every call is bounded in time. Set CLUSTER_KEEP=1 to keep the directory
(data and logs) after the tests; it is removed otherwise.
"""

import atexit
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "cluster.sh"
PARTS = ("g1", "g2", "g3", "redis", "c1", "c2", "c3", "nginx")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ERROR: ThreadSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")
# Seconds: for each part to get ready (cluster.sh's CLUSTER_TIMEOUT), and for
# a whole `up` (fresh data: SST to two nodes on a busy machine).
PART_TIMEOUT_S = int(os.environ.get("CLUSTER_TIMEOUT", "180"))
UP_TIMEOUT_S = 4 * PART_TIMEOUT_S + 60
DOWN_TIMEOUT_S = 300


class ClusterError(Exception):
    pass


class Cluster:
    def __init__(self, chatd_bin=None, balance=None, env=None, keep=None):
        self.dir = tempfile.mkdtemp(prefix="chatd-cluster-")
        self.keep = bool(os.environ.get("CLUSTER_KEEP")) if keep is None else keep
        e = dict(os.environ)
        e.update(CLUSTER_DIR=self.dir,
                 NGINX_BALANCE=balance or os.environ.get("NGINX_BALANCE") or "hash",
                 CLUSTER_TIMEOUT=str(PART_TIMEOUT_S),
                 CHATD_BIN=str(chatd_bin or os.environ.get("CHATD_BIN")
                               or REPO / "build" / "chatd-asan"))
        # As scripts/test.sh sets them for the sanitizer build.
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        supp = REPO / "tests" / "lsan.supp"
        if supp.exists():
            e.setdefault("LSAN_OPTIONS", f"suppressions={supp}:print_suppressions=0")
        e.pop("CHAT_CONFIG", None)
        e.update(env or {})
        self._env = e
        self.vars = {}
        self._started = False
        self._closed = False
        atexit.register(self.close)
        _stop_on_sigterm()

    # -- the script -------------------------------------------------------
    def _run(self, *args, timeout=120):
        try:
            r = subprocess.run([str(SCRIPT), *args], cwd=REPO, env=self._env,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired as ex:
            raise ClusterError(f"cluster.sh {' '.join(args)}: no answer within {timeout} s\n"
                               f"{ex.stderr or ''}") from None
        if r.returncode != 0:
            raise ClusterError(f"cluster.sh {' '.join(args)} failed ({r.returncode}):\n"
                               f"{r.stdout}{r.stderr}")
        return r.stdout

    def up(self):
        """Starts everything; returns once every part is ready."""
        self._started = True
        try:
            self._run("up", timeout=UP_TIMEOUT_S)
        except ClusterError as ex:
            raise ClusterError(f"{ex}\n{self.log_tails()}") from None
        self.vars = self.env()
        return self

    def down(self):
        """Stops everything (nginx, chatd, Redis, then g3 g2 g1 cleanly)."""
        if not self._started:
            return
        try:
            self._run("down", timeout=DOWN_TIMEOUT_S)
        finally:
            self._kill_leftovers()
            self._started = False

    def kill(self, name):
        """kill -9 one part; returns once it is gone."""
        self._run("kill", _part(name), timeout=30)

    def stop(self, name):
        """SIGSTOP one part (it hangs, its sockets stay open)."""
        self._run("stop", _part(name), timeout=30)

    def cont(self, name):
        self._run("cont", _part(name), timeout=30)

    def restart(self, name):
        """Brings one part back (a Galera node rejoins by IST); returns once
        it is ready."""
        self._run("restart", _part(name), timeout=2 * PART_TIMEOUT_S + 60)

    def status(self):
        """cluster.sh status as text (it exits 3 when a part is down)."""
        r = subprocess.run([str(SCRIPT), "status"], cwd=REPO, env=self._env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=60)
        return r.stdout + r.stderr

    def env(self):
        """The assignments of `cluster.sh env` as a dict."""
        out = self._run("env", timeout=30)
        return dict(shlex.split(line)[0].split("=", 1) for line in out.splitlines() if "=" in line)

    # -- ports and URLs ---------------------------------------------------
    @property
    def nginx_url(self):
        return self.vars["NGINX_URL"]

    @property
    def chatd_urls(self):
        return {f"c{i}": self.vars[f"C{i}_URL"] for i in (1, 2, 3)}

    @property
    def galera_ports(self):
        return {f"g{i}": int(self.vars[f"G{i}_PORT"]) for i in (1, 2, 3)}

    @property
    def redis_port(self):
        return int(self.vars["REDIS_PORT"])

    @property
    def db_url(self):
        return self.vars["CHAT_DB_URL"]

    # -- the database -----------------------------------------------------
    def sql(self, node, query, timeout=30):
        """Runs query on Galera node g1/g2/g3 as chat@127.0.0.1 (the
        `mariadb` client: Debian's python3 has no MySQL driver); returns the
        rows of the last result as lists of strings."""
        r = subprocess.run(["mariadb", "--no-defaults", "-h127.0.0.1",
                            f"-P{self.galera_ports[node]}", "-uchat", "-pchat",
                            "--connect-timeout=10", "-N", "-B", "-e", query],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise ClusterError(f"{node}: {query!r} failed: {r.stderr.strip()}")
        return [line.split("\t") for line in r.stdout.splitlines()]

    def wsrep(self, node):
        """Node's wsrep status variables, name -> value."""
        return dict(self.sql(node, "SHOW GLOBAL STATUS LIKE 'wsrep%'"))

    # -- logs -------------------------------------------------------------
    def log_path(self, name):
        """The log of a part (or "cluster": the output of `up`)."""
        d = Path(self.dir)
        if name.startswith("g"):
            return d / name / "mysqld.err"
        return {"redis": d / "redis" / "redis.log",
                "nginx": d / "nginx" / "error.log"}.get(name, d / f"{name}.log")

    def log(self, name):
        try:
            return self.log_path(name).read_text(errors="replace")
        except OSError:
            return ""

    def log_tails(self, lines=15):
        out = []
        for name in ("cluster",) + PARTS:
            text = self.log(name)
            if text:
                tail = "\n".join(text.splitlines()[-lines:])
                out.append(f"--- {name} (last {lines} lines)\n{tail}")
        return "\n".join(out)

    def sanitizer_reports(self):
        """The chatd logs that hold a sanitizer report (check after down())."""
        return {n: self.log(n) for n in ("c1", "c2", "c3")
                if any(m in self.log(n) for m in SANITIZER_MARKS)}

    # -- teardown ---------------------------------------------------------
    def _kill_leftovers(self):
        """Last resort after a failed `down`: SIGKILL whatever the pid files
        still name (checked against the recorded start time)."""
        run = Path(self.dir) / "run"
        for f in run.glob("*.pid") if run.is_dir() else ():
            try:
                pid, start = (int(x) for x in f.read_text().split())
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, ValueError, IndexError):
                continue
            if int(stat[19]) == start and stat[0] not in ("Z", "X"):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def close(self):
        """Stops everything and removes the directory (unless keep)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.down()
        except (ClusterError, OSError):
            self._kill_leftovers()
        finally:
            if self.keep:
                print(f"cluster: kept {self.dir}")
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _part(name):
    if name not in PARTS:
        raise ValueError(f"unknown part {name!r}; one of {PARTS}")
    return name


def _stop_on_sigterm():
    """A SIGTERM to the test run unwinds it as Ctrl-C does (pytest stops and
    tears the fixtures down; context managers and atexit run) instead of
    leaving the cluster running. A SIGKILL cannot be caught: then
    `CLUSTER_DIR=<the directory> scripts/cluster.sh down` cleans up."""
    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            def on_term(signum, frame):
                raise KeyboardInterrupt(f"signal {signum}")
            signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread
        pass
