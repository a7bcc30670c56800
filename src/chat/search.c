/* search.c — the message index, its indexer, and queries (search.h).
 *
 * Tables (sql/015_search.sql): search_terms (term, at, thread_id, seq)
 * with the primary key in that order — a term's postings newest first
 * across all threads — and a second key (term, thread_id, seq) — a term's
 * postings in one thread; search_progress (thread_id, indexed_seq).
 *
 * A query drives from one term (the longest exact one: longer words are
 * rarer; or, for a query of prefixes only, the terms the longest prefix
 * stands for, at most PREFIX_TERMS of them) and reads its postings newest
 * first: thread by thread when the caller has few threads (or one is
 * named), else across all threads joined with the caller's memberships.
 * Every candidate is then read and checked against the whole query as the
 * message is now (search_matches). Rounds continue past rejected
 * candidates until the page is full or the postings end. */
#define _GNU_SOURCE
#include "chat/search.h"

#include <locale.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <wctype.h>

#include "base/idmap.h"
#include "base/log.h"
#include "base/util.h"
#include "chat/model.h"
#include "db/db.h"

/* ---- terms ---- */

static locale_t utf8_locale; /* C.UTF-8, for towlower_l / iswalnum_l */
static pthread_once_t locale_once = PTHREAD_ONCE_INIT;

static void locale_init(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    if (utf8_locale == (locale_t)0)
        log_warn("search: no C.UTF-8 locale; only ASCII letters fold to lower case");
}

/* Decodes the UTF-8 character at s (n bytes left) into *cp; returns its
 * length, or 0 for a byte that starts no valid character. */
static size_t decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len = (s[0] & 0xE0) == 0xC0   ? 2
                 : (s[0] & 0xF0) == 0xE0 ? 3
                 : (s[0] & 0xF8) == 0xF0 ? 4
                                         : 0;
    if (len == 0 || len > n)
        return 0;
    uint32_t c = s[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    *cp = c;
    return len;
}

