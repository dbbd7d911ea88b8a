/* dir_cache: the in-memory cache of directory lookups and its shared generation counter (see
 * dir_cache.h). Entries live in one chained hash table under a mutex; a key is the operation's
 * letter followed by its case-folded arguments, the value the dir_result and the bytes the
 * operation returns (a struct, or NUL-separated list members). */
#include "dir/dir_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define DIR_CACHE_BUCKETS 4096

struct cache_entry {
    struct cache_entry *next;
    uint64_t hash;
    time_t expires; /* monotonic seconds; 0 = never */
    enum dir_result result;
    size_t key_len, value_len;
    char data[]; /* key, then value */
};

struct dir_cache_store {
    pthread_mutex_t lock;
    struct cache_entry *buckets[DIR_CACHE_BUCKETS];
    unsigned max_entries, ttl_s;
    uint64_t *gen_map; /* the shared counter (MAP_SHARED) */
    uint64_t gen_seen; /* the generation the entries belong to */
    struct dir_cache_stats stats;
};

struct dir_cache {
    struct dir dir; /* first: struct dir * <-> struct dir_cache * */
    struct dir_cache_store *store;
    struct dir *backing;
    bool missed;
};

static struct dir_cache_store *global_store;

/* ---- the generation file ---- */

static uint64_t *gen_map_open(const char *path, const char **err_r)
{
    static __thread char msg[600];
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 ||
        (st.st_size < (off_t)sizeof(uint64_t) && ftruncate(fd, sizeof(uint64_t)) < 0)) {
        snprintf(msg, sizeof(msg), "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        *err_r = msg;
        return NULL;
    }
    void *m = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        snprintf(msg, sizeof(msg), "%s: cannot map: %s", path, strerror(errno));
        *err_r = msg;
        return NULL;
    }
    return m;
}

void dir_cache_gen_path(const char *data_dir, char out[4096])
{
    snprintf(out, 4096, "%s/directory.gen", data_dir);
}

int dir_cache_bump_file(const char *gen_path, const char **err_r)
{
    if (access(gen_path, F_OK) < 0 && errno == ENOENT)
        return 0;
    uint64_t *m = gen_map_open(gen_path, err_r);
    if (!m)
        return -1;
    __atomic_fetch_add(m, 1, __ATOMIC_SEQ_CST);
    munmap(m, sizeof(uint64_t));
    return 0;
}

void dir_cache_bump_if_changed(sqlite3 *db, const char *data_dir)
{
    if (!db || sqlite3_total_changes(db) == 0)
        return;
    char gen[4096];
    const char *err = NULL;
    dir_cache_gen_path(data_dir, gen);
    if (dir_cache_bump_file(gen, &err) < 0)
        fprintf(stderr, "gannet: warning: the running server may not see this change at once: %s\n",
                err);
}

/* ---- the store ---- */

struct dir_cache_store *dir_cache_store_new(const char *gen_path, unsigned max_entries,
                                            unsigned ttl_s, const char **err_r)
{
    uint64_t *m = gen_map_open(gen_path, err_r);
    if (!m)
        return NULL;
    struct dir_cache_store *s = xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->gen_map = m;
    s->gen_seen = __atomic_load_n(m, __ATOMIC_ACQUIRE);
    s->max_entries = max_entries ? max_entries : 1;
    s->ttl_s = ttl_s;
    return s;
}

static void store_flush_locked(struct dir_cache_store *s)
{
    for (size_t i = 0; i < DIR_CACHE_BUCKETS; i++) {
        struct cache_entry *e = s->buckets[i];
        while (e) {
            struct cache_entry *next = e->next;
            free(e);
            e = next;
        }
        s->buckets[i] = NULL;
    }
    if (s->stats.entries)
        s->stats.flushes++;
    s->stats.entries = 0;
}

void dir_cache_store_free(struct dir_cache_store **sp)
{
    struct dir_cache_store *s = *sp;
    if (!s)
        return;
    if (global_store == s)
        global_store = NULL;
    store_flush_locked(s);
    munmap(s->gen_map, sizeof(uint64_t));
    pthread_mutex_destroy(&s->lock);
    free(s);
    *sp = NULL;
}

