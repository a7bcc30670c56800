/* mentions.c — `@username` and `@all` in a body (mentions.h). */
#include "chat/mentions.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"

/* A character of a username ([a-z0-9_.-], upper case folded). */
static bool name_char(unsigned char c) { return isalnum(c) || c == '_' || c == '.' || c == '-'; }

int mentions_resolve(int64_t thread_id, int64_t sender, bool is_group, const char *body, size_t len,
                     char **out)
{
    *out = NULL;
    if (memchr(body, '@', len) == NULL)
        return DB_OK;
    json_t *names = json_array();
    bool all = false;
    for (size_t i = 0; i < len && json_array_size(names) < MENTIONS_MAX; i++) {
        if (body[i] != '@' || (i > 0 && name_char((unsigned char)body[i - 1])))
            continue;
        size_t k = i + 1;
        while (k < len && name_char((unsigned char)body[k]) && k - i - 1 < 33)
            k++;
        size_t n = k - i - 1;
        /* A name is 3..32 characters; a trailing dot ends a sentence. */
        while (n > 0 && body[i + n] == '.')
            n--;
        if (n < 3 || n > 32)
            continue;
        char name[33];
        for (size_t c = 0; c < n; c++)
            name[c] = (char)tolower((unsigned char)body[i + 1 + c]);
        name[n] = '\0';
        if (strcmp(name, "all") == 0)
            all = true;
        else
            json_array_append_new(names, json_string(name));
        i = k - 1;
    }
    json_t *ids = json_array();
    int rc = DB_OK;
    struct db_res *r = NULL;
    if (json_array_size(names) > 0) {
        char *list = json_dumps(names, JSON_COMPACT);
        rc = list ? db_query("SELECT DISTINCT u.id FROM JSON_TABLE(?, '$[*]' COLUMNS (n "
                             "VARCHAR(32) PATH '$')) j JOIN users u ON u.username = j.n "
                             "JOIN thread_members tm ON tm.thread_id = ? AND tm.owner_id = u.id "
                             "ORDER BY u.id",
                             &r, DB_ARGS(DB_STR(list), DB_INT(thread_id)))
                  : DB_ERR;
        free(list);
        for (int i = 0; rc == 0 && i < r->nrows; i++)
            json_array_append_new(ids, json_integer(db_int(r, i, 0)));
        if (rc == 0)
            db_res_free(r);
    }
    /* @all: a group admin's. */
    if (rc == 0 && all) {
        all = false;
        if (is_group) {
            rc = db_query("SELECT 1 FROM thread_members WHERE thread_id = ? AND owner_id = ? "
                          "AND role = 'admin'",
                          &r, DB_ARGS(DB_INT(thread_id), DB_INT(sender)));
            if (rc == 0) {
                all = r->nrows > 0;
                db_res_free(r);
            }
        }
    }
    json_decref(names);
    if (rc == 0 && (json_array_size(ids) > 0 || all)) {
        json_t *m = json_pack("{s:O, s:b}", "user_ids", ids, "all", all);
        *out = m ? json_dumps(m, JSON_COMPACT) : NULL;
        json_decref(m);
        if (*out == NULL)
            rc = DB_ERR;
    }
    json_decref(ids);
    return rc;
}