/* Appends cp as UTF-8 to buf (room for 4 more bytes); returns the bytes. */
static size_t encode(uint32_t cp, char *buf)
{
    if (cp < 0x80) {
        buf[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        buf[0] = (char)(0xC0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        buf[0] = (char)(0xE0 | (cp >> 12));
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    buf[0] = (char)(0xF0 | (cp >> 18));
    buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    buf[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Chinese, Japanese and Korean characters: written without spaces. */
static bool is_cjk(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0xF900 && c <= 0xFAFF) ||
           (c >= 0x3040 && c <= 0x30FF) || (c >= 0x31F0 && c <= 0x31FF) ||
           (c >= 0xAC00 && c <= 0xD7AF) || (c >= 0x1100 && c <= 0x11FF) ||
           (c >= 0x3130 && c <= 0x318F);
}

static bool is_word(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_';
    return utf8_locale != (locale_t)0 ? iswalnum_l((wint_t)c, utf8_locale) != 0 : true;
}

static uint32_t fold(uint32_t c)
{
    if (c < 0x80)
        return c >= 'A' && c <= 'Z' ? c + 32 : c;
    return utf8_locale != (locale_t)0 ? (uint32_t)towlower_l((wint_t)c, utf8_locale) : c;
}

void search_terms_of(const char *text, size_t len, void (*fn)(const char *, size_t, void *),
                     void *ctx)
{
    pthread_once(&locale_once, locale_init);
    const unsigned char *s = (const unsigned char *)text;
    char term[SEARCH_TERM_MAX + 8];
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = decode(s + i, len - i, &cp);
        if (n == 0) {
            i++;
            continue;
        }
        if (is_cjk(cp)) {
            /* Each character, and each pair of neighbours. */
            uint32_t prev = 0;
            while (i < len && (n = decode(s + i, len - i, &cp)) > 0 && is_cjk(cp)) {
                size_t k = encode(cp, term);
                fn(term, k, ctx);
                if (prev) {
                    size_t m = encode(prev, term);
                    m += encode(cp, term + m);
                    fn(term, m, ctx);
                }
                prev = cp;
                i += n;
            }
            continue;
        }
        if (!is_word(cp)) {
            i += n;
            continue;
        }
        size_t k = 0;
        while (i < len && (n = decode(s + i, len - i, &cp)) > 0 && is_word(cp) && !is_cjk(cp)) {
            char ch[4];
            size_t m = encode(fold(cp), ch);
            if (k + m <= SEARCH_TERM_MAX) {
                memcpy(term + k, ch, m);
                k += m;
            }
            i += n;
        }
        /* C++, C#, F#: a trailing + or # belongs to the word. */
        while (i < len && (s[i] == '+' || s[i] == '#') && k < SEARCH_TERM_MAX)
            term[k++] = (char)s[i++];
        fn(term, k, ctx);
    }
}

/* Lower-cases text (len bytes) the way terms are, into a new string. */
static char *lower(const char *text, size_t len, size_t *out_len)
{
    pthread_once(&locale_once, locale_init);
    char *out = malloc(len * 2 + 5);
    if (out == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = decode((const unsigned char *)text + i, len - i, &cp);
        if (n == 0) {
            out[k++] = text[i++];
            continue;
        }
        k += encode(fold(cp), out + k);
        i += n;
    }
    out[k] = '\0';
    *out_len = k;
    return out;
}

/* ---- queries ---- */

struct parse_ctx {
    struct search_query *q;
    int found; /* terms of the word being read */
    bool overflow;
    char last[SEARCH_TERM_MAX + 1];
};

/* Adds a term to the query's required terms (once). */
static void add_term(const char *t, size_t n, void *arg)
{
    struct parse_ctx *c = arg;
    c->found++;
    snprintf(c->last, sizeof c->last, "%.*s", (int)n, t);
    for (int i = 0; i < c->q->nterms; i++)
        if (strcmp(c->q->terms[i], c->last) == 0)
            return;
    if (c->q->nterms == SEARCH_TERMS_MAX) {
        c->overflow = true;
        return;
    }
    snprintf(c->q->terms[c->q->nterms], SEARCH_TERM_MAX + 1, "%s", c->last);
    c->q->term_prefix[c->q->nterms++] = false;
}

int search_parse(const char *q, struct search_query *out, const char **why)
{
    memset(out, 0, sizeof *out);
    struct parse_ctx c = {.q = out};
    size_t len = strlen(q);
    for (size_t i = 0; i < len;) {
        if (q[i] == ' ' || q[i] == '\t' || q[i] == '\n' || q[i] == '\r') {
            i++;
            continue;
        }
        bool quoted = q[i] == '"';
        size_t start = quoted ? i + 1 : i, end = start;
        if (quoted) {
            while (end < len && q[end] != '"')
                end++;
            i = end < len ? end + 1 : end;
        } else {
            while (end < len && q[end] != ' ' && q[end] != '\t' && q[end] != '\n' &&
                   q[end] != '\r' && q[end] != '"')
                end++;
            i = end;
        }
        bool prefix = !quoted && end > start && q[end - 1] == '*';
        size_t wlen = end - start - (prefix ? 1 : 0);
        c.found = 0;
        int before = out->nterms;
        search_terms_of(q + start, wlen, add_term, &c);
        if (c.found == 0 || out->nparts == SEARCH_TERMS_MAX * 2)
            continue;
        struct search_part *p = &out->parts[out->nparts++];
        size_t llen;
        char *low = lower(q + start, wlen, &llen);
        if (low == NULL)
            return *why = "out of memory", -1;
        /* One plain term: matched as a term; anything else (a quote, a
         * word of several terms, CJK) as a phrase. */
        bool plain = !quoted && c.found == 1 && strcmp(c.last, low) == 0;
        snprintf(p->text, sizeof p->text, "%s", plain ? c.last : low);
        free(low);
        p->phrase = !plain;
        p->prefix = prefix && plain;
        if (prefix) {
            /* The word's last term is a prefix. */
            for (int k = before; k < out->nterms; k++)
                if (strcmp(out->terms[k], c.last) == 0)
                    out->term_prefix[k] = true;
        }
    }
    if (c.overflow)
        return *why = "at most 8 different words", -1;
    if (out->nterms == 0)
        return *why = "the query holds no word (letters or digits) to search for", -1;
    return 0;
}

struct body_terms {
    char **terms;
    size_t n, cap;
    bool failed;
};

static void collect(const char *t, size_t n, void *arg)
{
    struct body_terms *b = arg;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        char **terms = realloc(b->terms, cap * sizeof *terms);
        if (terms == NULL) {
            b->failed = true;
            return;
        }
        b->terms = terms;
        b->cap = cap;
    }
    char *s = strndup(t, n);
    if (s == NULL) {
        b->failed = true;
        return;
    }
    b->terms[b->n++] = s;
}

bool search_matches(const struct search_query *q, const char *body, size_t len)
{
    struct body_terms b = {0};
    search_terms_of(body, len, collect, &b);
    size_t llen = 0;
    char *low = NULL;
    bool ok = !b.failed;
    for (int i = 0; ok && i < q->nparts; i++) {
        const struct search_part *p = &q->parts[i];
        if (p->phrase) {
            if (low == NULL && (low = lower(body, len, &llen)) == NULL)
                ok = false;
            else
                ok = strstr(low, p->text) != NULL;
            continue;
        }
        size_t n = strlen(p->text);
        bool found = false;
        for (size_t k = 0; k < b.n && !found; k++)
            found = p->prefix ? strncmp(b.terms[k], p->text, n) == 0
                              : strcmp(b.terms[k], p->text) == 0;
        ok = found;
    }
    /* A phrase's own terms too (its text matched as a substring). */
    for (int t = 0; ok && t < q->nterms; t++) {
        size_t n = strlen(q->terms[t]);
        bool found = false;
        for (size_t k = 0; k < b.n && !found; k++)
            found = q->term_prefix[t] ? strncmp(b.terms[k], q->terms[t], n) == 0
                                      : strcmp(b.terms[k], q->terms[t]) == 0;
        ok = found;
    }
    for (size_t k = 0; k < b.n; k++)
        free(b.terms[k]);
    free(b.terms);
    free(low);
    return ok;
}

/* ---- the index ---- */

static int term_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The distinct terms of a body, sorted, as a new array (caller frees each
 * and the array); *n their number. NULL when memory ran out. */
static char **distinct_terms(const char *body, size_t len, size_t *n)
{
    struct body_terms b = {0};
    search_terms_of(body, len, collect, &b);
    if (b.failed) {
        for (size_t k = 0; k < b.n; k++)
            free(b.terms[k]);
        free(b.terms);
        return NULL;
    }
    if (b.n > 1)
        qsort(b.terms, b.n, sizeof *b.terms, term_cmp);
    size_t w = 0;
    for (size_t k = 0; k < b.n; k++) {
        if (w > 0 && strcmp(b.terms[w - 1], b.terms[k]) == 0)
            free(b.terms[k]);
        else
            b.terms[w++] = b.terms[k];
    }
    *n = w;
    if (b.terms == NULL)
        b.terms = malloc(sizeof *b.terms);
    return b.terms;
}

static void free_terms(char **terms, size_t n)
{
    for (size_t k = 0; terms && k < n; k++)
        free(terms[k]);
    free(terms);
}

/* Appends [term, thread_id, seq, at] rows for one message's terms. */
static bool add_postings(json_t *rows, const char *body, size_t len, int64_t thread_id, int64_t seq,
                         int64_t at)
{
    size_t n;
    char **terms = distinct_terms(body, len, &n);
    if (terms == NULL)
        return false;
    for (size_t k = 0; k < n; k++)
        json_array_append_new(rows, json_pack("[s, I, I, I]", terms[k], (json_int_t)thread_id,
                                              (json_int_t)seq, (json_int_t)at));
    free_terms(terms, n);
    return true;
}

/* Inserts rows ([term, thread_id, seq, at]). */
static int insert_postings(json_t *rows)
{
    if (json_array_size(rows) == 0)
        return DB_OK;
    char *list = json_dumps(rows, JSON_COMPACT);
    int rc = list ? db_exec("INSERT IGNORE INTO search_terms (term, at, thread_id, seq) "
                            "SELECT j.term, j.at, j.t, j.q FROM JSON_TABLE(?, '$[*]' COLUMNS "
                            "(term VARCHAR(64) PATH '$[0]', t BIGINT PATH '$[1]', "
                            "q BIGINT PATH '$[2]', at BIGINT PATH '$[3]')) j",
                            DB_ARGS(DB_STR(list)))
                  : DB_ERR;
    free(list);
    return rc;
}

/* One indexing transaction takes at most this many threads, this many
 * messages of each, and this many in all (short transactions: the indexer
 * looks at the sends again after each one). */
#define INDEX_THREADS 64
#define INDEX_PER_THREAD 500
#define INDEX_PER_TX 1000

struct index_ctx {
    const int64_t *threads; /* the threads to index */
    size_t n;
    int64_t done;                    /* messages indexed */
    int64_t more[2 * INDEX_THREADS]; /* threads with more past this batch */
    size_t nmore;
};

/* Indexes the messages of c->threads past their marks, in one transaction:
 * one statement reads them, one inserts every term, one moves the marks. */
static int index_tx(void *arg)
{
    struct index_ctx *c = arg;
    c->done = 0;
    c->nmore = 0;
    struct sbuf ids = {0};
    sb_ids(&ids, c->threads, c->n);
    if (sb_done(&ids) == NULL) {
        free(ids.s);
        return DB_ERR;
    }
    struct db_res *r;
    int rc = db_query("SELECT STRAIGHT_JOIN m.thread_id, m.seq, m.body, m.created_at, "
                      "m.deleted_at IS NOT NULL FROM " DB_IDS_TABLE " LEFT JOIN search_progress s "
                      "ON s.thread_id = j.id JOIN messages m ON m.thread_id = j.id "
                      "AND m.seq > COALESCE(s.indexed_seq, 0) "
                      "AND m.seq <= COALESCE(s.indexed_seq, 0) + ? ORDER BY m.thread_id, m.seq "
                      "LIMIT ?",
                      &r, DB_ARGS(DB_STR(ids.s), DB_INT(INDEX_PER_THREAD), DB_INT(INDEX_PER_TX)));
    free(ids.s);
    if (rc < 0)
        return rc;
    json_t *rows = json_array(), *marks = json_array();
    for (int i = 0; i < r->nrows && rc == 0; i++) {
        int64_t t = db_int(r, i, 0), q = db_int(r, i, 1);
        if (!db_int(r, i, 4)) { /* a deleted message has nothing to find */
            const char *body = db_str(r, i, 2);
            if (!add_postings(rows, body, strlen(body), t, q, db_int(r, i, 3)))
                rc = DB_ERR;
        }
        bool last = i + 1 == r->nrows || db_int(r, i + 1, 0) != t;
        if (last) {
            json_array_append_new(marks, json_pack("[I, I]", (json_int_t)t, (json_int_t)q));
            int first = i;
            while (first > 0 && db_int(r, first - 1, 0) == t)
                first--;
            if (i - first + 1 == INDEX_PER_THREAD && c->nmore < INDEX_THREADS)
                c->more[c->nmore++] = t;
        }
    }
    c->done = r->nrows;
    if (r->nrows == INDEX_PER_TX) /* cut short: every thread of the batch again */
        for (size_t k = 0; k < c->n && c->nmore < 2 * INDEX_THREADS; k++)
            c->more[c->nmore++] = c->threads[k];
    db_res_free(r);
    if (rc == 0)
        rc = insert_postings(rows);
    json_decref(rows);
    char *m = rc == 0 && json_array_size(marks) ? json_dumps(marks, JSON_COMPACT) : NULL;
    json_decref(marks);
    if (m)
        rc = db_exec(
            "INSERT INTO search_progress (thread_id, indexed_seq) SELECT j.t, j.q FROM "
            "JSON_TABLE(?, '$[*]' COLUMNS (t BIGINT PATH '$[0]', q BIGINT PATH '$[1]')) j "
            "ON DUPLICATE KEY UPDATE indexed_seq = GREATEST(indexed_seq, VALUES(indexed_seq))",
            DB_ARGS(DB_STR(m)));
    free(m);
    return rc;
}

/* The indexer's queue: thread ids, each once. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct idmap queued;
static int64_t *queue;
static size_t nqueue, capqueue;
static bool running, started;
static atomic_bool indexing = true; /* search_start(false) turns it off */
static int64_t last_note_ms,
    first_note_ms; /* mono ms of the newest / oldest waiting note; under mu */
static pthread_t indexer;

static void enqueue_locked(int64_t id)
{
    if (idmap_get(&queued, id))
        return;
    if (nqueue == capqueue) {
        size_t cap = capqueue ? capqueue * 2 : 256;
        int64_t *q = realloc(queue, cap * sizeof *q);
        if (q == NULL)
            return; /* the next catch-up finds it */
        queue = q;
        capqueue = cap;
    }
    queue[nqueue++] = id;
    idmap_put(&queued, id, (void *)1);
}

void search_note(const int64_t *ids, size_t n)
{
    if (!atomic_load(&indexing) || n == 0)
        return;
    pthread_mutex_lock(&mu);
    last_note_ms = mono_ms();
    if (first_note_ms == 0)
        first_note_ms = last_note_ms;
    for (size_t i = 0; i < n; i++)
        enqueue_locked(ids[i]);
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&mu);
}

/* Takes up to max queued threads into ids; returns how many. */
static size_t dequeue(int64_t *ids, size_t max)
{
    pthread_mutex_lock(&mu);
    size_t n = nqueue < max ? nqueue : max;
    memcpy(ids, queue, n * sizeof *ids);
    memmove(queue, queue + n, (nqueue - n) * sizeof *queue);
    nqueue -= n;
    for (size_t i = 0; i < n; i++)
        idmap_del(&queued, ids[i]);
    pthread_mutex_unlock(&mu);
    return n;
}

/* One indexing transaction over up to INDEX_THREADS queued threads.
 * Returns the messages indexed (0: nothing queued), or DB_E*. */
static int64_t index_round(void)
{
    int64_t ids[INDEX_THREADS];
    size_t n = dequeue(ids, sizeof ids / sizeof ids[0]);
    if (n == 0)
        return 0;
    struct index_ctx c = {.threads = ids, .n = n};
    int rc = db_tx(index_tx, &c);
    if (rc < 0) {
        log_warn("search: indexing %zu threads failed (%d); the next catch-up retries", n, rc);
        return rc;
    }
    /* Threads with more to index go to the back of the queue (not a note:
     * they must not look like new sends). */
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < c.nmore; i++)
        enqueue_locked(c.more[i]);
    pthread_mutex_unlock(&mu);
    return c.done > 0 ? c.done : 1;
}

