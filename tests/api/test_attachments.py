"""Attachments (API.md "Attachments", issue 14): uploads, resumable content,
sending, downloads with ranges, access, signed links, safety headers,
limits, garbage collection, and crash safety."""
import hashlib
import os
import socket
import subprocess
import time
import uuid

import pytest
import requests

from conftest import drain_inbox, env_server, inbox_cursor, make_user

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8ffff3f0005fe02fea7d6a4a50000000049454e44ae426082")


def sha(data):
    return hashlib.sha256(data).hexdigest()


def start_upload(u, data, filename="file.bin", **extra):
    r = u.post("/v1/uploads", {"filename": filename, "size": len(data), **extra})
    assert r.status == 201, r
    up = r.body["upload"]
    assert up["state"] == "pending" and up["received"] == 0 and up["size"] == len(data)
    return up


def put_content(u, uid, data, content_range=None, timeout=60):
    headers = {"Content-Type": "application/octet-stream"}
    if content_range:
        headers["Content-Range"] = content_range
    return u.put(f"/v1/uploads/{uid}/content", data=data, headers=headers, timeout=timeout)


def upload(u, data, filename="file.bin", **extra):
    """A complete upload; returns its upload view (with .attachment)."""
    up = start_upload(u, data, filename, **extra)
    r = put_content(u, up["id"], data)
    assert r.status == 200, r
    up = r.body["upload"]
    assert up["state"] == "complete" and up["received"] == len(data)
    return up


def send_with(u, tid, ids, body="", cmid=None):
    return u.post(f"/v1/threads/{tid}/messages",
                  {"client_msg_id": cmid or str(uuid.uuid4()), "body": body, "attachments": ids})


def fetch(u, path, headers=None, auth=True):
    h = dict(headers or {})
    if auth:
        h["Authorization"] = "Bearer " + u.token
    return requests.get(u.server.base + path, headers=h, timeout=30)


def test_config_shows_the_limits(anon):
    r = anon.get("/v1/config")
    assert r.status == 200
    lim = r.body["limits"]
    assert lim["upload_max_bytes"] >= 1 << 20
    assert lim["attachments_per_message_max"] >= 1
    assert r.body["features"]["attachments"] is True


