/* idmap: 64-bit id -> pointer map (open addressing). Async results find their session by id
 * through one of these (conventions.md §10). Ids must be non-zero. */
#ifndef GANNET_LIB_IDMAP_H
#define GANNET_LIB_IDMAP_H
#include <stddef.h>
#include <stdint.h>

struct idmap {
    uint64_t *keys;
    void **vals;
    size_t cap; /* power of two */
    size_t count;
};

void idmap_init(struct idmap *m);
void idmap_free(struct idmap *m);
void idmap_put(struct idmap *m, uint64_t id, void *val);
void *idmap_get(const struct idmap *m, uint64_t id);
void idmap_del(struct idmap *m, uint64_t id);
/* Call fn for every entry; fn must not modify the map. */
void idmap_foreach(const struct idmap *m, void (*fn)(void *val, void *ctx), void *ctx);

#endif