int search_catch_up(void)
{
    struct db_res *r;
    int rc =
        db_query("SELECT t.id FROM threads t LEFT JOIN search_progress s ON s.thread_id = t.id "
                 "WHERE t.last_seq > COALESCE(s.indexed_seq, 0)",
                 &r, DB_NOARGS);
    if (rc < 0)
        return rc;
    int n = r->nrows;
    int64_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
    for (int i = 0; ids && i < n; i++)
        ids[i] = db_int(r, i, 0);
    db_res_free(r);
    if (ids == NULL)
        return DB_ERR;
    search_note(ids, (size_t)n);
    free(ids);
    return n;
}

/* The indexer yields to sends: a round starts once no send has committed
 * for INDEX_QUIET_MS, or when the oldest queued note has waited
 * INDEX_MAX_LAG_MS (so that a server that is never quiet still indexes, in
 * bigger rounds). Sends never wait for it; what it defers is its share of
 * the machine while sends saturate it. */
#define INDEX_QUIET_MS 300
#define INDEX_MAX_LAG_MS 20000

static void *indexer_main(void *arg)
{
    (void)arg;
    /* Below the HTTP and send threads for the CPU (lowering is always
     * allowed; a failure leaves it as it was). */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10) != 0)
        log_info("search: the indexer runs at the normal priority");
    pthread_mutex_lock(&mu);
    while (running) {
        if (nqueue == 0) {
            pthread_cond_wait(&cond, &mu);
            continue;
        }
        int64_t now = mono_ms();
        if (now - last_note_ms < INDEX_QUIET_MS && now - first_note_ms < INDEX_MAX_LAG_MS) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += INDEX_QUIET_MS * 1000000L;
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&cond, &mu, &until);
            continue;
        }
        /* One transaction, then the sends are looked at again. */
        pthread_mutex_unlock(&mu);
        index_round();
        pthread_mutex_lock(&mu);
        if (nqueue == 0)
            first_note_ms = 0;
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

