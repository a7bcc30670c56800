"""What the fuzzers (fuzz/, docs/fuzzing.md) found, over real HTTP: each
input that once broke an invariant, sent to a real chatd."""
import json

from conftest import raw_http


def test_path_not_utf8_gets_a_problem_body(server):
    # fuzz/regressions/http/path-not-utf8: the 404 detail quotes the decoded
    # path; %A9 is not UTF-8, jansson refused the detail and the 404 went out
    # without a body. Now the byte shows as '?'.
    for path, shown in [("/v1/nop%A9", "/v1/nop?"), ("/v1/%C3", "/v1/?"),
                        ("/v1/caf%C3%A9", "/v1/caf\u00e9")]:
        status, headers, body = raw_http(server, "GET", path)
        assert status == 404, (path, status)
        assert headers.get("content-type", "").startswith("application/problem+json"), path
        doc = json.loads(body)
        assert doc["code"] == "not_found" and doc["detail"].endswith(shown), (path, doc)


def test_long_multibyte_path_detail_is_cut_on_a_character(server):
    # A detail is at most 511 bytes: a path of 2-byte characters used to be
    # cut in the middle of one, with the same missing body.
    path = "/v1/xy" + "%C3%A9" * 300  # 24 bytes before: the 511th is half an é
    status, headers, body = raw_http(server, "GET", path)
    assert status == 404
    doc = json.loads(body)
    assert doc["code"] == "not_found" and doc["detail"].startswith("no such resource: /v1/xy\u00e9")
