/* idmap: linear-probing hash map from non-zero uint64 ids to pointers, with backward-shift
 * deletion (no tombstones). */
#include "lib/idmap.h"

#include <assert.h>
#include <stdlib.h>

#include "lib/xalloc.h"

static size_t slot_of(uint64_t id, size_t cap)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t)id & (cap - 1);
}

void idmap_init(struct idmap *m)
{
    m->cap = 64;
    m->count = 0;
    m->keys = xcalloc(m->cap, sizeof(uint64_t));
    m->vals = xcalloc(m->cap, sizeof(void *));
}

void idmap_free(struct idmap *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->count = 0;
}

static void idmap_grow(struct idmap *m)
{
    struct idmap n = {xcalloc(m->cap * 2, sizeof(uint64_t)), xcalloc(m->cap * 2, sizeof(void *)),
                      m->cap * 2, 0};
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            idmap_put(&n, m->keys[i], m->vals[i]);
    idmap_free(m);
    *m = n;
}

void idmap_put(struct idmap *m, uint64_t id, void *val)
{
    assert(id != 0);
    if ((m->count + 1) * 4 > m->cap * 3)
        idmap_grow(m);
    size_t i = slot_of(id, m->cap);
    while (m->keys[i] && m->keys[i] != id)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        m->count++;
    m->keys[i] = id;
    m->vals[i] = val;
}

void *idmap_get(const struct idmap *m, uint64_t id)
{
    if (!id || !m->cap)
        return NULL;
    size_t i = slot_of(id, m->cap);
    while (m->keys[i]) {
        if (m->keys[i] == id)
            return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

void idmap_del(struct idmap *m, uint64_t id)
{
    size_t mask = m->cap - 1;
    size_t i = slot_of(id, m->cap);
    while (m->keys[i] && m->keys[i] != id)
        i = (i + 1) & mask;
    if (!m->keys[i])
        return;
    m->keys[i] = 0;
    m->vals[i] = NULL;
    m->count--;
    /* Backward-shift the following cluster so lookups never stop at the hole. */
    size_t j = (i + 1) & mask;
    while (m->keys[j]) {
        size_t home = slot_of(m->keys[j], m->cap);
        /* Move j into i if home is not cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            m->keys[j] = 0;
            m->vals[j] = NULL;
            i = j;
        }
        j = (j + 1) & mask;
    }
}

void idmap_foreach(const struct idmap *m, void (*fn)(void *val, void *ctx), void *ctx)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            fn(m->vals[i], ctx);
}