int search_start(bool index)
{
    pthread_once(&locale_once, locale_init);
    atomic_store(&indexing, index);
    if (!index)
        return 0;
    running = true;
    if (pthread_create(&indexer, NULL, indexer_main, NULL) != 0) {
        running = false;
        return -1;
    }
    started = true;
    int n = search_catch_up();
    if (n > 0)
        log_info("search: %d threads to index", n);
    return 0;
}

void search_stop(void)
{
    if (!started)
        return;
    pthread_mutex_lock(&mu);
    running = false;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
    pthread_join(indexer, NULL);
    started = false;
    free(queue);
    queue = NULL;
    nqueue = capqueue = 0;
    idmap_free(&queued);
}

int search_reindex(int64_t thread_id, int64_t seq, int64_t at, const char *old_body, size_t old_len,
                   const char *new_body, size_t new_len)
{
    json_t *old = json_pack("[[I, s%]]", (json_int_t)seq, old_body, old_len);
    int rc = old ? search_forget(thread_id, old) : DB_ERR;
    json_decref(old);
    if (rc < 0 || new_body == NULL)
        return rc;
    json_t *rows = json_array();
    rc = add_postings(rows, new_body, new_len, thread_id, seq, at) ? insert_postings(rows) : DB_ERR;
    json_decref(rows);
    return rc;
}

