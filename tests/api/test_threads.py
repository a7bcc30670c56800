"""Threads: direct and group, listing and paging, settings, members, and the
rule that a thread the caller is not in does not exist (404 on every route)."""
import time
import uuid

import pytest

from conftest import problem

THREAD_KEYS = {"id", "kind", "title", "member_ids", "created_at", "updated_at", "last_seq",
               "unread_count", "is_muted", "notify", "nickname", "last_message", "request",
               "oldest_seq", "retention_days", "disappearing_s"}
MESSAGE_KEYS = {"thread_id", "seq", "sender_id", "client_msg_id", "body", "created_at",
                "attachments", "version", "edited_at", "deleted_at", "reply_to", "forwarded",
                "reactions", "mentions", "expires_at"}
NO_SUCH_THREAD = 9007199254740992  # a valid id (2^53) that no thread has


def check_thread(t):
    """The shape and types of a thread object (API.md)."""
    assert set(t) == THREAD_KEYS, t
    for k in ("id", "created_at", "updated_at", "last_seq", "unread_count"):
        assert type(t[k]) is int, (k, t)
    assert t["kind"] in ("direct", "group")
    assert t["title"] is None or isinstance(t["title"], str)
    assert all(type(i) is int for i in t["member_ids"])
    assert type(t["is_muted"]) is bool
    assert t["nickname"] is None or isinstance(t["nickname"], str)
    m = t["last_message"]
    if m is not None:
        assert set(m) == MESSAGE_KEYS
        for k in ("thread_id", "seq", "sender_id", "created_at"):
            assert type(m[k]) is int, (k, m)
        assert m["thread_id"] == t["id"] and m["seq"] == t["last_seq"]
    return t


def listing(u, **params):
    st, b = u.get("/v1/threads", params=params)
    assert st == 200, b
    return b


def all_threads(u, limit=100):
    out, before = [], None
    while True:
        params = {"limit": limit}
        if before:
            params["before"] = before
        b = listing(u, **params)
        out += [check_thread(t) for t in b["threads"]]
        if b["next"] is None:
            return out
        before = b["next"]


def now_ms():
    return int(time.time() * 1000)


# -- direct threads -----------------------------------------------------------

def test_direct_thread_201_then_200(new_users):
    a, b = new_users(2)
    st, body = a.post("/v1/threads", {"member_ids": [b.id]})
    assert st == 201, body
    t = check_thread(body["thread"])
    assert t["kind"] == "direct"
    assert t["title"] is None
    assert sorted(t["member_ids"]) == sorted([a.id, b.id])
    assert t["last_seq"] == 0 and t["unread_count"] == 0
    assert t["is_muted"] is False and t["nickname"] is None and t["last_message"] is None
    assert abs(t["created_at"] - now_ms()) < 60_000
    assert t["updated_at"] >= t["created_at"]
    st, body = a.post("/v1/threads", {"member_ids": [b.id]})
    assert st == 200, body
    assert body["thread"]["id"] == t["id"]
    # from the other side, and with the caller listed too: the same thread
    st, body = b.post("/v1/threads", {"member_ids": [a.id, b.id]})
    assert st == 200, body
    assert body["thread"]["id"] == t["id"]
    assert [x["id"] for x in listing(a)["threads"]] == [t["id"]]
    assert [x["id"] for x in listing(b)["threads"]] == [t["id"]]
    # duplicates are ignored: still one other member, so still the direct thread
    st, body = a.post("/v1/threads", {"member_ids": [b.id, b.id, a.id]})
    assert st == 200 and body["thread"]["id"] == t["id"], body


def test_saved_messages_thread_with_yourself(new_user):
    a = new_user()
    st, body = a.post("/v1/threads", {"member_ids": [a.id]})
    assert st == 201, body
    t = body["thread"]
    assert t["kind"] == "direct" and t["member_ids"] == [a.id]
    st, body = a.post("/v1/threads", {"member_ids": [a.id]})
    assert st == 200 and body["thread"]["id"] == t["id"]
    assert a.say(t["id"], "note to self")["seq"] == 1
    assert a.thread(t["id"])["unread_count"] == 0


def test_direct_thread_with_unknown_user_is_404(new_user):
    a = new_user()
    problem(a.post("/v1/threads", {"member_ids": [NO_SUCH_THREAD]}), 404, "not_found")
    assert listing(a)["threads"] == []


# -- groups --------------------------------------------------------------------