void dir_cache_global_set(struct dir_cache_store *s)
{
    global_store = s;
}

struct dir_cache_store *dir_cache_global(void)
{
    return global_store;
}

void dir_cache_note_change(void)
{
    struct dir_cache_store *s = global_store;
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    __atomic_fetch_add(s->gen_map, 1, __ATOMIC_SEQ_CST);
    store_flush_locked(s);
    s->gen_seen = __atomic_load_n(s->gen_map, __ATOMIC_ACQUIRE);
    pthread_mutex_unlock(&s->lock);
}

void dir_cache_stats(struct dir_cache_store *s, struct dir_cache_stats *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->lock);
}

static time_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static uint64_t key_hash(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
    return h;
}

/* Copy the entry's value out (under the lock). true on a hit. */
static bool store_get(struct dir_cache_store *s, const struct buf *key, enum dir_result *res,
                      struct buf *value)
{
    uint64_t h = key_hash(key->data, key->len);
    bool hit = false;
    pthread_mutex_lock(&s->lock);
    uint64_t gen = __atomic_load_n(s->gen_map, __ATOMIC_ACQUIRE);
    if (gen != s->gen_seen) {
        store_flush_locked(s);
        s->gen_seen = gen;
    }
    struct cache_entry **pe = &s->buckets[h % DIR_CACHE_BUCKETS];
    for (struct cache_entry *e = *pe; e; pe = &e->next, e = e->next) {
        if (e->hash != h || e->key_len != key->len || memcmp(e->data, key->data, key->len) != 0)
            continue;
        if (e->expires && e->expires <= mono_now()) {
            *pe = e->next; /* stale: look it up again */
            free(e);
            s->stats.entries--;
            break;
        }
        *res = e->result;
        buf_reset(value);
        buf_append(value, e->data + e->key_len, e->value_len);
        hit = true;
        break;
    }
    if (hit)
        s->stats.hits++;
    else
        s->stats.misses++;
    pthread_mutex_unlock(&s->lock);
    return hit;
}

/* Remember an answer looked up under generation gen (dropped if the directory changed since). */
static void store_put(struct dir_cache_store *s, uint64_t gen, const struct buf *key,
                      enum dir_result res, const void *value, size_t value_len)
{
    if (res != DIR_OK && res != DIR_NOTFOUND)
        return;
    struct cache_entry *e = xmalloc(sizeof(*e) + key->len + value_len);
    e->hash = key_hash(key->data, key->len);
    e->result = res;
    e->key_len = key->len;
    e->value_len = value_len;
    memcpy(e->data, key->data, key->len);
    if (value_len)
        memcpy(e->data + key->len, value, value_len);
    pthread_mutex_lock(&s->lock);
    if (gen != s->gen_seen || gen != __atomic_load_n(s->gen_map, __ATOMIC_ACQUIRE)) {
        pthread_mutex_unlock(&s->lock);
        free(e);
        return;
    }
    if (s->stats.entries >= s->max_entries)
        store_flush_locked(s);
    e->expires = s->ttl_s ? mono_now() + (time_t)s->ttl_s : 0;
    struct cache_entry **b = &s->buckets[e->hash % DIR_CACHE_BUCKETS];
    for (struct cache_entry **pe = b; *pe; pe = &(*pe)->next) {
        struct cache_entry *o = *pe;
        if (o->hash == e->hash && o->key_len == e->key_len &&
            memcmp(o->data, e->data, e->key_len) == 0) {
            *pe = o->next; /* an answer that went stale (an expired IP range): replace it */
            free(o);
            s->stats.entries--;
            break;
        }
    }
    e->next = *b;
    *b = e;
    s->stats.entries++;
    pthread_mutex_unlock(&s->lock);
}

static uint64_t store_gen(struct dir_cache_store *s)
{
    return __atomic_load_n(s->gen_map, __ATOMIC_ACQUIRE);
}

/* ---- keys ---- */

static void key_init(struct buf *k, char op)
{
    buf_init(k, 0);
    buf_append(k, &op, 1);
}

