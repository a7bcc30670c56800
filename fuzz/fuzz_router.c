/* fuzz_router.c — the router over the real route table (handlers/routes.c;
 * no handler is ever called, so no database is needed). The input is
 * "METHOD path": up to the first space, then the rest. Invariants: a found
 * route has the method asked (or GET for HEAD), its {id}s in 1..2^53 in
 * params; a refused method lists an Allow header. */
#include <string.h>

#include "fuzz.h"
#include "http/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char *sp = strchr(s, ' ');
    const char *method = "GET", *path = s;
    if (sp) {
        *sp = '\0';
        method = s;
        path = sp + 1;
    }
    const struct route *route = NULL;
    int64_t params[REQ_MAX_PARAMS];
    int nparams = -1;
    char allow[64] = "";
    switch (router_match(routes, routes_count, method, path, &route, params, &nparams, allow,
                         sizeof allow)) {
    case ROUTER_FOUND:
        FUZZ_CHECK(route >= routes && route < routes + routes_count);
        FUZZ_CHECK(strcmp(route->method, method) == 0 ||
                   (strcmp(method, "HEAD") == 0 && strcmp(route->method, "GET") == 0));
        FUZZ_CHECK(nparams >= 0 && nparams <= REQ_MAX_PARAMS);
        for (int i = 0; i < nparams; i++)
            FUZZ_CHECK(params[i] >= 1 && params[i] <= (int64_t)1 << 53);
        break;
    case ROUTER_BAD_METHOD: FUZZ_CHECK(allow[0] != '\0' && strlen(allow) < sizeof allow); break;
    case ROUTER_NOT_FOUND: break;
    }
    free(s);
    return 0;
}
