"""(f) Every bad input gets a precise 4xx problem, and changes nothing.

Bodies are sent as raw bytes so that nothing on the client side repairs them.
After each refused send the thread's last_seq and history are unchanged."""
import json
import uuid

import pytest
import requests

from conftest import CHAT_API_URL, make_user, problem, raw_http, raw_socket

TWO_53 = 9007199254740992
MAX_BODY = 1024 * 1024


class Ctx:
    pass


@pytest.fixture(scope="module")
def ctx(server):
    c = Ctx()
    c.a = make_user(server)
    c.b = make_user(server)
    c.g = c.a.group(c.b, title="bad input")["id"]
    c.a.say(c.g, "the only message", cmid="keep")
    c.send_path = f"/v1/threads/{c.g}/messages"
    return c


def state(c):
    """What must not change: the thread as b sees it, its history, b's threads,
    the receipts."""
    t = c.b.thread(c.g)
    hist = c.b.history(c.g, limit=100)
    return (t["last_seq"], t["title"], sorted(t["member_ids"]), t["unread_count"],
            [(m["seq"], m["client_msg_id"], m["body"]) for m in hist["messages"]],
            sorted(x["id"] for x in c.b.get("/v1/threads").body["threads"]),
            sorted(c.b.receipts(c.g).items()))


def send_raw(c, data, path=None, user=None):
    return (user or c.a).post(path or c.send_path, data=data,
                              headers={"Content-Type": "application/json"})


# -- bodies that are not a JSON object --------------------------------------------

NOT_JSON = {
    "empty": b"",
    "spaces": b"   \n ",
    "truncated": b'{"client_msg_id": "x", "body": "hi"',
    "garbage": b"hello",
    "trailing garbage": b'{"client_msg_id": "x1", "body": "hi"} x',
    "two objects": b'{"client_msg_id": "x2", "body": "hi"}{}',
    "single quotes": b"{'client_msg_id': 'x3', 'body': 'hi'}",
    "trailing comma": b'{"client_msg_id": "x4", "body": "hi",}',
    "comment": b'{"client_msg_id": "x5", /* c */ "body": "hi"}',
    "unquoted key": b'{client_msg_id: "x6", "body": "hi"}',
    "bare control char in string": b'{"client_msg_id": "x7", "body": "a\x01b"}',
    "bad escape": b'{"client_msg_id": "x8", "body": "\\q"}',
    "lone surrogate escape": b'{"client_msg_id": "x9", "body": "\\ud800"}',
    "lone low surrogate escape": b'{"client_msg_id": "x9b", "body": "\\udc00x"}',
    "NaN": b'{"client_msg_id": "x10", "body": "hi", "n": NaN}',
    "Infinity": b'{"client_msg_id": "x11", "body": "hi", "n": Infinity}',
    "-Infinity": b'{"client_msg_id": "x12", "body": "hi", "n": -Infinity}',
    "leading zero": b'{"client_msg_id": "x13", "body": "hi", "n": 012}',
    "hex": b'{"client_msg_id": "x14", "body": "hi", "n": 0x10}',
    "duplicate keys": b'{"client_msg_id": "x15", "body": "a", "body": "b"}',
    "duplicate id keys": b'{"client_msg_id": "x16", "client_msg_id": "x17", "body": "a"}',
    "raw NUL in string": b'{"client_msg_id": "x18", "body": "a\x00b"}',
    "raw NUL outside": b'{"client_msg_id": "x19", "body": "ab"}\x00',
    "escaped NUL in body": b'{"client_msg_id": "x20", "body": "a\\u0000b"}',
    "escaped NUL in id": b'{"client_msg_id": "x\\u0000", "body": "ab"}',
    "invalid UTF-8 0xff": b'{"client_msg_id": "x21", "body": "\xff"}',
    "Latin-1 e-acute": b'{"client_msg_id": "x22", "body": "caf\xe9"}',
    "overlong slash": b'{"client_msg_id": "x23", "body": "\xc0\xaf"}',
    "overlong NUL": b'{"client_msg_id": "x24", "body": "\xc0\x80"}',
    "UTF-8 surrogate": b'{"client_msg_id": "x25", "body": "\xed\xa0\x80"}',
    "truncated sequence": b'{"client_msg_id": "x26", "body": "\xe2\x82"}',
    "past U+10FFFF": b'{"client_msg_id": "x27", "body": "\xf4\x90\x80\x80"}',
    "bad UTF-8 in a key": b'{"client_msg_id": "x28", "body": "ok", "\xfe": 1}',
    "100 nested arrays": b'{"client_msg_id": "x29", "body": "hi", "n": '
                         + b"[" * 100 + b"]" * 100 + b"}",
    "33 levels": b'{"client_msg_id": "x30", "body": "hi", "n": '
                 + b"[" * 32 + b"]" * 32 + b"}",
    "deep objects": b'{"client_msg_id": "x31", "body": "hi", "n": '
                    + b'{"a":' * 50 + b"1" + b"}" * 50 + b"}",
    "10000 unclosed": b"[" * 10000,
    "integer beyond 2^64": b'{"client_msg_id": "x32", "body": "hi", "n": 18446744073709551617}',
    "UTF-16": '{"client_msg_id": "x33", "body": "hi"}'.encode("utf-16"),
}