static void key_add(struct buf *k, const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        buf_append(k, &c, 1);
    }
    buf_append(k, "", 1); /* the NUL separates arguments */
}

static void key_add_bytes(struct buf *k, const void *p, size_t n)
{
    buf_append(k, p, n);
}

/* ---- the struct dir ---- */

static struct dir_cache *dc_of(struct dir *d)
{
    return (struct dir_cache *)d;
}

typedef enum dir_result dc_fetch_fn(struct dir *backing, const void *arg, void *out);

/* A lookup whose answer is out_size bytes at out: from the store, else from the backing
 * directory (and remembered), else (cache only) a miss. Frees key. */
static enum dir_result dc_cached(struct dir_cache *dc, struct buf *key, void *out, size_t out_size,
                                 dc_fetch_fn *fetch, const void *arg)
{
    enum dir_result r;
    struct buf val;
    buf_init(&val, 0);
    if (store_get(dc->store, key, &r, &val)) {
        if (r == DIR_OK && out_size && val.len == out_size)
            memcpy(out, val.data, out_size);
    } else if (dc->backing) {
        uint64_t gen = store_gen(dc->store);
        r = fetch(dc->backing, arg, out);
        store_put(dc->store, gen, key, r, out, r == DIR_OK ? out_size : 0);
    } else {
        dc->missed = true;
        r = DIR_TEMPFAIL;
    }
    buf_free(&val);
    buf_free(key);
    return r;
}

static enum dir_result fetch_domain(struct dir *b, const void *arg, void *out)
{
    return dir_domain_get(b, arg, out);
}

static enum dir_result dc_domain_get(struct dir *d, const char *name, struct dir_domain *out)
{
    struct buf k;
    key_init(&k, 'D');
    key_add(&k, name);
    return dc_cached(dc_of(d), &k, out, sizeof(*out), fetch_domain, name);
}

static enum dir_result fetch_domain_alias(struct dir *b, const void *arg, void *out)
{
    return dir_domain_alias_get(b, arg, out);
}

static enum dir_result dc_domain_alias_get(struct dir *d, const char *alias, char *domain_out)
{
    struct buf k;
    key_init(&k, 'd');
    key_add(&k, alias);
    return dc_cached(dc_of(d), &k, domain_out, DIR_NAME_MAX, fetch_domain_alias, alias);
}

static enum dir_result fetch_account(struct dir *b, const void *arg, void *out)
{
    return dir_account_get(b, arg, out);
}

static enum dir_result dc_account_get(struct dir *d, const char *address, struct dir_account *out)
{
    struct buf k;
    key_init(&k, 'A');
    key_add(&k, address);
    return dc_cached(dc_of(d), &k, out, sizeof(*out), fetch_account, address);
}

static enum dir_result fetch_alias(struct dir *b, const void *arg, void *out)
{
    return dir_alias_get(b, arg, out);
}

static enum dir_result dc_alias_get(struct dir *d, const char *address, struct dir_alias *out)
{
    struct buf k;
    key_init(&k, 'a');
    key_add(&k, address);
    return dc_cached(dc_of(d), &k, out, sizeof(*out), fetch_alias, address);
}

static enum dir_result fetch_list(struct dir *b, const void *arg, void *out)
{
    return dir_list_get(b, arg, out);
}

static enum dir_result dc_list_get(struct dir *d, const char *address, struct dir_list *out)
{
    struct buf k;
    key_init(&k, 'L');
    key_add(&k, address);
    return dc_cached(dc_of(d), &k, out, sizeof(*out), fetch_list, address);
}

static void collect_member(void *ctx, const char *address)
{
    buf_append(ctx, address, strlen(address) + 1);
}