int search_forget(int64_t thread_id, const json_t *rows)
{
    json_t *pairs = json_array(), *row;
    size_t i;
    json_array_foreach(rows, i, row) {
        const char *body = json_string_value(json_array_get(row, 1));
        json_int_t seq = json_integer_value(json_array_get(row, 0));
        size_t n;
        char **terms = body ? distinct_terms(body, strlen(body), &n) : NULL;
        for (size_t k = 0; terms && k < n; k++)
            json_array_append_new(pairs, json_pack("[s, I]", terms[k], seq));
        free_terms(terms, terms ? n : 0);
    }
    char *s = json_array_size(pairs) ? json_dumps(pairs, JSON_COMPACT) : NULL;
    bool empty = json_array_size(pairs) == 0;
    json_decref(pairs);
    if (empty)
        return DB_OK;
    int rc = s ? db_exec("DELETE p FROM JSON_TABLE(?, '$[*]' COLUMNS (t VARCHAR(64) PATH '$[0]', "
                         "q BIGINT PATH '$[1]')) j STRAIGHT_JOIN search_terms p "
                         "ON p.term = j.t AND p.thread_id = ? AND p.seq = j.q",
                         DB_ARGS(DB_STR(s), DB_INT(thread_id)))
               : DB_ERR;
    free(s);
    return rc;
}