@pytest.mark.parametrize("name", list(NOT_JSON))
def test_body_that_is_not_json_is_400(ctx, name):
    before = state(ctx)
    r = send_raw(ctx, NOT_JSON[name])
    b = problem(r, 400)
    if name in ("escaped NUL in body",):
        assert b["code"] in ("invalid_json", "invalid_message"), r
    elif name == "escaped NUL in id":
        assert b["code"] in ("invalid_json", "invalid_request"), r
    else:
        assert b["code"] == "invalid_json", r
    assert state(ctx) == before


@pytest.mark.parametrize("data", [b"[]", b'[{"client_msg_id": "y", "body": "hi"}]', b'"str"',
                                  b"1", b"-1.5", b"null", b"true", b"false", b'""'])
def test_body_that_is_not_an_object_is_400(ctx, data):
    before = state(ctx)
    problem(send_raw(ctx, data), 400, "invalid_json")
    assert state(ctx) == before


def test_32_levels_of_nesting_are_accepted(ctx):
    """The limit is 32 levels (the object itself is the first)."""
    deep = b'{"client_msg_id": "%s", "body": "deep", "n": ' % str(uuid.uuid4()).encode() \
        + b"[" * 31 + b"]" * 31 + b"}"
    r = send_raw(ctx, deep)
    assert r.status == 201, r


def test_brackets_and_escapes_inside_strings_do_not_count_as_nesting(ctx):
    body = '\\"' + "[" * 100 + '"{' * 50
    r = send_raw(ctx, json.dumps({"client_msg_id": str(uuid.uuid4()), "body": body}).encode())
    assert r.status == 201, r
    assert r.body["message"]["body"] == body


def test_bad_input_on_other_routes_is_400(ctx):
    before = state(ctx)
    for method, path in (("POST", "/v1/threads"), ("PATCH", f"/v1/threads/{ctx.g}"),
                         ("PATCH", f"/v1/threads/{ctx.g}/settings"),
                         ("POST", f"/v1/threads/{ctx.g}/members"),
                         ("POST", f"/v1/threads/{ctx.g}/read"), ("POST", "/v1/messages"),
                         ("PUT", f"/v1/contacts/{ctx.b.id}"), ("POST", "/v1/users"),
                         ("POST", "/v1/sessions")):
        for data in (b"[1]", b"{", b'{"a": "\xff"}', b'{"a": NaN}', b'{"a":1,"a":2}',
                     b"[" * 100):
            r = ctx.a.call(method, path, data=data)
            problem(r, 400, "invalid_json")
    assert state(ctx) == before
    assert ctx.a.get("/v1/contacts").body["contacts"] == []


# -- wrong fields -----------------------------------------------------------------

@pytest.mark.parametrize("body,code", [
    ({}, "invalid_request"),
    ({"body": "hi"}, "invalid_request"),
    ({"client_msg_id": None, "body": "hi"}, "invalid_request"),
    ({"client_msg_id": 5, "body": "hi"}, "invalid_request"),
    ({"client_msg_id": ["a"], "body": "hi"}, "invalid_request"),
    ({"client_msg_id": "", "body": "hi"}, "invalid_request"),
    ({"client_msg_id": "x" * 65, "body": "hi"}, "invalid_request"),
    ({"client_msg_id": "ok-1"}, "invalid_message"),
    ({"client_msg_id": "ok-2", "body": ""}, "invalid_message"),
    ({"client_msg_id": "ok-3", "body": None}, "invalid_message"),
    ({"client_msg_id": "ok-4", "body": 5}, "invalid_message"),
    ({"client_msg_id": "ok-5", "body": ["hi"]}, "invalid_message"),
    ({"client_msg_id": "ok-6", "body": {"text": "hi"}}, "invalid_message"),
    ({"client_msg_id": "ok-7", "body": True}, "invalid_message"),
])
def test_send_with_wrong_fields_is_400(ctx, body, code):
    before = state(ctx)
    problem(ctx.a.post(ctx.send_path, body), 400, code)
    assert state(ctx) == before


