"""test_api_rr.py — the API tests (tests/api) against the whole cluster, with
nginx balancing round robin: every request may land on another chatd node,
so every test of the API also tests what the nodes share (the database, the
Redis bus: wake-ups, logouts, presence, typing).

A cluster with NGINX_BALANCE=rr (tests/cluster/cluster.py), then pytest on
tests/api in a subprocess with CHAT_API_URL=<nginx URL>: tests/api/conftest.py
then starts no chatd and no MariaDB of its own, and skips the tests that
restart or kill chatd, or need a database or a chatd with other settings of
their own (the presence tests among them: they need a chatd with a 2 s
presence window, and most of them read one process's /metrics, which nginx
hides).

The tests listed in CANNOT_HOLD are left out (--deselect), each with the reason
it cannot hold through nginx or round robin; everything else must pass. The
counts and every failure's name are printed. After each run the cluster is
shut down and the chatd logs must hold no sanitizer report.
"""

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from cluster import REPO, Cluster

RUN_TIMEOUT_S = int(os.environ.get("API_RR_TIMEOUT", "2400"))

# Tests that cannot hold through a load balancer, and why. Not chatd bugs.
CANNOT_HOLD = {
    # nginx answers before chatd does (its own limits, locations, pages):
    "tests/api/test_accounts.py::test_oversized_headers_are_431_and_the_connection_still_serves":
        "nginx refuses the large header itself: 400 'Request Header Or Cookie Too Large' (HTML), "
        "not chatd's 431 problem+json",
    "tests/api/test_bad_input.py::test_unknown_route_is_404_problem[/v1]":
        "nginx redirects GET /v1 to /v1/ (301, HTML): only /v1/ is proxied",
    "tests/api/test_bad_input.py::test_wrong_method_is_405_with_allow[POST-/metrics-allowed22]":
        "nginx hides /metrics (404) by design",
    "tests/api/test_ops.py::test_metrics_counts_requests": "nginx hides /metrics (404) by design",
    "tests/api/test_ops.py::test_metrics_is_prometheus_text": "nginx hides /metrics (404) by design",
    "tests/api/test_ops.py::test_static_post_is_405":
        "nginx serves www/ itself: its 405 is HTML, not problem+json",
    # round robin moves a device's polls between nodes:
    "tests/api/test_presence.py::test_typing_reaches_a_poll_that_comes_just_after_once":
        "the typing event is kept for a poll that comes just after only on the nodes where the "
        "device polled before (its user's route); the next poll lands on another node. Holds "
        "with sticky balancing",
    "tests/api/test_presence.py::test_typing_reaches_the_other_members_parked_poll":
        "a device is kept from getting an ephemeral event twice by the node it polls; each "
        "node where the member polled lately queues the typing for the member's next poll, so "
        "a device whose polls go round the nodes may get it from each. Holds with sticky "
        "balancing",
    "tests/api/test_contacts.py::test_contact_presence":
        "a user's first request on one node reaches the cluster's presence set at that node's "
        "next presence tick (200 ms); a contact read on another node within that moment still "
        "says offline (the serving node itself answers online at once). Holds with sticky "
        "balancing",
    "tests/api/test_accounts.py::test_session_last_seen_at_moves_with_use":
        "a session's use is written to last_seen_at by the node that saw it, once a second "
        "(its janitor); GET /v1/sessions on another node right after does not see it yet",
    "tests/api/test_receipts_live.py::test_delivered_read_and_unread_counts":
        "it assumes that a poll started after two sends' 201 returns both messages; a node "
        "whose tail the bus filled with the first but not yet the second answers the prefix "
        "(src/live/tail.h: a read returns a prefix of the stream), the next poll acknowledges "
        "the first, and delivered_seq is 1 where the test wants 0",
}


def test_api_tests_pass_through_nginx_round_robin():
    pytest_args = ["tests/api"] + [f"--deselect={t}" for t in CANNOT_HOLD]
    t0 = time.monotonic()
    with Cluster(balance="rr") as c:
        c.up()
        print(f"\nrr cluster up in {time.monotonic() - t0:.1f} s: {c.nginx_url}")
        with tempfile.TemporaryDirectory(prefix="chatd-api-rr-") as tmp:
            xml = Path(tmp) / "junit.xml"
            env = dict(os.environ, CHAT_API_URL=c.nginx_url)
            args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs",
                    f"--junitxml={xml}"] + pytest_args
            args += os.environ.get("API_RR_ARGS", "").split()
            t1 = time.monotonic()
            r = subprocess.run(args, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
            took = time.monotonic() - t1
            counts, failed = _junit(xml)
        c.down()
        reports = c.sanitizer_reports()
    counts["deselected"] = len(CANNOT_HOLD)
    print(f"tests/api through nginx (rr) in {took:.0f} s: {counts}")
    for name in failed:
        print(f"  failed: {name}")
    tail = "\n".join(r.stdout.splitlines()[-80:])
    assert not reports, f"sanitizer reports in chatd logs: {reports}"
    assert r.returncode == 0, \
        f"tests/api through the rr cluster failed ({counts}):\n{tail}\n{r.stderr[-3000:]}"


def _junit(path):
    """(counts, names of failed or erroring tests) from pytest's JUnit XML."""
    counts = {"passed": 0, "skipped": 0, "failed": 0, "errors": 0}
    failed = []
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return counts, failed
    for case in root.iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None:
            counts["failed"] += 1
            failed.append(name)
        elif case.find("error") is not None:
            counts["errors"] += 1
            failed.append(name + " (error)")
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts, failed
