"""Attachments in an S3-compatible store (store = s3), against
tests/fakes/s3_fake.mjs, which checks every request's AWS Signature V4 as
strictly as S3 (issue 14): uploads land as objects, downloads come back
byte for byte through chatd with its headers, thumbnails too, collection
deletes the objects, and a wrong secret fails loudly, storing nothing."""
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import REPO, env_server, make_user
from test_attachments import fetch, make_png, send_with, sha, start_upload, upload, put_content

ACCESS, SECRET, BUCKET = "TESTACCESSKEY", "test/secret+key/0123456789", "chatd-test"


class S3Fake:
    def __init__(self):
        node = shutil.which("node")
        if node is None:
            pytest.fail("node is needed for tests/fakes/s3_fake.mjs", pytrace=False)
        env = dict(os.environ, S3_FAKE_ACCESS=ACCESS, S3_FAKE_SECRET=SECRET,
                   S3_FAKE_BUCKET=BUCKET)
        self.proc = subprocess.Popen([node, str(REPO / "tests" / "fakes" / "s3_fake.mjs")],
                                     cwd=REPO, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        first = []
        got = threading.Event()

        def drain(out):
            for ln in out:
                if not got.is_set():
                    first.append(ln.decode())
                    got.set()
            got.set()

        threading.Thread(target=drain, args=(self.proc.stdout,), daemon=True).start()
        got.wait(10)
        assert first and first[0].startswith("s3-fake: listening on "), first
        self.base = first[0].split("listening on ")[1].strip()

    def get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=10) as r:
            return json.loads(r.read())

    def objects(self):
        return self.get("/__objects")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def s3():
    f = S3Fake()
    yield f
    f.stop()


def s3_env(s3, secret=SECRET, **more):
    return {"CHAT_STORE": "s3", "CHAT_S3_ENDPOINT": s3.base, "CHAT_S3_BUCKET": BUCKET,
            "CHAT_S3_ACCESS_KEY": ACCESS, "CHAT_S3_SECRET_KEY": secret, **more}


@pytest.fixture(scope="module")
def s3_server(db, s3, tmp_path_factory):
    media = str(tmp_path_factory.mktemp("s3-media"))
    env = s3_env(s3, CHAT_MEDIA_DIR=media, CHAT_UPLOAD_EXPIRY_S="2",
                 CHAT_JANITOR_INTERVAL_S="1", CHAT_BLOB_GC_GRACE_S="0")
    with env_server(db, "att-s3-", env) as s:
        s.media = media
        yield s


def key_of(h):
    return f"blobs/{h[:2]}/{h[2:4]}/{h}"


def test_config_says_s3(s3_server):
    u = make_user(s3_server)
    assert u.get("/v1/config").body["features"]["attachment_store"] == "s3"


def test_upload_send_download_through_s3(s3_server, s3):
    alice, bob = make_user(s3_server), make_user(s3_server)
    t = alice.direct(bob)
    data = os.urandom(700_000)
    up = start_upload(alice, data, "big.bin")
    assert put_content(alice, up["id"], data[:300_000], f"bytes 0-299999/{len(data)}").status == 200
    r = put_content(alice, up["id"], data[300_000:], f"bytes 300000-{len(data) - 1}/{len(data)}")
    assert r.status == 200
    att = r.body["upload"]["attachment"]
    assert att["sha256"] == sha(data)
    objs = s3.objects()
    assert objs.get(key_of(att["sha256"])) == len(data)
    # Not kept in a local blobs/ directory.
    assert not os.path.exists(os.path.join(s3_server.media, "blobs", att["sha256"][:2]))
    assert send_with(alice, t["id"], [up["id"]]).status == 201
    d = fetch(bob, att["url"])
    assert d.status_code == 200 and d.content == data
    assert d.headers["X-Content-Type-Options"] == "nosniff"
    r = fetch(bob, att["url"], {"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    # Every request the fake saw carried a valid signature.
    assert all(e["ok"] for e in s3.get("/__log"))


def test_thumbnail_in_s3(s3_server, s3):
    u = make_user(s3_server)
    att = upload(u, make_png(800, 400), "p.png")["attachment"]
    assert att["thumbnail_url"]
    assert key_of(att["sha256"]) + ".webp" in s3.objects()
    d = fetch(u, att["thumbnail_url"])
    assert d.status_code == 200 and d.content[8:12] == b"WEBP"


def test_collection_deletes_objects(s3_server, s3):
    u = make_user(s3_server)
    data = os.urandom(5000)
    att = upload(u, data)["attachment"]
    key = key_of(att["sha256"])
    assert key in s3.objects()
    deadline = time.monotonic() + 15
    while key in s3.objects() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert key not in s3.objects()


def test_a_wrong_secret_stores_nothing(db, s3, tmp_path):
    with env_server(db, "att-s3-bad-", s3_env(s3, secret="not the secret",
                                             CHAT_MEDIA_DIR=str(tmp_path))) as s:
        u = make_user(s)
        before = dict(s3.objects())
        data = b"never stored"
        up = start_upload(u, data)
        r = put_content(u, up["id"], data)
        assert r.status == 500
        assert s3.objects() == before
        # The bytes are kept: the upload is still pending, to finish later.
        assert u.get(f"/v1/uploads/{up['id']}").body["upload"]["state"] == "pending"
    assert any(e["ok"] is False for e in s3.get("/__log"))