@pytest.mark.parametrize("to", ["ID", 2.0, 1.5, True, False, None, [1], {"id": 1}, 0, -1,
                                TWO_53 + 1, 2 ** 63 - 1, -(2 ** 63), 1e3, "9007199254740993"])
def test_send_to_user_with_bad_to_is_400(ctx, to):
    before = state(ctx)
    if to == "ID":
        to = str(ctx.b.id)  # the right id as a string
    body = {"to": to, "client_msg_id": str(uuid.uuid4()), "body": "hi"}
    problem(ctx.a.post("/v1/messages", body), 400, "invalid_request")
    assert state(ctx) == before
    # no direct thread came into being
    assert all(t["kind"] == "group" for t in ctx.a.get("/v1/threads").body["threads"])


@pytest.mark.parametrize("raw", [b"18446744073709551617", b"18446744073709551616",
                                 b"99999999999999999999999999999", b"-18446744073709551617",
                                 b"9007199254740993", b"9223372036854775808", b"1.0", b"1e0",
                                 b"2E1", b"-0"])
def test_send_to_user_with_raw_big_or_float_number_is_400(ctx, raw):
    before = state(ctx)
    r = send_raw(ctx, b'{"to": ' + raw + b', "client_msg_id": "big", "body": "hi"}',
                 path="/v1/messages")
    b = problem(r, 400)
    assert b["code"] in ("invalid_request", "invalid_json"), r
    assert state(ctx) == before


def test_to_of_exactly_2_53_is_a_valid_unknown_id(ctx):
    problem(ctx.a.post("/v1/messages", {"to": TWO_53, "client_msg_id": "e", "body": "x"}), 404,
            "not_found")


@pytest.mark.parametrize("seq", [TWO_53 + 1, 2 ** 64 + 1, "1", 1.0, 0.5, True, None, -1, [1]])
def test_read_with_bad_seq_is_400(ctx, seq):
    before = state(ctx)
    r = send_raw(ctx, json.dumps({"seq": seq}).encode(), path=f"/v1/threads/{ctx.g}/read",
                 user=ctx.b)
    b = problem(r, 400)
    assert b["code"] in (("invalid_request", "invalid_json") if seq == 2 ** 64 + 1
                         else ("invalid_request",)), r
    assert state(ctx) == before


@pytest.mark.parametrize("ids", [[str], [1.0], [True], [None], [TWO_53 + 1], [0], [-1],
                                 "all", {"a": 1}])
def test_member_ids_of_wrong_type_are_400(ctx, ids):
    before = state(ctx)
    if ids == [str]:
        ids = [str(ctx.b.id)]
    problem(ctx.a.post("/v1/threads", {"member_ids": ids, "title": "nope"}), 400,
            "invalid_request")
    problem(ctx.a.post(f"/v1/threads/{ctx.g}/members", {"user_ids": ids}), 400,
            "invalid_request")
    assert state(ctx) == before
    assert len(ctx.a.get("/v1/threads").body["threads"]) == 1


def test_missing_body_is_400(ctx):
    before = state(ctx)
    for method, path in (("POST", ctx.send_path), ("POST", "/v1/threads"),
                         ("POST", "/v1/messages"), ("POST", f"/v1/threads/{ctx.g}/read"),
                         ("PATCH", f"/v1/threads/{ctx.g}"),
                         ("PATCH", f"/v1/threads/{ctx.g}/settings"),
                         ("POST", f"/v1/threads/{ctx.g}/members"), ("POST", "/v1/users"),
                         ("POST", "/v1/sessions")):
        problem(ctx.a.call(method, path), 400)
    assert state(ctx) == before


# -- sizes --------------------------------------------------------------------------

