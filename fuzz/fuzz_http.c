/* fuzz_http.c — the request path of the HTTP glue without a connection or a
 * database: http_route() (src/http/http.c: API or static, the real route
 * table, the 404/405 problem answers), then for a routed POST/PUT/PATCH the
 * JSON gate and its 400 answer, as dispatch() runs them. No handler is
 * called. The input is "METHOD path\n" and the body after the newline.
 * Invariant: every refusal is a problem+json answer whose body serializes
 * (send_response() drops the connection when it does not). */
#include <string.h>

#include "fuzz.h"
#include "http/http.h"
#include "http/jsonv.h"

/* Checks the answer is a problem that json_dumps can write. */
static void check_problem(const struct response *res)
{
    FUZZ_CHECK(res->status >= 400 && res->status < 600);
    FUZZ_CHECK(res->json != NULL);
    FUZZ_CHECK(strcmp(res->content_type, "application/problem+json") == 0);
    char *text = json_dumps(res->json, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char *nl = memchr(s, '\n', size), *sp;
    size_t head = nl ? (size_t)(nl - s) : size;
    if (nl)
        *nl = '\0';
    struct request req = {.method = "GET", .path = s};
    if ((sp = strchr(s, ' ')) != NULL) {
        *sp = '\0';
        req.method = s;
        req.path = sp + 1;
    }
    struct response res;
    resp_init(&res);
    size_t slot = 0;
    const struct route *route = http_route(&req, &res, &slot);
    if (route == NULL) {
        check_problem(&res);
    } else if (strcmp(req.method, "POST") == 0 || strcmp(req.method, "PUT") == 0 ||
               strcmp(req.method, "PATCH") == 0) {
        const char *why;
        size_t body_len = nl ? size - head - 1 : 0;
        if (body_len > 0 && json_body_parse(s + head + 1, body_len, &req.body, &why) < 0) {
            resp_problem(&res, 400, "invalid_json", "%s", why);
            check_problem(&res);
        }
        if (req.body)
            json_decref(req.body);
    }
    resp_clear(&res);
    free(s);
    return 0;
}
