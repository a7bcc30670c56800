"""Search (API.md "Search", issue 15; chat/search.h): words ANDed, prefix,
phrase, any input as plain text, CJK inside sentences, newest first with
paging, only the caller's threads of now, never a deleted, hidden or
edited-away word. The index is filled after the send, so tests wait for a
marker message to be found before asserting absences."""
import time
import uuid

import pytest

from conftest import env_server, make_user, problem


def search(u, q, **params):
    return u.get("/v1/search/messages", params={"q": q, **params})


def found(u, q, **params):
    r = search(u, q, **params)
    assert r.status == 200, r
    assert set(r.body) == {"results", "next", "terms"}, r.body
    return r.body


def bodies(u, q, **params):
    return [m["body"] for m in found(u, q, **params)["results"]]


def eventually_found(u, q, want, timeout=15, **params):
    """Polls until the bodies found for q are want (the index is behind the
    send by a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        got = bodies(u, q, **params)
        if got == want or time.monotonic() > deadline:
            assert got == want, (q, got)
            return got
        time.sleep(0.1)


def marker(u, t):
    """Sends a unique word and waits until it is found: everything sent
    before it in t is indexed too."""
    w = "mk" + uuid.uuid4().hex[:12]
    u.say(t, w)
    eventually_found(u, w, [w])


@pytest.fixture()
def trio(new_users):
    alice, bob, carol = new_users(3)
    alice.known_by(bob, carol)
    g = alice.group(bob, carol)["id"]
    return alice, bob, carol, g


def test_words_are_anded_newest_first(trio):
    alice, bob, carol, g = trio
    w = uuid.uuid4().hex[:8]
    alice.say(g, f"the quick brown fox {w}")
    bob.say(g, f"quick thinking {w}")
    carol.say(g, f"brown bread {w}")
    eventually_found(alice, f"quick {w}", [f"quick thinking {w}", f"the quick brown fox {w}"])
    assert bodies(bob, f"brown {w}") == [f"brown bread {w}", f"the quick brown fox {w}"]
    assert bodies(carol, f"QUICK Brown {w}") == [f"the quick brown fox {w}"]
    r = found(carol, f"Quick {w}")
    assert r["terms"] == ["quick", w] and r["next"] is None
    m = r["results"][0]
    assert m["thread_id"] == g and m["sender_id"] == bob.id and "version" in m


def test_prefix_phrase_and_punctuation(trio):
    alice, bob, _, g = trio
    w = uuid.uuid4().hex[:8]
    for text in (f"quickly now {w}", f"aquiline nose {w}", f"brown fox jumps {w}",
                 f"fox, brown and tired {w}", f"I write C++ and C# {w}", f"e-mail me {w}",
                 f"let's go {w}"):
        alice.say(g, text)
    marker(alice, g)
    assert bodies(bob, f"qui* {w}") == [f"quickly now {w}"]
    assert bodies(bob, f'"brown fox" {w}') == [f"brown fox jumps {w}"]
    assert set(bodies(bob, f"fox brown {w}")) == {f"brown fox jumps {w}", f"fox, brown and tired {w}"}
    assert bodies(bob, f"C++ {w}") == [f"I write C++ and C# {w}"]
    assert bodies(bob, f"c# {w}") == [f"I write C++ and C# {w}"]
    assert bodies(bob, f"e-mail {w}") == [f"e-mail me {w}"]
    assert bodies(bob, f"go {w}") == [f"let's go {w}"]  # two letters are a word
    # Anything is plain text: operators, quotes left open, markup.
    for q in (f"(a OR b) {w}", f'"unclosed {w}', f"<b>x</b> {w}", f"NOT AND {w}", f"%_\\ {w}"):
        assert search(bob, q).status == 200, q


def test_chinese_japanese_korean_inside_sentences(trio):
    alice, bob, _, g = trio
    w = uuid.uuid4().hex[:8]
    texts = [f"我喜欢吃苹果 {w}", f"東京タワーに行きました {w}", f"안녕하세요 여러분 {w}",
             f"我的猫很可爱 {w}"]
    for t in texts:
        alice.say(g, t)
    marker(alice, g)
    assert bodies(bob, f"苹果 {w}") == [texts[0]]
    assert bodies(bob, f"喜欢 {w}") == [texts[0]]
    assert bodies(bob, f"タワー {w}") == [texts[1]]
    assert bodies(bob, f"東京 {w}") == [texts[1]]
    assert bodies(bob, f"하세요 {w}") == [texts[2]]
    assert bodies(bob, f"猫 {w}") == [texts[3]]
    assert bodies(bob, f"可爱的猫 {w}") == []  # the characters, not in that order
    assert bodies(bob, f"吃苹果 {w}") == [texts[0]]


def test_paging_newest_first(trio):
    alice, bob, _, g = trio
    w = uuid.uuid4().hex[:8]
    sent = [alice.say(g, f"page {w} {i}")["seq"] for i in range(25)]
    eventually_found(bob, f"{w} 24", [f"page {w} 24"])
    seen, cursor = [], None
    for _ in range(5):
        params = {"limit": 10} | ({"before": cursor} if cursor else {})
        r = found(bob, w, **params)
        seen += [m["seq"] for m in r["results"]]
        cursor = r["next"]
        if cursor is None:
            break
    assert seen == sorted(sent, reverse=True)
    assert cursor is None


def test_only_the_callers_threads_of_now(trio, new_user):
    alice, bob, carol, g = trio
    w = uuid.uuid4().hex[:8]
    alice.say(g, f"group secret {w}")
    d = alice.direct(bob)["id"]
    alice.say(d, f"direct secret {w}")
    marker(alice, d)
    assert bodies(carol, w) == [f"group secret {w}"]
    assert bodies(bob, w) == [f"direct secret {w}", f"group secret {w}"]
    assert bodies(bob, w, thread_id=g) == [f"group secret {w}"]
    stranger = new_user()
    assert bodies(stranger, w) == []
    problem(search(stranger, w, thread_id=g), 404, "not_found")
    # Carol leaves the group: she finds nothing of it any more.
    assert carol.delete(f"/v1/threads/{g}/members/{carol.id}").status == 204
    assert bodies(carol, w) == []
    problem(search(carol, w, thread_id=g), 404, "not_found")


def test_deleted_hidden_and_edited_away_words_are_not_found(trio):
    alice, bob, carol, g = trio
    w = uuid.uuid4().hex[:8]
    m1 = alice.say(g, f"to delete {w}")
    m2 = alice.say(g, f"to hide {w}")
    m3 = alice.say(g, f"before edit {w}")
    marker(alice, g)
    assert len(bodies(bob, w)) == 3
    assert alice.delete(f"/v1/threads/{g}/messages/{m1['seq']}").status == 204
    assert bob.put(f"/v1/threads/{g}/messages/{m2['seq']}/hidden").status == 204
    assert alice.patch(f"/v1/threads/{g}/messages/{m3['seq']}",
                       {"body": f"after change {w}"}).status == 200
    assert bodies(bob, w) == [f"after change {w}"]
    assert set(bodies(carol, w)) == {f"after change {w}", f"to hide {w}"}
    assert bodies(bob, f"before {w}") == [] and bodies(bob, f"delete {w}") == []
    assert bodies(carol, f"change {w}") == [f"after change {w}"]


def test_bad_queries(new_user):
    u = new_user()
    for q in ("", "   ", "!!! ???", "*", '""'):
        problem(search(u, q), 400, "invalid_query")
    problem(u.get("/v1/search/messages"), 400, "invalid_query")
    problem(search(u, "x" * 257), 400, "invalid_query")
    problem(search(u, "a b c d e f g h i"), 400, "invalid_query")  # 9 words
    for params in ({"limit": 0}, {"limit": 51}, {"before": "nope"}, {"before": "1.2"},
                   {"thread_id": "abc"}):
        problem(search(u, "hello", **params), 400)
    problem(search(u, "hello", thread_id=9007199254740992), 404, "not_found")


@pytest.fixture(scope="module")
def limited(db):
    with env_server(db, "search-", {"CHAT_RATE_LIMITS": "true",
                                    "CHAT_RATE_USER_LOOKUP_PER_MIN": "6",
                                    "CHAT_RATE_USER_LOOKUP_BURST": "3"}) as s:
        yield s


def test_searches_are_rate_limited(limited):
    u = make_user(limited)
    for _ in range(3):
        assert search(u, "hello").status == 200
    r = search(u, "hello")
    problem(r, 429, "rate_limited")
    assert int(r.headers["Retry-After"]) >= 1