/* ---- answering ---- */

/* Terms a prefix stands for, at most this many. */
#define PREFIX_TERMS 20
/* A caller with at most this many threads is searched thread by thread. */
#define FEW_THREADS 32

/* A candidate: a message position. */
struct cand {
    int64_t at, thread_id, seq;
};

static int cand_newest_first(const void *x, const void *y)
{
    const struct cand *a = x, *b = y;
    if (a->at != b->at)
        return a->at > b->at ? -1 : 1;
    if (a->thread_id != b->thread_id)
        return a->thread_id > b->thread_id ? -1 : 1;
    return a->seq > b->seq ? -1 : a->seq < b->seq;
}

struct cands {
    struct cand *v;
    size_t n, cap;
    /* Some query returned its limit: more may exist, all older than that
     * query's last row; floor is the newest of those last rows, and only
     * candidates at or above it are sure to have no newer one missing. */
    bool full;
    struct cand floor;
};

static bool cands_add(struct cands *c, int64_t at, int64_t thread_id, int64_t seq)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct cand *v = realloc(c->v, cap * sizeof *v);
        if (v == NULL)
            return false;
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = (struct cand){at, thread_id, seq};
    return true;
}

/* Adds rows (thread_id, seq, at) of one candidate query. */
static int take_rows(struct cands *c, int rc, struct db_res *r, int k)
{
    if (rc < 0)
        return rc;
    for (int i = 0; i < r->nrows; i++)
        if (!cands_add(c, db_int(r, i, 2), db_int(r, i, 0), db_int(r, i, 1))) {
            db_res_free(r);
            return DB_ERR;
        }
    if (r->nrows >= k) {
        struct cand last = c->v[c->n - 1];
        if (!c->full || cand_newest_first(&last, &c->floor) < 0)
            c->floor = last;
        c->full = true;
    }
    db_res_free(r);
    return DB_OK;
}