def test_message_body_over_65536_bytes_is_413(ctx):
    before = state(ctx)
    for body in ("a" * 65537, "é" * 32768 + "a", "😀" * 16385, "a" * 500_000):
        problem(ctx.a.post(ctx.send_path, {"client_msg_id": str(uuid.uuid4()), "body": body}),
                413, "message_too_large")
    assert state(ctx) == before


def test_message_body_of_65536_bytes_is_accepted(ctx):
    r = ctx.a.send(ctx.g, "z" * 65536)
    assert r.status == 201, r
    assert ctx.b.history(ctx.g, limit=1)["messages"][0]["body"] == "z" * 65536


def padded_message(total, cmid):
    """A valid send body of exactly `total` bytes (whitespace padding)."""
    head = json.dumps({"client_msg_id": cmid, "body": "padded"}).encode()
    assert len(head) <= total
    return head[:-1] + b" " * (total - len(head)) + b"}"


def test_request_body_of_exactly_1_mib_is_accepted(ctx):
    data = padded_message(MAX_BODY, str(uuid.uuid4()))
    assert len(data) == MAX_BODY
    r = send_raw(ctx, data)
    assert r.status == 201, r


def test_request_body_over_1_mib_is_413(ctx, server):
    before = state(ctx)
    data = padded_message(MAX_BODY + 1, "one-too-many")
    status, headers, body = post_big(server, ctx, data)
    assert status == 413
    p = json.loads(body)
    assert headers["content-type"].startswith("application/problem+json")
    assert p["status"] == 413 and p["code"] == "payload_too_large"
    assert state(ctx) == before


def post_big(server, c, data, path=None, token=None, content_length=None):
    """POSTs data with a Content-Length (by default its length) over a raw
    socket; see raw_socket."""
    head = (f"POST {path or c.send_path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
            f"Authorization: Bearer {token or c.a.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {content_length if content_length is not None else len(data)}"
            f"\r\n\r\n").encode()
    return raw_socket(server, head, data)


def test_2_mib_body_is_413_payload_too_large(ctx, server):
    before = state(ctx)
    data = padded_message(2 * MAX_BODY, "two-mib")
    status, headers, body = post_big(server, ctx, data)
    assert status == 413, body[:300]
    assert headers["content-type"].startswith("application/problem+json")
    p = json.loads(body)
    assert p == {"status": 413, "code": "payload_too_large", "title": p["title"],
                 "detail": p["detail"]}
    assert state(ctx) == before


def test_2_mib_body_is_413_before_authentication(ctx, server):
    status, headers, body = post_big(server, ctx, b"x" * (2 * MAX_BODY), token="nope")
    assert status == 413, body[:300]
    assert json.loads(body)["code"] == "payload_too_large"


def test_huge_content_length_is_413(ctx, server):
    status, headers, body = post_big(server, ctx, b"{}", content_length=2 ** 40)
    assert status == 413, body[:300]
    assert json.loads(body)["code"] == "payload_too_large"


def test_2_mib_chunked_body_ends_the_connection(ctx):
    """Without a Content-Length (chunked), the limit holds as the body
    arrives: past 1 MiB the connection ends, without an answer (libmicrohttpd
    can answer only before the body or after all of it), and nothing is
    stored. test_http_hardening.py shows that the rest is never read."""
    before = state(ctx)

    def chunks():
        yield b'{"client_msg_id": "chunked", "body": "'
        for _ in range(32):
            yield b"a" * 65536
        yield b'"}'

    if CHAT_API_URL:  # nginx in front reads the body and answers 413 itself
        resp = ctx.a.http.post(ctx.a.server.base + ctx.send_path, data=chunks(), timeout=60)
        assert resp.status_code == 413, resp.text[:300]
        assert resp.headers["Content-Type"].startswith("application/problem+json")
    else:
        with pytest.raises(requests.ConnectionError):
            ctx.a.http.post(ctx.a.server.base + ctx.send_path, data=chunks(), timeout=60)
    assert state(ctx) == before


def test_small_chunked_body_is_accepted(ctx):
    def chunks():
        yield b'{"client_msg_id": "%s", ' % str(uuid.uuid4()).encode()
        yield b'"body": "in chunks"}'

    resp = ctx.a.http.post(ctx.a.server.base + ctx.send_path, data=chunks(), timeout=60)
    assert resp.status_code == 201, resp.text[:300]


def test_server_still_serves_after_oversized_bodies(ctx, server):
    for _ in range(3):
        post_big(server, ctx, b"y" * (2 * MAX_BODY))
    assert ctx.a.send(ctx.g, "still here").status == 201