static enum dir_result dc_list_members(struct dir *d, int64_t list_id,
                                       void (*fn)(void *ctx, const char *address), void *ctx)
{
    struct dir_cache *dc = dc_of(d);
    struct buf k, val;
    key_init(&k, 'M');
    key_add_bytes(&k, &list_id, sizeof(list_id));
    buf_init(&val, 0);
    enum dir_result r;
    if (!store_get(dc->store, &k, &r, &val)) {
        if (!dc->backing) {
            dc->missed = true;
            buf_free(&k);
            buf_free(&val);
            return DIR_TEMPFAIL;
        }
        uint64_t gen = store_gen(dc->store);
        buf_reset(&val);
        r = dir_list_members(dc->backing, list_id, collect_member, &val);
        store_put(dc->store, gen, &k, r, val.data, r == DIR_OK ? val.len : 0);
    }
    for (size_t off = 0; r == DIR_OK && off < val.len;) {
        const char *m = val.data + off;
        fn(ctx, m);
        off += strlen(m) + 1;
    }
    buf_free(&k);
    buf_free(&val);
    return r;
}

static enum dir_result fetch_route(struct dir *b, const void *arg, void *out)
{
    return dir_route_find(b, arg, out);
}

static enum dir_result dc_route_find(struct dir *d, const char *domain, struct dir_route *out)
{
    struct buf k;
    key_init(&k, 'R');
    key_add(&k, domain);
    return dc_cached(dc_of(d), &k, out, sizeof(*out), fetch_route, domain);
}

struct route_address {
    int64_t route_id;
    const char *address;
};

static enum dir_result fetch_route_address(struct dir *b, const void *arg, void *out)
{
    (void)out;
    const struct route_address *ra = arg;
    return dir_route_has_address(b, ra->route_id, ra->address);
}

static enum dir_result dc_route_has_address(struct dir *d, int64_t route_id, const char *address)
{
    struct buf k;
    key_init(&k, 'r');
    key_add_bytes(&k, &route_id, sizeof(route_id));
    key_add(&k, address);
    struct route_address ra = {route_id, address};
    return dc_cached(dc_of(d), &k, NULL, 0, fetch_route_address, &ra);
}

static enum dir_result dc_iprange_match(struct dir *d, const struct ipaddr *ip,
                                        struct dir_iprange *out)
{
    struct dir_cache *dc = dc_of(d);
    struct buf k, val;
    key_init(&k, 'I');
    key_add_bytes(&k, ip, sizeof(*ip));
    buf_init(&val, 0);
    enum dir_result r;
    if (store_get(dc->store, &k, &r, &val)) {
        bool fresh = r != DIR_OK;
        if (r == DIR_OK && val.len == sizeof(*out)) {
            memcpy(out, val.data, sizeof(*out));
            /* A remembered range that has expired since (auto-ban) is looked up again. */
            fresh = !out->expires || out->expires > (int64_t)time(NULL);
        }
        if (fresh) {
            buf_free(&k);
            buf_free(&val);
            return r;
        }
    }
    if (dc->backing) {
        uint64_t gen = store_gen(dc->store);
        r = dir_iprange_match(dc->backing, ip, out);
        store_put(dc->store, gen, &k, r, out, r == DIR_OK ? sizeof(*out) : 0);
    } else {
        dc->missed = true;
        r = DIR_TEMPFAIL;
    }
    buf_free(&k);
    buf_free(&val);
    return r;
}

static void dc_close(struct dir *d)
{
    free(dc_of(d));
}

static const struct dir_ops dir_cache_ops = {
    .domain_get = dc_domain_get,
    .domain_alias_get = dc_domain_alias_get,
    .account_get = dc_account_get,
    .alias_get = dc_alias_get,
    .list_get = dc_list_get,
    .list_members = dc_list_members,
    .route_find = dc_route_find,
    .route_has_address = dc_route_has_address,
    .iprange_match = dc_iprange_match,
    .close = dc_close,
};

struct dir *dir_cache_new(struct dir_cache_store *s, struct dir *backing)
{
    struct dir_cache *dc = xcalloc(1, sizeof(*dc));
    dc->dir.ops = &dir_cache_ops;
    dc->store = s;
    dc->backing = backing;
    return &dc->dir;
}

bool dir_cache_take_miss(struct dir *d)
{
    struct dir_cache *dc = dc_of(d);
    bool m = dc->missed;
    dc->missed = false;
    return m;
}