/* The cursor condition of the candidate queries: strictly older than
 * (at, thread, seq). Its five arguments are at, at, thread, thread, seq. */
#define OLDER "(p.at < ? OR (p.at = ? AND (p.thread_id < ? OR (p.thread_id = ? AND p.seq < ?))))"

/* Candidates for term t: up to k per thread of threads[0..n), or k across
 * the caller's threads. */
static int candidates(struct cands *c, const char *t, int64_t user, const int64_t *threads,
                      size_t n, bool per_thread, const struct cand *from, int k)
{
    struct db_res *r = NULL;
    if (!per_thread) {
        int rc =
            db_query("SELECT STRAIGHT_JOIN p.thread_id, p.seq, p.at FROM search_terms p "
                     "JOIN thread_members tm ON tm.owner_id = ? AND tm.thread_id = p.thread_id "
                     "WHERE p.term = ? AND " OLDER
                     " ORDER BY p.at DESC, p.thread_id DESC, p.seq DESC LIMIT ?",
                     &r,
                     DB_ARGS(DB_INT(user), DB_STR(t), DB_INT(from->at), DB_INT(from->at),
                             DB_INT(from->thread_id), DB_INT(from->thread_id), DB_INT(from->seq),
                             DB_INT(k)));
        return take_rows(c, rc, r, k);
    }
    for (size_t i = 0; i < n; i++) {
        int rc = db_query("SELECT p.thread_id, p.seq, p.at FROM search_terms p FORCE INDEX "
                          "(search_terms_thread) WHERE p.term = ? AND p.thread_id = ? AND " OLDER
                          " ORDER BY p.seq DESC LIMIT ?",
                          &r,
                          DB_ARGS(DB_STR(t), DB_INT(threads[i]), DB_INT(from->at), DB_INT(from->at),
                                  DB_INT(from->thread_id), DB_INT(from->thread_id),
                                  DB_INT(from->seq), DB_INT(k)));
        if ((rc = take_rows(c, rc, r, k)) < 0)
            return rc;
    }
    return DB_OK;
}

/* The terms the driving part stands for: the longest exact term, or the
 * terms the longest prefix stands for (read from the index). */
static int driving_terms(const struct search_query *q, char (*out)[SEARCH_TERM_MAX + 1], int *n)
{
    int best = -1;
    for (int i = 0; i < q->nterms; i++)
        if (!q->term_prefix[i] && (best < 0 || strlen(q->terms[i]) > strlen(q->terms[best])))
            best = i;
    if (best >= 0) {
        snprintf(out[0], SEARCH_TERM_MAX + 1, "%s", q->terms[best]);
        *n = 1;
        return DB_OK;
    }
    for (int i = 0; i < q->nterms; i++)
        if (best < 0 || strlen(q->terms[i]) > strlen(q->terms[best]))
            best = i;
    char like[SEARCH_TERM_MAX * 2 + 2];
    size_t k = 0;
    for (const char *p = q->terms[best]; *p; p++) {
        if (*p == '%' || *p == '_' || *p == '\\')
            like[k++] = '\\';
        like[k++] = *p;
    }
    like[k++] = '%';
    like[k] = '\0';
    struct db_res *r;
    int rc = db_query("SELECT term FROM search_terms WHERE term LIKE ? GROUP BY term LIMIT ?", &r,
                      DB_ARGS(DB_STR(like), DB_INT(PREFIX_TERMS)));
    if (rc < 0)
        return rc;
    *n = r->nrows;
    for (int i = 0; i < r->nrows; i++)
        snprintf(out[i], SEARCH_TERM_MAX + 1, "%s", db_str(r, i, 0));
    db_res_free(r);
    return DB_OK;
}

/* The columns of a candidate's message: MESSAGE_COLS, then hidden. */
static int read_candidates(int64_t user, const struct cand *v, size_t n, struct db_res **r)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_pack("[I, I]", (json_int_t)v[i].thread_id,
                                              (json_int_t)v[i].seq));
    char *s = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    int rc =
        s ? db_query("SELECT STRAIGHT_JOIN " MESSAGE_COLS_SEEN " FROM JSON_TABLE(?, '$[*]' "
                     "COLUMNS (t BIGINT PATH '$[0]', q BIGINT PATH '$[1]')) j "
                     "JOIN messages m ON m.thread_id = j.t AND m.seq = j.q" MESSAGE_HIDDEN_JOIN,
                     r, DB_ARGS(DB_STR(s), DB_INT(user)))
          : DB_ERR;
    free(s);
    return rc;
}