# -- routes and methods -----------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1", "/v1/", "/v1/nope", "/v1/threads/abc", "/v1/threads/0",
                                  "/v1/threads/-1", "/v1/threads/1.5", "/v1/threads/1/nope",
                                  "/v1/threads/1/messages/1/nope", "/v1/users/9007199254740993",
                                  "/v1/users/99999999999999999999", "/v1/threads//messages",
                                  "/v1/me/", "/v1/threads/1/members/x", "/v1/inboxx",
                                  "/v1/sessions/other"])
def test_unknown_route_is_404_problem(ctx, path, anon):
    problem(ctx.a.get(path), 404, "not_found")
    problem(anon.get(path), 404, "not_found")  # with or without a token


@pytest.mark.parametrize("suffix", ["%00/messages", "%00/receipts"])
def test_nul_in_path_is_not_answered_as_another_resource(ctx, server, suffix):
    """A percent-encoded NUL must not cut the path short: GET
    /v1/threads/1%00/messages is not GET /v1/threads/1."""
    st, headers, body = raw_http(server, "GET", f"/v1/threads/{ctx.g}{suffix}",
                                 headers={"Authorization": "Bearer " + ctx.a.token})
    assert st in (400, 404), (st, body[:200])


@pytest.mark.parametrize("method,path,allowed", [
    ("DELETE", "/v1/threads/1", {"GET", "PATCH"}),
    ("PUT", "/v1/threads/1", {"GET", "PATCH"}),
    ("PUT", "/v1/users", {"POST", "GET"}),
    ("DELETE", "/v1/users/1", {"GET"}),
    ("POST", "/v1/me", {"GET", "DELETE"}),
    ("GET", "/v1/sessions/current", {"DELETE"}),
    ("GET", "/v1/sessions/5", {"DELETE"}),
    ("PATCH", "/v1/sessions", {"POST", "GET"}),
    ("PATCH", "/v1/messages", {"POST"}),
    ("GET", "/v1/messages", {"POST"}),
    ("GET", "/v1/threads/1/read", {"POST"}),
    ("POST", "/v1/threads/1/receipts", {"GET"}),
    ("DELETE", "/v1/threads/1/messages", {"POST", "GET"}),
    ("DELETE", "/v1/threads", {"POST", "GET"}),
    ("GET", "/v1/threads/1/members", {"POST"}),
    ("GET", "/v1/threads/1/members/2", {"DELETE"}),
    ("GET", "/v1/threads/1/settings", {"PATCH"}),
    ("POST", "/v1/contacts/1", {"PUT", "DELETE"}),
    ("POST", "/v1/contacts", {"GET"}),
    ("POST", "/v1/blocks/1", {"PUT", "DELETE"}),
    ("POST", "/healthz", {"GET"}),
    ("DELETE", "/readyz", {"GET"}),
    ("POST", "/metrics", {"GET"}),
])
def test_wrong_method_is_405_with_allow(ctx, method, path, allowed):
    r = ctx.a.call(method, path)
    problem(r, 405, "method_not_allowed")
    allow = {m.strip() for m in r.headers.get("Allow", "").split(",") if m.strip()}
    assert allow - {"HEAD", "OPTIONS"} == allowed, r.headers.get("Allow")


def test_wrong_method_changes_nothing(ctx):
    before = state(ctx)
    problem(ctx.a.call("PUT", ctx.send_path, {"client_msg_id": "put", "body": "x"}), 405)
    problem(ctx.a.call("DELETE", f"/v1/threads/{ctx.g}"), 405)
    assert state(ctx) == before


# -- every error is problem+json ------------------------------------------------------

def test_error_shape_everywhere(ctx, anon):
    rs = [anon.get("/v1/me"),
          ctx.a.get("/v1/threads/9007199254740992"),
          ctx.a.get("/v1/users", params={"q": ""}),
          ctx.a.post("/v1/threads", {"member_ids": "x"}),
          ctx.a.call("PATCH", "/v1/me"),
          send_raw(ctx, b"{"),
          ctx.a.post(ctx.send_path, {"client_msg_id": "big", "body": "x" * 70000}),
          ctx.a.patch(f"/v1/threads/{ctx.g}", {"title": ""})]
    for r in rs:
        assert r.status >= 400
        problem(r, r.status)
        assert r.headers.get("Cache-Control") != "public"
