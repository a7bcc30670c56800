/* idmap.c — open-addressing id → pointer map (see idmap.h). */
#include "base/idmap.h"

#include <stdlib.h>

static size_t slot(const struct idmap *m, int64_t key)
{
    uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & (m->cap - 1);
}

void *idmap_get(const struct idmap *m, int64_t key)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = slot(m, key);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return m->values[i];
        if (m->keys[i] == 0)
            return NULL;
    }
}

static int grow(struct idmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    struct idmap n = {calloc(cap, sizeof(int64_t)), calloc(cap, sizeof(void *)), cap, 0};
    if (n.keys == NULL || n.values == NULL) {
        free(n.keys);
        free(n.values);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            idmap_put(&n, m->keys[i], m->values[i]);
    idmap_free(m);
    *m = n;
    return 0;
}

int idmap_put(struct idmap *m, int64_t key, void *value)
{
    if ((m->count + 1) * 4 > m->cap * 3 && grow(m) < 0)
        return -1;
    size_t i = slot(m, key);
    while (m->keys[i] != 0 && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (m->keys[i] == 0)
        m->count++;
    m->keys[i] = key;
    m->values[i] = value;
    return 0;
}

void *idmap_del(struct idmap *m, int64_t key)
{
    if (m->cap == 0)
        return NULL;
    size_t i = slot(m, key);
    while (m->keys[i] != key) {
        if (m->keys[i] == 0)
            return NULL;
        i = (i + 1) & (m->cap - 1);
    }
    void *value = m->values[i];
    /* Backward-shift: move later entries of the run into the hole. */
    size_t hole = i;
    for (size_t j = (i + 1) & (m->cap - 1); m->keys[j] != 0; j = (j + 1) & (m->cap - 1)) {
        size_t home = slot(m, m->keys[j]);
        /* j's entry may move to hole when home is not cyclically in (hole, j]. */
        if ((j > hole && (home <= hole || home > j)) || (j < hole && home <= hole && home > j)) {
            m->keys[hole] = m->keys[j];
            m->values[hole] = m->values[j];
            hole = j;
        }
    }
    m->keys[hole] = 0;
    m->values[hole] = NULL;
    m->count--;
    return value;
}

void idmap_free(struct idmap *m)
{
    free(m->keys);
    free(m->values);
    m->keys = NULL;
    m->values = NULL;
    m->cap = m->count = 0;
}
