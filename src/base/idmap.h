/* idmap.h — a hash map from int64 ids to pointers, open addressing with
 * linear probing and backward-shift deletion. Not thread-safe: the owner
 * locks. Keys are ids > 0 (0 marks a free slot).
 *
 * May call: libc. */
#ifndef CHAT_IDMAP_H
#define CHAT_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap {
    int64_t *keys;
    void **values;
    size_t cap; /* a power of two */
    size_t count;
};

/* The value of key, or NULL. */
void *idmap_get(const struct idmap *m, int64_t key);

/* Sets key to value (value not NULL), growing as needed. Returns 0, or -1
 * when out of memory (the map is unchanged). */
int idmap_put(struct idmap *m, int64_t key, void *value);

/* Removes key; returns its value or NULL when absent. */
void *idmap_del(struct idmap *m, int64_t key);

/* Frees the map's arrays (not the values). */
void idmap_free(struct idmap *m);

#endif