int search_messages(int64_t user, int64_t thread_id, const struct search_query *q,
                    int64_t before_at, int64_t before_thread, int64_t before_seq, int limit,
                    json_t *out, bool *more, int64_t *last_at, int64_t *last_thread,
                    int64_t *last_seq)
{
    *more = false;
    int rc;
    /* The threads searched. */
    int64_t *threads = NULL;
    size_t nthreads = 0;
    if (thread_id) {
        struct member_info mi;
        if ((rc = member_get(user, thread_id, &mi)) != 0)
            return rc;
        threads = malloc(sizeof *threads);
        if (threads == NULL)
            return DB_ERR;
        threads[nthreads++] = thread_id;
    } else {
        struct db_res *r;
        if ((rc = db_query("SELECT thread_id FROM thread_members WHERE owner_id = ?", &r,
                           DB_ARGS(DB_INT(user)))) < 0)
            return rc;
        threads = malloc(((size_t)r->nrows + 1) * sizeof *threads);
        for (int i = 0; threads && i < r->nrows; i++)
            threads[nthreads++] = db_int(r, i, 0);
        db_res_free(r);
        if (threads == NULL)
            return DB_ERR;
    }
    char drive[PREFIX_TERMS][SEARCH_TERM_MAX + 1];
    int ndrive = 0;
    if (nthreads == 0 || (rc = driving_terms(q, drive, &ndrive)) < 0 || ndrive == 0) {
        free(threads);
        return nthreads == 0 || ndrive == 0 ? DB_OK : rc;
    }
    bool per_thread = thread_id != 0 || (ndrive == 1 && nthreads <= FEW_THREADS);
    struct cand from = {before_at > 0 ? before_at : INT64_MAX, before_thread, before_seq};
    if (before_at <= 0)
        from.thread_id = from.seq = INT64_MAX;
    int found = 0, k = limit + 10;
    bool exhausted = false, examined = false;
    rc = DB_OK;
    for (int round = 0; round < 6 && found < limit && !exhausted && rc == 0; round++, k *= 2) {
        struct cands c = {0};
        for (int d = 0; d < ndrive && rc == 0; d++)
            rc = candidates(&c, drive[d], user, threads, nthreads, per_thread, &from, k);
        if (rc < 0 || c.n == 0) {
            exhausted = rc == 0;
            free(c.v);
            break;
        }
        qsort(c.v, c.n, sizeof *c.v, cand_newest_first);
        /* Duplicates (a prefix's terms) go; then only what is at or above
         * the floor is certain. */
        size_t w = 0, usable = 0;
        for (size_t i = 0; i < c.n; i++)
            if (w == 0 || cand_newest_first(&c.v[w - 1], &c.v[i]) != 0)
                c.v[w++] = c.v[i];
        while (usable < w && (!c.full || cand_newest_first(&c.v[usable], &c.floor) <= 0))
            usable++;
        struct db_res *r;
        if ((rc = read_candidates(user, c.v, usable, &r)) < 0) {
            free(c.v);
            break;
        }
        size_t i = 0;
        for (; i < usable && found < limit; i++) {
            for (int row = 0; row < r->nrows; row++) {
                if (db_int(r, row, MC_THREAD_ID) != c.v[i].thread_id ||
                    db_int(r, row, MC_SEQ) != c.v[i].seq)
                    continue;
                const char *body = db_str(r, row, MC_BODY);
                if (db_str(r, row, MC_COUNT) == NULL && db_str(r, row, MC_DELETED_AT) == NULL &&
                    search_matches(q, body, strlen(body))) {
                    json_array_append_new(out, view_message_row(r, row, 0));
                    found++;
                }
                break;
            }
        }
        db_res_free(r);
        /* Examined up to i: the next round (or page) starts after it. */
        if (i > 0) {
            from = c.v[i - 1];
            examined = true;
        }
        exhausted = !c.full && i == usable;
        free(c.v);
    }
    *more = rc == 0 && examined && !exhausted;
    *last_at = from.at;
    *last_thread = from.thread_id;
    *last_seq = from.seq;
    free(threads);
    return rc;
}