def test_photo_end_to_end(new_users):
    alice, bob = new_users(2)
    t = alice.direct(bob)
    cursor = inbox_cursor(bob)
    data = os.urandom(300_000)
    up = upload(alice, data, "holiday.bin", sha256=sha(data))
    att = up["attachment"]
    assert att["sha256"] == sha(data) and att["size"] == len(data)
    assert att["filename"] == "holiday.bin"
    assert att["url"] == f"/v1/attachments/{att['id']}"
    r = send_with(alice, t["id"], [up["id"]], body="look")
    assert r.status == 201, r
    msg = r.body["message"]
    assert msg["body"] == "look" and msg["attachments"] == [att]
    # Bob sees it in the history and in his stream.
    hist = bob.history(t["id"])["messages"]
    assert hist[-1]["attachments"] == [att]
    ev = [e for e, _ in drain_inbox(bob, cursor)[0] if e["type"] == "message"]
    assert ev[-1]["message"]["attachments"] == [att]
    # Plain messages have an empty list.
    assert alice.say(t["id"], "plain")["attachments"] == []
    # Bob downloads it, byte for byte.
    d = fetch(bob, att["url"])
    assert d.status_code == 200 and d.content == data
    assert d.headers["Content-Type"] == "application/octet-stream"
    assert d.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in d.headers["Content-Security-Policy"]
    assert d.headers["Content-Disposition"].startswith("attachment; filename=\"holiday.bin\"")
    assert d.headers["ETag"] == f'"{sha(data)}"'
    assert d.headers["Accept-Ranges"] == "bytes"
    # Ranges.
    r = fetch(bob, att["url"], {"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == data[100:200]
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    r = fetch(bob, att["url"], {"Range": "bytes=-10"})
    assert r.status_code == 206 and r.content == data[-10:]
    r = fetch(bob, att["url"], {"Range": f"bytes={len(data) - 5}-"})
    assert r.status_code == 206 and r.content == data[-5:]
    r = fetch(bob, att["url"], {"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{len(data)}"
    # HEAD and a revalidation.
    h = requests.head(bob.server.base + att["url"],
                      headers={"Authorization": "Bearer " + bob.token}, timeout=30)
    assert h.status_code == 200 and int(h.headers["Content-Length"]) == len(data)
    assert h.content == b""
    r = fetch(bob, att["url"], {"If-None-Match": d.headers["ETag"]})
    assert r.status_code == 304 and r.content == b""


def test_a_png_is_shown_inline(new_users):
    alice, bob = new_users(2)
    t = alice.direct(bob)
    up = upload(alice, PNG, "dot.png")
    assert up["attachment"]["content_type"] == "image/png"
    assert send_with(alice, t["id"], [up["id"]]).status == 201
    d = fetch(bob, up["attachment"]["url"])
    assert d.status_code == 200 and d.content == PNG
    assert d.headers["Content-Type"] == "image/png"
    assert d.headers["Content-Disposition"].startswith("inline;")


@pytest.mark.parametrize("name,data", [
    ("evil.png", b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>"),
    ("pic.svg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">'
                b'<script>alert(1)</script></svg>'),
])
def test_html_and_svg_are_downloads(new_users, name, data):
    alice, bob = new_users(2)
    t = alice.direct(bob)
    up = upload(alice, data, name)
    assert up["attachment"]["content_type"] in ("text/html", "image/svg+xml", "text/xml")
    assert send_with(alice, t["id"], [up["id"]]).status == 201
    d = fetch(bob, up["attachment"]["url"])
    assert d.status_code == 200 and d.content == data
    assert d.headers["Content-Type"] == "application/octet-stream"
    assert d.headers["Content-Disposition"].startswith("attachment;")
    assert d.headers["X-Content-Type-Options"] == "nosniff"


def test_filename_with_non_ascii_and_quotes(new_users):
    alice, _ = new_users(2)
    up = upload(alice, b"x" * 10, 'Ünïcødé "report".txt')
    d = fetch(alice, up["attachment"]["url"])
    cd = d.headers["Content-Disposition"]
    assert 'filename="_n_c_d_ _report_.txt"' in cd or "filename=\"" in cd
    assert "filename*=UTF-8''%C3%9Cn%C3%AFc%C3%B8d%C3%A9%20%22report%22.txt" in cd


def test_resume_after_a_cut(new_user):
    u = new_user()
    data = os.urandom(200_000)
    up = start_upload(u, data)
    r = put_content(u, up["id"], data[:70_000], f"bytes 0-69999/{len(data)}")
    assert r.status == 200 and r.body["upload"]["received"] == 70_000
    assert r.body["upload"]["state"] == "pending"
    assert u.get(f"/v1/uploads/{up['id']}").body["upload"]["received"] == 70_000
    # The wrong offset, the wrong total.
    r = put_content(u, up["id"], data[60_000:], f"bytes 60000-{len(data) - 1}/{len(data)}")
    assert r.status == 409 and r.body["code"] == "upload_offset_mismatch"
    assert "70000" in r.body["detail"]
    r = put_content(u, up["id"], data[70_000:], f"bytes 70000-{len(data) - 1}/{len(data) + 1}")
    assert r.status == 422 and r.body["code"] == "upload_size_mismatch"
    r = put_content(u, up["id"], data[70_000:], "bytes 70000-x/5")
    assert r.status == 400
    # A cut in the middle of a body: what arrived is kept, the rest resumes.
    s = socket.create_connection((u.server.host, u.server.port))
    part = data[70_000:150_000]
    s.sendall((f"PUT /v1/uploads/{up['id']}/content HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: Bearer {u.token}\r\n"
               f"Content-Range: bytes 70000-{len(data) - 1}/{len(data)}\r\n"
               f"Content-Length: {len(data) - 70_000}\r\n\r\n").encode() + part)
    time.sleep(0.5)
    s.close()
    got = 0
    for _ in range(50):
        got = u.get(f"/v1/uploads/{up['id']}").body["upload"]["received"]
        if got == 150_000:
            break
        time.sleep(0.1)
    assert 70_000 <= got <= 150_000
    r = put_content(u, up["id"], data[got:], f"bytes {got}-{len(data) - 1}/{len(data)}")
    assert r.status == 200 and r.body["upload"]["state"] == "complete"
    att = r.body["upload"]["attachment"]
    assert att["sha256"] == sha(data)
    assert fetch(u, att["url"]).content == data
    # Complete: more bytes are refused.
    r = put_content(u, up["id"], b"x", f"bytes 0-0/{len(data)}")
    assert r.status == 409


def test_declared_hash_is_checked(new_user):
    u = new_user()
    data = os.urandom(1000)
    up = start_upload(u, data, sha256=sha(b"other"))
    r = put_content(u, up["id"], data)
    assert r.status == 422 and r.body["code"] == "upload_hash_mismatch"
    assert u.get(f"/v1/uploads/{up['id']}").body["upload"]["received"] == 0


def test_same_bytes_are_stored_once(new_user, db):
    u = new_user()
    data = os.urandom(5000)
    a = upload(u, data)["attachment"]
    b = upload(u, data)["attachment"]
    assert a["id"] != b["id"] and a["sha256"] == b["sha256"]
    path = os.path.join(db.dir, "media", "blobs", a["sha256"][:2], a["sha256"][2:4], a["sha256"])
    assert open(path, "rb").read() == data


def test_bad_upload_requests(new_user):
    u = new_user()
    for body, code in [
        ({"size": 10}, 400),
        ({"filename": "a", "size": 0}, 400),
        ({"filename": "", "size": 1}, 400),
        ({"filename": "a/b", "size": 1}, 400),
        ({"filename": "a\u202eb", "size": 1}, 400),
        ({"filename": "a", "size": "1"}, 400),
        ({"filename": "a", "size": 1, "sha256": "XYZ"}, 400),
        ({"filename": "a", "size": 1, "content_type": "no type"}, 400),
    ]:
        r = u.post("/v1/uploads", body)
        assert r.status == code, (body, r)


def test_upload_size_and_quota_limits(db):
    with env_server(db, "att-limits-", {"CHAT_UPLOAD_MAX_MB": "1", "CHAT_UPLOAD_QUOTA_MB": "2",
                                        "CHAT_UPLOADS_PENDING_MAX": "3"}) as s:
        u = make_user(s)
        r = u.post("/v1/uploads", {"filename": "big", "size": (1 << 20) + 1})
        assert r.status == 413 and r.body["code"] == "file_too_large"
        upload(u, os.urandom(1 << 20))
        start_upload(u, b"x" * (1 << 20))
        r = u.post("/v1/uploads", {"filename": "over", "size": 10})
        assert r.status == 413 and r.body["code"] == "quota_exceeded"
        v = make_user(s)
        ups = [start_upload(v, b"x") for _ in range(3)]
        r = v.post("/v1/uploads", {"filename": "more", "size": 1})
        assert r.status == 429 and r.headers.get("Retry-After")
        # Deleting one frees a place.
        assert v.delete(f"/v1/uploads/{ups[0]['id']}").status == 204
        assert v.post("/v1/uploads", {"filename": "x", "size": 1}).status == 201


def test_upload_rate_limit(db):
    with env_server(db, "att-rate-", {"CHAT_RATE_LIMITS": "true", "CHAT_RATE_UPLOAD_PER_MIN": "1",
                                      "CHAT_RATE_UPLOAD_BURST": "2"}) as s:
        u = make_user(s)
        codes = [u.post("/v1/uploads", {"filename": "f", "size": 1}).status for _ in range(3)]
        assert codes[:2] == [201, 201] and codes[2] == 429


def test_sending_checks_attachments(new_users):
    alice, bob, carol = new_users(3)
    t = alice.direct(bob)
    mine = upload(alice, b"abc")
    theirs = upload(carol, b"abc")
    pending = start_upload(alice, b"xyz")
    r = send_with(alice, t["id"], [theirs["id"]])
    assert r.status == 422 and r.body["code"] == "invalid_attachment"
    r = send_with(alice, t["id"], [pending["id"]])
    assert r.status == 422 and r.body["code"] == "invalid_attachment"
    r = send_with(alice, t["id"], [mine["id"], mine["id"]])
    assert r.status == 422 and r.body["code"] == "invalid_attachment"
    r = send_with(alice, t["id"], [999999999])
    assert r.status == 422
    r = send_with(alice, t["id"], list(range(1, 50)))
    assert r.status == 422 and r.body["code"] == "too_many_attachments"
    r = send_with(alice, t["id"], "x")
    assert r.status == 400
    r = alice.post(f"/v1/threads/{t['id']}/messages", {"client_msg_id": "e", "body": ""})
    assert r.status == 400
    # Nothing above used it: it goes once, and a retry returns the same.
    cmid = str(uuid.uuid4())
    r = send_with(alice, t["id"], [mine["id"]], cmid=cmid)
    assert r.status == 201
    again = send_with(alice, t["id"], [mine["id"]], cmid=cmid)
    assert again.status == 200 and again.body["message"] == r.body["message"]
    r = send_with(alice, t["id"], [mine["id"]])
    assert r.status == 422
    # Once in a message it is no longer an upload.
    assert alice.get(f"/v1/uploads/{mine['id']}").status == 404
    assert alice.delete(f"/v1/uploads/{mine['id']}").status == 404


def test_who_may_read(new_users):
    alice, bob, carol, dave = new_users(4)
    g = alice.group(bob, carol)
    up = upload(alice, b"secret bytes", "s.txt")
    att = up["attachment"]
    url = att["url"]
    # Before it is sent, only the uploader.
    assert fetch(alice, url).status_code == 200
    assert fetch(bob, url).status_code == 404
    assert send_with(alice, g["id"], [up["id"]]).status == 201
    assert fetch(bob, url).status_code == 200
    assert fetch(carol, url).status_code == 200
    # A stranger, a guessed id, the thumbnail, a link: 404.
    for path in (url, url + "/thumbnail", f"/v1/attachments/{att['id'] + 100000}"):
        r = fetch(dave, path)
        assert r.status_code == 404, path
        assert r.headers["Content-Type"] == "application/problem+json"
    assert dave.post(f"{url}/links").status == 404
    # Another user's upload.
    other = start_upload(carol, b"123")
    assert alice.get(f"/v1/uploads/{other['id']}").status == 404
    assert alice.delete(f"/v1/uploads/{other['id']}").status == 404
    assert put_content(alice, other["id"], b"123").status == 404
    # A member who leaves loses access.
    assert carol.delete(f"/v1/threads/{g['id']}/members/{carol.id}").status == 204
    assert fetch(carol, url).status_code == 404
    # No token.
    assert requests.get(alice.server.base + url, timeout=10).status_code == 401


def test_signed_links(new_users):
    alice, bob, carol = new_users(3)
    g = alice.group(bob, carol)
    up = upload(alice, PNG, "dot.png")
    assert send_with(alice, g["id"], [up["id"]]).status == 201
    r = bob.post(f"/v1/attachments/{up['id']}/links")
    assert r.status == 201
    link, exp = r.body["url"], r.body["expires_at"]
    assert exp > time.time() * 1000
    base = bob.server.base
    d = requests.get(base + link, timeout=10)
    assert d.status_code == 200 and d.content == PNG
    # Forged, or moved to another attachment: refused.
    forged = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    assert requests.get(base + forged, timeout=10).status_code == 401
    other = link.replace(f"/attachments/{up['id']}?", f"/attachments/{up['id'] + 1}?")
    assert requests.get(base + other, timeout=10).status_code == 401
    # The link stands for its user: carol's link dies with her membership.
    cl = carol.post(f"/v1/attachments/{up['id']}/links").body["url"]
    assert requests.get(base + cl, timeout=10).status_code == 200
    carol.delete(f"/v1/threads/{g['id']}/members/{carol.id}")
    assert requests.get(base + cl, timeout=10).status_code == 404


def test_expired_link(db):
    with env_server(db, "att-link-", {"CHAT_ATTACHMENT_LINK_TTL_S": "10"}) as s:
        u = make_user(s)
        up = upload(u, b"hello")
        link = u.post(f"/v1/attachments/{up['id']}/links").body["url"]
        assert requests.get(s.base + link, timeout=10).status_code == 200
        # Rewrite exp into the past: the signature no longer matches; and a
        # link whose own time passed is refused the same way.
        past = link.split("exp=")[0] + "exp=1&sig=" + link.split("sig=")[1]
        assert requests.get(s.base + past, timeout=10).status_code == 401


def test_gc_removes_expired_uploads_and_unreferenced_blobs(db):
    env = {"CHAT_UPLOAD_EXPIRY_S": "2", "CHAT_JANITOR_INTERVAL_S": "1",
           "CHAT_BLOB_GC_GRACE_S": "0"}
    with env_server(db, "att-gc-", env) as s:
        alice, bob = make_user(s), make_user(s)
        t = alice.direct(bob)
        kept_data, gone_data = os.urandom(3000), os.urandom(3000)
        kept = upload(alice, kept_data)
        gone = upload(alice, gone_data)
        pending = start_upload(alice, b"partial data")
        put_content(alice, pending["id"], b"partial", "bytes 0-6/12")
        assert send_with(alice, t["id"], [kept["id"]]).status == 201

        def blob(a):
            h = a["attachment"]["sha256"]
            return os.path.join(db.dir, "media", "blobs", h[:2], h[2:4], h)

        assert os.path.exists(blob(gone)) and os.path.exists(blob(kept))
        deadline = time.monotonic() + 15
        while os.path.exists(blob(gone)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not os.path.exists(blob(gone))
        assert alice.get(f"/v1/uploads/{gone['id']}").status == 404
        assert alice.get(f"/v1/uploads/{pending['id']}").status == 404
        # The one in a message stays.
        assert os.path.exists(blob(kept))
        d = fetch(bob, kept["attachment"]["url"])
        assert d.status_code == 200 and d.content == kept_data


def test_kill_during_an_upload_leaves_no_half_file(server, new_user):
    u = new_user()
    data = os.urandom(400_000)
    up = start_upload(u, data)
    s = socket.create_connection((server.host, server.port))
    s.sendall((f"PUT /v1/uploads/{up['id']}/content HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: Bearer {u.token}\r\nContent-Length: {len(data)}\r\n\r\n").encode()
              + data[:250_000])
    time.sleep(0.3)
    server.restart(kill9=True)
    s.close()
    r = u.get(f"/v1/uploads/{up['id']}")
    assert r.status == 200
    got = r.body["upload"]
    assert got["state"] == "pending" and got["received"] <= 250_000
    assert "attachment" not in got
    # It resumes and completes whole.
    r = put_content(u, up["id"], data[got["received"]:],
                    f"bytes {got['received']}-{len(data) - 1}/{len(data)}")
    assert r.status == 200
    att = r.body["upload"]["attachment"]
    assert att["sha256"] == sha(data)
    assert fetch(u, att["url"]).content == data


# --------------------------------------------------------------------------
# Pictures: dimensions and thumbnails (made in a limited child process)
# --------------------------------------------------------------------------

def make_png(width, height, idat=None):
    """A valid RGB PNG of a gradient (or with the given IDAT payload)."""
    import struct
    import zlib

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)

    if idat is None:
        rows = b"".join(b"\x00" + bytes((x * 255 // max(width - 1, 1)) % 256 for x in range(width)
                                        for _ in range(3)) for _ in range(height))
        idat = zlib.compress(rows, 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def image_size(path):
    out = subprocess.run(["vipsheader", "-f", "width", path], capture_output=True, text=True)
    w = int(out.stdout)
    h = int(subprocess.run(["vipsheader", "-f", "height", path], capture_output=True,
                           text=True).stdout)
    return w, h


def test_picture_gets_a_thumbnail(new_users, tmp_path):
    alice, bob = new_users(2)
    t = alice.direct(bob)
    up = upload(alice, make_png(1000, 500), "wide.png")
    att = up["attachment"]
    assert (att["width"], att["height"]) == (1000, 500)
    assert att["thumbnail_url"] == f"/v1/attachments/{att['id']}/thumbnail"
    assert send_with(alice, t["id"], [up["id"]]).status == 201
    d = fetch(bob, att["thumbnail_url"])
    assert d.status_code == 200 and d.headers["Content-Type"] == "image/webp"
    assert d.content[:4] == b"RIFF" and d.content[8:12] == b"WEBP"
    (tmp_path / "t.webp").write_bytes(d.content)
    assert image_size(str(tmp_path / "t.webp")) == (320, 160)
    # A signed link fetches the thumbnail too.
    link = bob.post(f"/v1/attachments/{att['id']}/links").body["url"]
    path, query = link.split("?")
    r = requests.get(bob.server.base + path + "/thumbnail?" + query, timeout=10)
    assert r.status_code == 200 and r.content == d.content
    # A stranger: 404.
    assert fetch(new_users(1)[0], att["thumbnail_url"]).status_code == 404


def test_small_picture_is_not_upscaled(new_user, tmp_path):
    u = new_user()
    att = upload(u, make_png(100, 50), "small.png")["attachment"]
    d = fetch(u, att["thumbnail_url"])
    (tmp_path / "s.webp").write_bytes(d.content)
    assert image_size(str(tmp_path / "s.webp")) == (100, 50)


def test_files_that_are_not_pictures_have_no_thumbnail(new_user):
    u = new_user()
    att = upload(u, b"just some text\n" * 10, "notes.txt")["attachment"]
    assert att["thumbnail_url"] is None and "width" not in att
    assert fetch(u, f"/v1/attachments/{att['id']}/thumbnail").status_code == 404


def test_pixel_bomb_gets_no_thumbnail(server, new_user):
    import zlib
    u = new_user()
    # The header says 30000 x 30000 (900 megapixels); the data is a few bytes.
    bomb = make_png(30000, 30000, idat=zlib.compress(b"\x00" * 1000))
    att = upload(u, bomb, "bomb.png")["attachment"]
    assert att["thumbnail_url"] is None
    assert att["content_type"] == "image/png"
    # Still served, as a file, and the server is fine.
    assert fetch(u, att["url"]).content == bomb
    assert requests.get(server.base + "/healthz", timeout=5).status_code == 200
    # A picture just over a lowered limit: no thumbnail either.
    with env_server(server.db, "att-pixels-", {"CHAT_THUMBNAIL_MAX_MEGAPIXELS": "1"}) as s:
        v = make_user(s)
        att = upload(v, make_png(1500, 800), "big.png")["attachment"]
        assert att["thumbnail_url"] is None and att["width"] == 1500


def test_broken_picture_is_still_a_file(server, new_user):
    u = new_user()
    data = make_png(200, 100)[:60]  # cut short in its pixels
    att = upload(u, data, "broken.png")["attachment"]
    assert fetch(u, att["url"]).content == data
    # libvips may make a thumbnail of what it could read, or none.
    assert fetch(u, f"/v1/attachments/{att['id']}/thumbnail").status_code in (200, 404)
    assert requests.get(server.base + "/healthz", timeout=5).status_code == 200


def jpeg_with_gps(tmp_path):
    """A small JPEG (made by vips) with an EXIF block holding an orientation
    and a GPS latitude."""
    import struct
    src = tmp_path / "plain.jpg"
    subprocess.run(["vips", "black", str(src), "64", "48"], check=True)
    plain = src.read_bytes()
    ifd0 = struct.pack("<H", 2) + struct.pack("<HHII", 0x0112, 3, 1, 6) + \
        struct.pack("<HHII", 0x8825, 4, 1, 38) + struct.pack("<I", 0)
    gps = struct.pack("<H", 2) + struct.pack("<HHI", 0x0001, 2, 2) + b"N\0\0\0" + \
        struct.pack("<HHII", 0x0002, 5, 3, 68) + struct.pack("<I", 0)
    data = struct.pack("<IIIIII", 52, 1, 31, 1, 0, 1)
    tiff = b"II*\0" + struct.pack("<I", 8) + ifd0 + gps + data
    payload = b"Exif\0\0" + tiff
    return plain[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + plain[2:]


def exif_fields(path):
    out = subprocess.run(["vipsheader", "-a", str(path)], capture_output=True, text=True).stdout
    return {line.split(":")[0].strip() for line in out.splitlines() if line.startswith("exif-")}


def test_jpeg_comes_back_without_gps(new_users, tmp_path):
    alice, bob = new_users(2)
    t = alice.direct(bob)
    photo = jpeg_with_gps(tmp_path)
    (tmp_path / "sent.jpg").write_bytes(photo)
    before = exif_fields(tmp_path / "sent.jpg")
    assert "exif-ifd3-GPSLatitude" in before and "exif-ifd0-Orientation" in before
    up = upload(alice, photo, "IMG_0001.jpg", sha256=sha(photo))
    att = up["attachment"]
    assert att["content_type"] == "image/jpeg" and (att["width"], att["height"]) == (64, 48)
    assert send_with(alice, t["id"], [up["id"]]).status == 201
    got = fetch(bob, att["url"]).content
    assert got != photo and att["sha256"] == sha(got) and att["size"] == len(got)
    (tmp_path / "got.jpg").write_bytes(got)
    after = exif_fields(tmp_path / "got.jpg")
    assert not any("ifd3" in f or "GPS" in f for f in after), after
    assert "exif-ifd0-Orientation" in after
    # The image data itself is untouched: everything after the EXIF block.
    assert got.endswith(photo[-200:])


def test_gps_is_found_after_large_segments(new_users, tmp_path):
    """An EXIF block that starts 300 KiB into the file, behind five large
    application segments (as big ICC or Photoshop blocks put it), loses its
    GPS all the same."""
    import struct
    alice, bob = new_users(2)
    t = alice.direct(bob)
    photo = jpeg_with_gps(tmp_path)
    filler = b""
    for i in range(5):
        payload = b"chatd-filler\0" + os.urandom(60 * 1024)
        filler += b"\xff\xef" + struct.pack(">H", len(payload) + 2) + payload
    photo = photo[:2] + filler + photo[2:]
    assert photo.index(b"Exif\0\0") > 300 * 1024
    (tmp_path / "sent.jpg").write_bytes(photo)
    assert "exif-ifd3-GPSLatitude" in exif_fields(tmp_path / "sent.jpg")
    up = upload(alice, photo, "IMG_0002.jpg")
    assert send_with(alice, t["id"], [up["id"]]).status == 201
    got = fetch(bob, up["attachment"]["url"]).content
    assert got != photo and got.startswith(photo[:2] + filler)
    (tmp_path / "got.jpg").write_bytes(got)
    after = exif_fields(tmp_path / "got.jpg")
    assert not any("ifd3" in f or "GPS" in f for f in after), after
    assert "exif-ifd0-Orientation" in after
    assert got.endswith(photo[-200:])


def test_jpeg_without_gps_is_stored_as_sent(new_user, tmp_path):
    u = new_user()
    src = tmp_path / "plain.jpg"
    subprocess.run(["vips", "black", str(src), "32", "32"], check=True)
    data = src.read_bytes()
    att = upload(u, data, "plain.jpg")["attachment"]
    assert att["sha256"] == sha(data)
    assert fetch(u, att["url"]).content == data