def test_group_with_title(new_users):
    a, b, c = new_users(3)
    st, body = a.post("/v1/threads", {"member_ids": [b.id, c.id], "title": "Trip 🏔"})
    assert st == 201, body
    g = body["thread"]
    assert set(g) == THREAD_KEYS
    assert g["kind"] == "group" and g["title"] == "Trip 🏔"
    assert sorted(g["member_ids"]) == sorted([a.id, b.id, c.id])
    assert g["last_seq"] == 0 and g["last_message"] is None
    for u in (b, c):
        seen = u.thread(g["id"])
        assert seen["title"] == "Trip 🏔" and seen["kind"] == "group"
        assert sorted(seen["member_ids"]) == sorted([a.id, b.id, c.id])


def test_group_member_ids_may_hold_self_and_duplicates(new_users):
    a, b, c = new_users(3)
    st, body = a.post("/v1/threads", {"member_ids": [a.id, b.id, b.id, c.id, a.id],
                                      "title": "dups"})
    assert st == 201, body
    assert sorted(body["thread"]["member_ids"]) == sorted([a.id, b.id, c.id])


def test_one_other_member_with_title_is_a_new_group(new_users):
    a, b = new_users(2)
    ids = set()
    for _ in range(2):
        st, body = a.post("/v1/threads", {"member_ids": [b.id], "title": "pair group"})
        assert st == 201, body
        assert body["thread"]["kind"] == "group"
        ids.add(body["thread"]["id"])
    assert len(ids) == 2
    d = a.direct(b)
    assert d["kind"] == "direct" and d["id"] not in ids


def test_group_without_title(new_users):
    a, b, c = new_users(3)
    st, body = a.post("/v1/threads", {"member_ids": [b.id, c.id]})
    assert st == 201, body
    assert body["thread"]["kind"] == "group" and body["thread"]["title"] is None


def test_group_with_unknown_member_is_404_and_creates_nothing(new_users):
    a, b = new_users(2)
    problem(a.post("/v1/threads", {"member_ids": [b.id, NO_SUCH_THREAD], "title": "x"}),
            404, "not_found")
    assert listing(a)["threads"] == []
    assert listing(b)["threads"] == []


def test_too_many_members_is_422(new_user):
    a = new_user()
    fake = list(range(10_000_000, 10_000_000 + 1100))
    problem(a.post("/v1/threads", {"member_ids": fake, "title": "huge"}), 422,
            "too_many_members")
    # 1024 others + the creator: 1025 members, one too many
    problem(a.post("/v1/threads", {"member_ids": fake[:1024] + [a.id], "title": "huge"}), 422,
            "too_many_members")
    problem(a.post("/v1/threads", {"member_ids": fake[:1024], "title": "huge"}), 422,
            "too_many_members")
    # 1023 others + the creator = 1024 passes the limit; then the unknown ids are 404
    problem(a.post("/v1/threads", {"member_ids": fake[:1023], "title": "huge"}), 404,
            "not_found")
    assert listing(a)["threads"] == []


@pytest.mark.parametrize("body", [
    {},
    {"member_ids": None},
    {"member_ids": "1"},
    {"member_ids": 1},
    {"member_ids": ["1"]},
    {"member_ids": [1.5]},
    {"member_ids": [True]},
    {"member_ids": [0]},
    {"member_ids": [-3]},
    {"member_ids": [9007199254740993]},
    {"member_ids": [[1]]},
    {"member_ids": [], "title": ""},
    {"member_ids": [], "title": 5},
    {"member_ids": [], "title": "t" * 256},
])
def test_create_thread_bad_body_is_400(new_user, body):
    a = new_user()
    problem(a.post("/v1/threads", body), 400)
    assert listing(a)["threads"] == []


def test_title_of_255_characters(new_user):
    a = new_user()
    title = "ü" * 255
    st, body = a.post("/v1/threads", {"member_ids": [], "title": title})
    assert st == 201, body
    assert body["thread"]["title"] == title and body["thread"]["kind"] == "group"


# -- single thread, rename, settings ---------------------------------------------------

