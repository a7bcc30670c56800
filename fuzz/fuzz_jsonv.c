/* fuzz_jsonv.c — the JSON gate (json_body_parse) and the field readers.
 * Invariants: the gate either returns an object or a reason; a reader that
 * refuses leaves a 400 (422 for too many ids) problem body in the response. */
#include <string.h>

#include "fuzz.h"
#include "http/jsonv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = NULL;
    const char *why = NULL;
    if (json_body_parse((const char *)data, size, &body, &why) < 0) {
        FUZZ_CHECK(why != NULL && body == NULL);
        return 0;
    }
    FUZZ_CHECK(json_is_object(body));
    static const char *const keys[] = {"text", "seq", "name", "user_ids", "muted", "a", ""};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        struct response res;
        int64_t i, *ids = NULL;
        size_t n = 0, len;
        bool b, present;
        const char *s;
        resp_init(&res);
        if (!jv_int(&res, body, keys[k], JV_OPTIONAL, -5, 1000, &i, &present))
            FUZZ_CHECK(res.status == 400 && res.json != NULL);
        resp_clear(&res);
        resp_init(&res);
        if (!jv_str(&res, body, keys[k], JV_NULLABLE, 1, 64, &s, &len))
            FUZZ_CHECK(res.status == 400 && res.json != NULL);
        resp_clear(&res);
        resp_init(&res);
        if (!jv_bool(&res, body, keys[k], JV_OPTIONAL, &b, &present))
            FUZZ_CHECK(res.status == 400 && res.json != NULL);
        resp_clear(&res);
        resp_init(&res);
        if (jv_ids(&res, body, keys[k], JV_OPTIONAL, 8, &ids, &n)) {
            FUZZ_CHECK(n <= 8);
            for (size_t j = 0; j < n; j++)
                FUZZ_CHECK(ids[j] >= 1);
        } else {
            /* more than max ids is 422 too_many_members */
            FUZZ_CHECK((res.status == 400 || res.status == 422) && res.json != NULL);
        }
        free(ids);
        resp_clear(&res);
    }
    json_decref(body);
    return 0;
}
