/* router.c — matching a method and path against the route table.
 *
 * A linear scan: the table has a few dozen rows and a match costs a few
 * string compares, far below one database round trip. */
#include "http/router.h"

#include <string.h>

#include "base/util.h"

/* Matches path against pattern segment by segment, collecting {id}s and
 * the offsets of {text}s. */
static bool path_matches(const char *pattern, const char *path, int64_t *params, int *nparams)
{
    int np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return false;
        p++, s++;
        size_t plen = strcspn(p, "/"), slen = strcspn(s, "/");
        if (plen == 4 && memcmp(p, "{id}", 4) == 0) {
            char num[24];
            int64_t v;
            if (slen == 0 || slen >= sizeof num || np == REQ_MAX_PARAMS)
                return false;
            memcpy(num, s, slen);
            num[slen] = '\0';
            if (parse_int(num, &v) < 0 || v < 1)
                return false;
            params[np++] = v;
        } else if (plen == 6 && memcmp(p, "{text}", 6) == 0) {
            if (slen == 0 || slen > 255 || np == REQ_MAX_PARAMS)
                return false;
            params[np++] = s - path; /* where the segment starts */
        } else if (plen != slen || memcmp(p, s, plen) != 0) {
            return false;
        }
        p += plen, s += slen;
    }
    if (*p || *s)
        return false;
    *nparams = np;
    return true;
}

enum router_result router_match(const struct route *table, size_t n, const char *method,
                                const char *path, const struct route **out, int64_t *params,
                                int *nparams, char *allow, size_t allow_len)
{
    bool path_known = false;
    size_t used = 0;
    if (allow_len)
        allow[0] = '\0';
    const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
    for (size_t i = 0; i < n; i++) {
        int64_t tmp[REQ_MAX_PARAMS];
        int ntmp = 0;
        if (!path_matches(table[i].pattern, path, tmp, &ntmp))
            continue;
        if (strcmp(table[i].method, want) == 0) {
            *out = &table[i];
            memcpy(params, tmp, sizeof tmp);
            *nparams = ntmp;
            return ROUTER_FOUND;
        }
        path_known = true;
        size_t mlen = strlen(table[i].method);
        if (!strstr(allow, table[i].method) && used + mlen + 3 < allow_len) {
            if (used) {
                memcpy(allow + used, ", ", 2);
                used += 2;
            }
            memcpy(allow + used, table[i].method, mlen + 1);
            used += mlen;
        }
    }
    return path_known ? ROUTER_BAD_METHOD : ROUTER_NOT_FOUND;
}