def test_get_thread_fields(new_users):
    a, b = new_users(2)
    g = a.group(b, title="fields")
    m = a.say(g["id"], "first")
    m2 = a.say(g["id"], "second")
    t = check_thread(b.thread(g["id"]))
    assert t["id"] == g["id"] and t["kind"] == "group" and t["title"] == "fields"
    assert sorted(t["member_ids"]) == sorted([a.id, b.id])
    assert t["created_at"] == g["created_at"]
    assert t["updated_at"] >= m2["created_at"] >= m["created_at"]
    assert t["last_seq"] == 2
    assert t["unread_count"] == 2
    assert t["is_muted"] is False and t["nickname"] is None
    assert t["last_message"] == m2
    assert set(t["last_message"]) == MESSAGE_KEYS
    assert a.thread(g["id"])["unread_count"] == 0


def test_rename_group(new_users):
    a, b = new_users(2)
    g = a.group(b, title="old")
    time.sleep(0.01)
    st, body = b.patch(f"/v1/threads/{g['id']}", {"title": "new name"})
    assert st == 200, body
    assert body["thread"]["title"] == "new name"
    assert body["thread"]["updated_at"] > g["updated_at"]
    assert a.thread(g["id"])["title"] == "new name"


def test_rename_direct_is_422(new_users):
    a, b = new_users(2)
    d = a.direct(b)
    problem(a.patch(f"/v1/threads/{d['id']}", {"title": "no"}), 422, "not_a_group")
    assert a.thread(d["id"])["title"] is None


@pytest.mark.parametrize("body", [{}, {"title": ""}, {"title": None}, {"title": 3},
                                  {"title": "x" * 256}])
def test_rename_bad_title_is_400(new_users, body):
    a, b = new_users(2)
    g = a.group(b, title="keep")
    problem(a.patch(f"/v1/threads/{g['id']}", body), 400)
    assert a.thread(g["id"])["title"] == "keep"


def test_settings_are_private_to_the_caller(new_users):
    a, b = new_users(2)
    g = a.group(b, title="shared")
    st, body = a.patch(f"/v1/threads/{g['id']}/settings", {"is_muted": True, "nickname": "fam"})
    assert st == 200, body
    assert body["thread"]["is_muted"] is True and body["thread"]["nickname"] == "fam"
    assert body["thread"]["title"] == "shared"
    mine = a.thread(g["id"])
    assert mine["is_muted"] is True and mine["nickname"] == "fam"
    theirs = b.thread(g["id"])
    assert theirs["is_muted"] is False and theirs["nickname"] is None
    # the list shows the same view
    assert [(t["is_muted"], t["nickname"]) for t in listing(a)["threads"]] == [(True, "fam")]
    assert [(t["is_muted"], t["nickname"]) for t in listing(b)["threads"]] == [(False, None)]
    # another device of the same user sees the settings
    assert a.device().thread(g["id"])["nickname"] == "fam"


def test_settings_partial_updates(new_users):
    a, b = new_users(2)
    d = a.direct(b)
    path = f"/v1/threads/{d['id']}/settings"
    assert a.patch(path, {"nickname": "bestie"}).body["thread"]["nickname"] == "bestie"
    t = a.patch(path, {"is_muted": True}).body["thread"]
    assert t["is_muted"] is True and t["nickname"] == "bestie"
    t = a.patch(path, {}).body["thread"]
    assert t["is_muted"] is True and t["nickname"] == "bestie"
    t = a.patch(path, {"nickname": None}).body["thread"]
    assert t["is_muted"] is True and t["nickname"] is None
    t = a.patch(path, {"is_muted": False, "nickname": "again"}).body["thread"]
    assert t["is_muted"] is False and t["nickname"] == "again"


@pytest.mark.parametrize("body", [{"is_muted": "yes"}, {"is_muted": 1}, {"is_muted": None},
                                  {"nickname": 7}, {"nickname": "n" * 65}])
def test_settings_bad_body_is_400(new_users, body):
    a, b = new_users(2)
    d = a.direct(b)
    problem(a.patch(f"/v1/threads/{d['id']}/settings", body), 400, "invalid_request")
    t = a.thread(d["id"])
    assert t["is_muted"] is False and t["nickname"] is None


# -- listing and paging ------------------------------------------------------------

def test_list_most_recently_updated_first(new_users):
    a, b = new_users(2)
    ts = []
    for i in range(4):
        ts.append(a.group(b, title=f"g{i}")["id"])
        time.sleep(0.005)
    assert [t["id"] for t in listing(a)["threads"]] == ts[::-1]
    time.sleep(0.005)
    b.say(ts[1], "bump")
    got = [check_thread(t) for t in listing(a)["threads"]]
    assert [t["id"] for t in got] == [ts[1], ts[3], ts[2], ts[0]]
    assert got[0]["last_message"]["body"] == "bump"
    assert got[0]["unread_count"] == 1
    updated = [t["updated_at"] for t in got]
    assert updated == sorted(updated, reverse=True)
    time.sleep(0.005)
    a.patch(f"/v1/threads/{ts[0]}", {"title": "renamed"})
    assert [t["id"] for t in listing(b)["threads"]][0] == ts[0]
    assert listing(a)["next"] is None


def test_list_pages_without_duplicates_or_gaps(new_users):
    a, b = new_users(2)
    made = [a.group(b, title=f"p{i}")["id"] for i in range(11)]
    for i in (3, 7):  # some threads get newer by a message
        a.say(made[i])
    expected = [t["id"] for t in listing(a, limit=100)["threads"]]
    assert sorted(expected) == sorted(made)
    for limit in (1, 3, 4, 5, 11):
        got, before, pages = [], None, 0
        while True:
            params = {"limit": limit} | ({"before": before} if before else {})
            page = listing(a, **params)
            pages += 1
            assert len(page["threads"]) <= limit
            got += [t["id"] for t in page["threads"]]
            if page["next"] is None:
                break
            assert isinstance(page["next"], str)
            assert len(page["threads"]) == limit
            before = page["next"]
        assert got == expected, limit
        assert pages == -(-11 // limit)  # next is null on the last page, not after it


def test_list_paging_while_threads_move(new_users):
    a, b = new_users(2)
    made = [a.group(b, title=f"m{i}")["id"] for i in range(9)]
    page1 = listing(a, limit=3)
    seen = [t["id"] for t in page1["threads"]]
    # an already seen thread moves to the top while paging: no duplicates, no gaps
    a.say(seen[1], "moved")
    rest, before = [], page1["next"]
    while before:
        page = listing(a, limit=3, before=before)
        rest += [t["id"] for t in page["threads"]]
        before = page["next"]
    assert not set(rest) & set(seen)
    assert sorted(seen + rest) == sorted(made)


def test_list_default_limit_is_50(new_user):
    a = new_user()
    for i in range(52):
        assert a.post("/v1/threads", {"member_ids": [], "title": f"t{i}"}).status == 201
    page = listing(a)
    assert len(page["threads"]) == 50
    assert page["next"] is not None
    page2 = listing(a, before=page["next"])
    assert len(page2["threads"]) == 2 and page2["next"] is None
    every = all_threads(a, limit=7)
    assert len(every) == 52 and len({t["id"] for t in every}) == 52
    assert [t["title"] for t in every] == [f"t{i}" for i in range(51, -1, -1)]


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "101"}, {"limit": "abc"},
                                    {"limit": "-1"}, {"before": "garbage"}, {"before": "1"},
                                    {"before": "1.x"}, {"before": ""}])
def test_list_bad_query_is_400(new_user, params):
    problem(new_user().get("/v1/threads", params=params), 400, "invalid_request")


def test_list_limit_100_is_accepted(new_user):
    assert listing(new_user(), limit=100)["threads"] == []


# -- members ------------------------------------------------------------------------

def test_any_member_adds_members(new_users):
    a, b, c = new_users(3)
    g = a.group(b, title="grow")
    for i in range(3):
        a.say(g["id"], f"m{i}")
    assert c.get(f"/v1/threads/{g['id']}").status == 404
    st, body = b.post(f"/v1/threads/{g['id']}/members", {"user_ids": [c.id]})  # b is no admin
    assert st == 200, body
    assert sorted(body["thread"]["member_ids"]) == sorted([a.id, b.id, c.id])
    t = c.thread(g["id"])
    assert t["unread_count"] == 0 and t["last_seq"] == 3
    assert [x["id"] for x in listing(c)["threads"]] == [g["id"]]
    a.say(g["id"], "welcome")
    assert c.thread(g["id"])["unread_count"] == 1
    # adding an existing member again changes nothing
    st, body = a.post(f"/v1/threads/{g['id']}/members", {"user_ids": [c.id, b.id]})
    assert st == 200, body
    assert sorted(body["thread"]["member_ids"]) == sorted([a.id, b.id, c.id])
    assert c.thread(g["id"])["unread_count"] == 1


def test_add_unknown_user_is_404_and_adds_nobody(new_users):
    a, b, c = new_users(3)
    g = a.group(b, title="x")
    problem(a.post(f"/v1/threads/{g['id']}/members", {"user_ids": [c.id, NO_SUCH_THREAD]}),
            404, "not_found")
    assert sorted(a.thread(g["id"])["member_ids"]) == sorted([a.id, b.id])
    assert c.get(f"/v1/threads/{g['id']}").status == 404


def test_add_to_direct_thread_is_422(new_users):
    a, b, c = new_users(3)
    d = a.direct(b)
    problem(a.post(f"/v1/threads/{d['id']}/members", {"user_ids": [c.id]}), 422, "not_a_group")
    assert sorted(a.thread(d["id"])["member_ids"]) == sorted([a.id, b.id])


def test_add_more_than_1024_members_is_422(new_users):
    a, b = new_users(2)
    g = a.group(b, title="limit")
    fake = list(range(20_000_000, 20_000_000 + 1025))
    problem(a.post(f"/v1/threads/{g['id']}/members", {"user_ids": fake}), 422,
            "too_many_members")
    problem(a.post(f"/v1/threads/{g['id']}/members", {"user_ids": fake[:1023]}), 404,
            "not_found")
    assert sorted(a.thread(g["id"])["member_ids"]) == sorted([a.id, b.id])


@pytest.mark.parametrize("body", [{}, {"user_ids": "x"}, {"user_ids": ["1"]},
                                  {"user_ids": [0]}, {"user_ids": [9007199254740993]}])
def test_add_members_bad_body_is_400(new_users, body):
    a, b = new_users(2)
    g = a.group(b)
    problem(a.post(f"/v1/threads/{g['id']}/members", body), 400)


def test_non_admin_cannot_remove_others(new_users):
    a, b, c = new_users(3)
    g = a.group(b, c, title="roles")
    problem(b.delete(f"/v1/threads/{g['id']}/members/{c.id}"), 403, "not_admin")
    problem(b.delete(f"/v1/threads/{g['id']}/members/{a.id}"), 403, "not_admin")
    assert sorted(a.thread(g["id"])["member_ids"]) == sorted([a.id, b.id, c.id])


def test_admin_removes_a_member(new_users):
    a, b, c = new_users(3)
    g = a.group(b, c, title="rm")
    r = a.delete(f"/v1/threads/{g['id']}/members/{b.id}")
    assert r.status == 204, r
    assert sorted(a.thread(g["id"])["member_ids"]) == sorted([a.id, c.id])
    assert sorted(c.thread(g["id"])["member_ids"]) == sorted([a.id, c.id])
    problem(b.get(f"/v1/threads/{g['id']}"), 404, "not_found")
    assert listing(b)["threads"] == []
    # removing someone who is not a member
    problem(a.delete(f"/v1/threads/{g['id']}/members/{b.id}"), 404, "not_found")


def test_leave(new_users):
    a, b, c = new_users(3)
    g = a.group(b, c, title="leave")
    r = c.delete(f"/v1/threads/{g['id']}/members/{c.id}")
    assert r.status == 204, r
    problem(c.get(f"/v1/threads/{g['id']}"), 404, "not_found")
    assert listing(c)["threads"] == []
    assert sorted(a.thread(g["id"])["member_ids"]) == sorted([a.id, b.id])
    problem(c.delete(f"/v1/threads/{g['id']}/members/{c.id}"), 404, "not_found")


def test_cannot_leave_a_direct_thread(new_users):
    a, b = new_users(2)
    d = a.direct(b)
    problem(a.delete(f"/v1/threads/{d['id']}/members/{a.id}"), 422, "not_a_group")
    problem(a.delete(f"/v1/threads/{d['id']}/members/{b.id}"), 422, "not_a_group")
    assert sorted(a.thread(d["id"])["member_ids"]) == sorted([a.id, b.id])


def test_last_admin_leaving_promotes_the_longest_standing_member(new_users):
    a, b, c, d = new_users(4)
    g = a.group(b, title="succession")
    time.sleep(0.01)
    a.post(f"/v1/threads/{g['id']}/members", {"user_ids": [c.id]})
    time.sleep(0.01)
    a.post(f"/v1/threads/{g['id']}/members", {"user_ids": [d.id]})
    problem(b.delete(f"/v1/threads/{g['id']}/members/{d.id}"), 403, "not_admin")
    assert a.delete(f"/v1/threads/{g['id']}/members/{a.id}").status == 204
    # b joined first: b is admin now; c is not
    problem(c.delete(f"/v1/threads/{g['id']}/members/{d.id}"), 403, "not_admin")
    assert b.delete(f"/v1/threads/{g['id']}/members/{d.id}").status == 204
    assert sorted(b.thread(g["id"])["member_ids"]) == sorted([b.id, c.id])


def test_admin_stays_admin_when_a_member_leaves(new_users):
    a, b, c = new_users(3)
    g = a.group(b, c, title="stay")
    assert b.delete(f"/v1/threads/{g['id']}/members/{b.id}").status == 204
    problem(c.delete(f"/v1/threads/{g['id']}/members/{a.id}"), 403, "not_admin")
    assert a.delete(f"/v1/threads/{g['id']}/members/{c.id}").status == 204


# -- (e) a thread the caller is not in does not exist ---------------------------------

def every_thread_route(u, tid, victim_id):
    """Calls every thread route with a valid body; returns [(name, R)]."""
    return [
        ("GET thread", u.get(f"/v1/threads/{tid}")),
        ("PATCH thread", u.patch(f"/v1/threads/{tid}", {"title": "hijacked"})),
        ("PATCH settings", u.patch(f"/v1/threads/{tid}/settings",
                                   {"is_muted": True, "nickname": "n"})),
        ("POST members", u.post(f"/v1/threads/{tid}/members", {"user_ids": [u.id]})),
        ("DELETE member", u.delete(f"/v1/threads/{tid}/members/{victim_id}")),
        ("DELETE self", u.delete(f"/v1/threads/{tid}/members/{u.id}")),
        ("POST message", u.post(f"/v1/threads/{tid}/messages",
                                {"client_msg_id": str(uuid.uuid4()), "body": "intrude"})),
        ("GET messages", u.get(f"/v1/threads/{tid}/messages")),
        ("GET messages after", u.get(f"/v1/threads/{tid}/messages", params={"after": 0})),
        ("POST read", u.post(f"/v1/threads/{tid}/read", {"seq": 0})),
        ("GET receipts", u.get(f"/v1/threads/{tid}/receipts")),
    ]


def assert_all_404(u, tid, victim_id):
    for name, r in every_thread_route(u, tid, victim_id):
        assert r.status == 404, f"{name}: {r!r}"
        problem(r, 404, "not_found")


def snapshot(owner, tid):
    t = owner.thread(tid)
    return (t["title"], sorted(t["member_ids"]), t["last_seq"],
            [m["seq"] for m in owner.history(tid)["messages"]])


def test_non_member_gets_404_on_every_thread_route(new_users):
    a, b, outsider = new_users(3)
    g = a.group(b, title="private")
    a.say(g["id"], "secret")
    d = a.direct(b)
    before_g, before_d = snapshot(a, g["id"]), snapshot(a, d["id"])
    assert_all_404(outsider, g["id"], b.id)
    assert_all_404(outsider, d["id"], b.id)
    # the errors are the same as for a thread that does not exist
    ghost = outsider.get(f"/v1/threads/{NO_SUCH_THREAD}").body
    real = outsider.get(f"/v1/threads/{g['id']}").body
    assert ghost["code"] == real["code"] and ghost["title"] == real["title"]
    # nothing changed
    assert snapshot(a, g["id"]) == before_g
    assert snapshot(a, d["id"]) == before_d
    assert listing(outsider)["threads"] == []


def test_unknown_thread_is_404_on_every_route(new_user):
    u = new_user()
    assert_all_404(u, NO_SUCH_THREAD, u.id)
    assert_all_404(u, 987654321, u.id)


def test_removed_member_gets_404_afterwards(new_users):
    a, b = new_users(2)
    g = a.group(b, title="was in")
    a.say(g["id"])
    assert b.thread(g["id"])["last_seq"] == 1
    assert a.delete(f"/v1/threads/{g['id']}/members/{b.id}").status == 204
    before = snapshot(a, g["id"])
    assert_all_404(b, g["id"], a.id)
    assert snapshot(a, g["id"]) == before


def test_member_who_left_gets_404_afterwards(new_users):
    a, b = new_users(2)
    g = a.group(b, title="left")
    b.say(g["id"])
    assert b.delete(f"/v1/threads/{g['id']}/members/{b.id}").status == 204
    before = snapshot(a, g["id"])
    assert_all_404(b, g["id"], a.id)
    assert snapshot(a, g["id"]) == before
    # and added again, they see it again
    assert a.post(f"/v1/threads/{g['id']}/members", {"user_ids": [b.id]}).status == 200
    assert b.thread(g["id"])["last_seq"] == 1
