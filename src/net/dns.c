/* dns: asynchronous lookups (dns.h) — PTR, MX, A+AAAA — on a c-ares channel driven by libevent:
 * one read/write event per c-ares socket (sock-state callback) and one timer for c-ares' own
 * timeouts (ares_timeout). Lookups time out after 2 s per try, 2 tries per server.
 *
 * Layers, bottom up:
 *   - dns_answer_parse(): the answer section of an RFC 1035 §4.1 message (names expanded with
 *     ares_expand_name, which bounds-checks compression pointers and loops);
 *   - a query (struct dns_query): one name and type, answered from the cache, the in-memory fake
 *     zone or ares_query(); CNAME chains are followed through the answer, and re-asked for the
 *     target when the server returned only the CNAME (at most 8 hops);
 *   - the cache: positive answers for min(TTL, 1 h), bounded (default 1000 names);
 *   - lookups: PTR, MX (RFC 5321 §5.1 order, RFC 7505 null MX), A+AAAA (IPv4 first).
 * Every completion runs later than the call that started it: answers not coming from the
 * network go through a zero-delay timer (struct dns_defer), kept on a list so dns_free() can
 * complete them with DNS_TEMPFAIL. Status mapping: NXDOMAIN → DNS_NOTFOUND; NOERROR without
 * records → DNS_OK with nothing; timeouts, SERVFAIL, REFUSED, malformed replies → DNS_TEMPFAIL. */
#include "net/dns.h"

#include <ares.h>
#include <event2/event.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "lib/str.h"
#include "net/dns_wire.h"
#include "lib/xalloc.h"

#define DNS_MAX_HOPS 8 /* CNAME re-queries */
#define DNS_CACHE_TTL_MAX 3600
#define DNS_CACHE_DEFAULT 1000

struct dns_sock {
    ares_socket_t fd;
    struct event *ev;
    struct dns_sock *next;
};

/* A completion that waits for one turn of the loop. */
struct dns_defer {
    struct dns *d;
    struct event *ev;
    void (*fire)(void *arg, bool cancelled);
    void *arg;
    struct dns_defer *prev, *next;
};

struct dns_cache_ent {
    uint16_t type;
    char name[DNS_NAME_MAX]; /* lower-case */
    struct dns_rr *rr;
    size_t n;
    int64_t expires;
};

struct dns_fake_failure {
    char name[DNS_NAME_MAX];
    uint16_t type; /* 0 = any */
};

struct dns {
    struct event_base *base;
    ares_channel channel; /* NULL for the fake */
    struct dns_sock *socks;
    struct event *timer;
    bool closing;
    struct dns_defer *deferred;
    /* cache */
    struct dns_cache_ent *cache;
    size_t cache_n, cache_cap, cache_max;
    int64_t clock_offset;
    /* fake */
    bool fake;
    struct dns_rr *fake_rr;
    size_t fake_n;
    struct dns_fake_failure *fake_fail;
    size_t fake_fail_n;
    unsigned fake_queries;
};

/* ---------------------------------------------------------------------------------------- */
/* c-ares on libevent */

static void dns_timer_arm(struct dns *d)
{
    if (!d->channel)
        return;
    struct timeval tv;
    struct timeval *t = ares_timeout(d->channel, NULL, &tv);
    if (t)
        evtimer_add(d->timer, t);
    else
        evtimer_del(d->timer); /* nothing pending */
}

static void dns_sock_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns *d = arg;
    ares_process_fd(d->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    dns_timer_arm(d);
}

static void dns_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct dns *d = arg;
    ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_timer_arm(d);
}

static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns *d = data;
    struct dns_sock **pp = &d->socks;
    while (*pp && (*pp)->fd != fd)
        pp = &(*pp)->next;
    struct dns_sock *s = *pp;
    if (s) {
        event_free(s->ev);
        s->ev = NULL;
    }
    if (!readable && !writable) {
        if (s) {
            *pp = s->next;
            free(s);
        }
        return;
    }
    if (!s) {
        s = xcalloc(1, sizeof(*s));
        s->fd = fd;
        s->next = d->socks;
        d->socks = s;
    }
    short what = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
    s->ev = event_new(d->base, fd, what, dns_sock_cb, d);
    event_add(s->ev, NULL);
}

struct dns *dns_new(struct event_base *base, const char *nameservers, const char **err_r)
{
    static int lib_ready;
    if (!lib_ready) {
        if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
            *err_r = "cannot initialise c-ares";
            return NULL;
        }
        lib_ready = 1;
    }
    struct dns *d = xcalloc(1, sizeof(*d));
    d->base = base;
    d->cache_max = DNS_CACHE_DEFAULT;
    struct ares_options o;
    memset(&o, 0, sizeof(o));
    o.sock_state_cb = dns_sock_state;
    o.sock_state_cb_data = d;
    o.timeout = 2000;
    o.tries = 2;
    o.lookups = (char *)"b"; /* DNS only, never /etc/hosts */
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS;
    int rc = ares_init_options(&d->channel, &o, mask);
    if (rc != ARES_SUCCESS) {
        *err_r = ares_strerror(rc);
        free(d);
        return NULL;
    }
    if (nameservers && *nameservers) {
        rc = ares_set_servers_ports_csv(d->channel, nameservers);
        if (rc != ARES_SUCCESS) {
            *err_r = ares_strerror(rc);
            ares_destroy(d->channel);
            free(d);
            return NULL;
        }
    }
    d->timer = evtimer_new(base, dns_timer_cb, d);
    return d;
}

struct dns *dns_new_fake(struct event_base *base)
{
    struct dns *d = xcalloc(1, sizeof(*d));
    d->base = base;
    d->cache_max = DNS_CACHE_DEFAULT;
    d->fake = true;
    return d;
}

static void dns_cache_clear(struct dns *d);

void dns_free(struct dns **dp)
{
    struct dns *d = *dp;
    if (!d)
        return;
    d->closing = true; /* from here on, new lookups complete at once with DNS_TEMPFAIL */
    if (d->channel)
        ares_destroy(d->channel); /* pending callbacks run with ARES_EDESTRUCTION */
    while (d->deferred) {
        struct dns_defer *df = d->deferred;
        d->deferred = df->next;
        if (d->deferred)
            d->deferred->prev = NULL;
        event_free(df->ev);
        df->ev = NULL;
        df->fire(df->arg, true);
    }
    while (d->socks) {
        struct dns_sock *s = d->socks;
        d->socks = s->next;
        if (s->ev)
            event_free(s->ev);
        free(s);
    }
    if (d->timer)
        event_free(d->timer);
    dns_cache_clear(d);
    free(d->cache);
    free(d->fake_rr);
    free(d->fake_fail);
    free(d);
    *dp = NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* deferred completions */

static void dns_defer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct dns_defer *df = arg;
    struct dns *d = df->d;
    if (df->prev)
        df->prev->next = df->next;
    else
        d->deferred = df->next;
    if (df->next)
        df->next->prev = df->prev;
    event_free(df->ev);
    df->ev = NULL;
    df->fire(df->arg, false);
}

static void dns_defer(struct dns *d, struct dns_defer *df, void (*fire)(void *, bool), void *arg)
{
    df->d = d;
    df->fire = fire;
    df->arg = arg;
    if (d->closing) {
        fire(arg, true);
        return;
    }
    df->ev = evtimer_new(d->base, dns_defer_cb, df);
    df->prev = NULL;
    df->next = d->deferred;
    if (d->deferred)
        d->deferred->prev = df;
    d->deferred = df;
    struct timeval zero = {0, 0};
    evtimer_add(df->ev, &zero);
}

/* ---------------------------------------------------------------------------------------- */
/* cache */

static int64_t dns_now(const struct dns *d)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec + d->clock_offset;
}

void dns_cache_advance(struct dns *d, unsigned seconds)
{
    d->clock_offset += seconds;
}

static void dns_cache_remove(struct dns *d, size_t i)
{
    free(d->cache[i].rr);
    d->cache[i] = d->cache[--d->cache_n];
}

static void dns_cache_clear(struct dns *d)
{
    while (d->cache_n)
        dns_cache_remove(d, d->cache_n - 1);
}

void dns_set_cache_size(struct dns *d, size_t max_entries)
{
    d->cache_max = max_entries;
    while (d->cache_n > max_entries)
        dns_cache_remove(d, d->cache_n - 1);
}

static bool dns_cache_get(struct dns *d, uint16_t type, const char *name, struct dns_rr **rr_r,
                          size_t *n_r)
{
    int64_t now = dns_now(d);
    for (size_t i = 0; i < d->cache_n; i++) {
        struct dns_cache_ent *e = &d->cache[i];
        if (e->type != type || strcmp(e->name, name) != 0)
            continue;
        if (e->expires <= now) {
            dns_cache_remove(d, i);
            return false;
        }
        *rr_r = xmalloc(e->n * sizeof(*e->rr));
        memcpy(*rr_r, e->rr, e->n * sizeof(*e->rr));
        *n_r = e->n;
        return true;
    }
    return false;
}

static void dns_cache_put(struct dns *d, uint16_t type, const char *name, const struct dns_rr *rr,
                          size_t n)
{
    if (d->cache_max == 0 || n == 0)
        return;
    uint32_t ttl = DNS_CACHE_TTL_MAX;
    for (size_t i = 0; i < n; i++)
        if (rr[i].ttl < ttl)
            ttl = rr[i].ttl;
    if (ttl == 0)
        return;
    int64_t now = dns_now(d);
    for (size_t i = d->cache_n; i-- > 0;) /* the same name again, and whatever has expired */
        if (d->cache[i].expires <= now ||
            (d->cache[i].type == type && strcmp(d->cache[i].name, name) == 0))
            dns_cache_remove(d, i);
    if (d->cache_n >= d->cache_max) { /* full: drop the entry closest to expiry */
        size_t victim = 0;
        for (size_t i = 1; i < d->cache_n; i++)
            if (d->cache[i].expires < d->cache[victim].expires)
                victim = i;
        dns_cache_remove(d, victim);
    }
    if (d->cache_n == d->cache_cap) {
        d->cache_cap = d->cache_cap ? 2 * d->cache_cap : 16;
        d->cache = xrealloc(d->cache, d->cache_cap * sizeof(*d->cache));
    }
    struct dns_cache_ent *e = &d->cache[d->cache_n++];
    e->type = type;
    str_copy(e->name, sizeof(e->name), name);
    e->rr = xmalloc(n * sizeof(*rr));
    memcpy(e->rr, rr, n * sizeof(*rr));
    e->n = n;
    e->expires = now + ttl;
}

/* ---------------------------------------------------------------------------------------- */
/* the fake zone */

static uint16_t dns_type_parse(const char *type)
{
    static const struct {
        const char *name;
        uint16_t type;
    } types[] = {{"A", DNS_T_A},
                 {"AAAA", DNS_T_AAAA},
                 {"MX", DNS_T_MX},
                 {"CNAME", DNS_T_CNAME},
                 {"PTR", DNS_T_PTR}};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (str_ieq(type, types[i].name))
            return types[i].type;
    return 0;
}

/* A name as the fake keeps it: no trailing dot, "" for the root. */
static int dns_fake_name(const char *in, char out[DNS_NAME_MAX])
{
    if (dns_name_is_root(in)) {
        out[0] = '\0';
        return 0;
    }
    return dns_name_norm(in, out);
}

int dns_fake_add(struct dns *d, const char *name, const char *type, const char *value, unsigned ttl)
{
    struct dns_rr r;
    memset(&r, 0, sizeof(r));
    r.type = dns_type_parse(type);
    r.ttl = ttl;
    if (!d->fake || r.type == 0 || dns_name_norm(name, r.owner) < 0)
        return -1;
    switch (r.type) {
    case DNS_T_A:
    case DNS_T_AAAA:
        if (ipaddr_parse(value, &r.ip) < 0 ||
            r.ip.family != (r.type == DNS_T_A ? AF_INET : AF_INET6))
            return -1;
        break;
    case DNS_T_MX: {
        char *end;
        unsigned long pref = strtoul(value, &end, 10);
        if (end == value || *end != ' ' || pref > 65535)
            return -1;
        r.pref = (uint16_t)pref;
        char host[DNS_NAME_MAX];
        if (str_copy(host, sizeof(host), end) < 0 || dns_fake_name(str_trim(host), r.data) < 0)
            return -1;
        break;
    }
    default: /* CNAME, PTR */
        if (dns_name_norm(value, r.data) < 0)
            return -1;
        break;
    }
    d->fake_rr = xrealloc(d->fake_rr, (d->fake_n + 1) * sizeof(*d->fake_rr));
    d->fake_rr[d->fake_n++] = r;
    return 0;
}

void dns_fake_fail(struct dns *d, const char *name, const char *type)
{
    struct dns_fake_failure f;
    memset(&f, 0, sizeof(f));
    if (dns_name_norm(name, f.name) < 0)
        return;
    f.type = type ? dns_type_parse(type) : 0;
    d->fake_fail = xrealloc(d->fake_fail, (d->fake_fail_n + 1) * sizeof(*d->fake_fail));
    d->fake_fail[d->fake_fail_n++] = f;
}

void dns_fake_clear(struct dns *d)
{
    XFREE(&d->fake_rr);
    XFREE(&d->fake_fail);
    d->fake_n = d->fake_fail_n = 0;
}

unsigned dns_fake_queries(const struct dns *d)
{
    return d->fake_queries;
}

static bool dns_fake_known(const struct dns *d, const char *name)
{
    for (size_t i = 0; i < d->fake_n; i++)
        if (strcmp(d->fake_rr[i].owner, name) == 0)
            return true;
    return false;
}

/* Answer name/type as a recursive resolver in front of the fake zone would. */
static enum dns_status dns_fake_answer(struct dns *d, const char *name, uint16_t type,
                                       struct dns_rr **rr_r, size_t *n_r)
{
    d->fake_queries++;
    *rr_r = NULL;
    *n_r = 0;
    for (size_t i = 0; i < d->fake_fail_n; i++)
        if (strcmp(d->fake_fail[i].name, name) == 0 &&
            (d->fake_fail[i].type == 0 || d->fake_fail[i].type == type))
            return DNS_TEMPFAIL;
    char cur[DNS_NAME_MAX];
    str_copy(cur, sizeof(cur), name);
    for (int hop = 0; hop <= DNS_MAX_HOPS; hop++) {
        size_t found = 0;
        const struct dns_rr *cname = NULL;
        for (size_t i = 0; i < d->fake_n; i++) {
            const struct dns_rr *r = &d->fake_rr[i];
            if (strcmp(r->owner, cur) != 0)
                continue;
            if (r->type == type && *n_r < DNS_MAX_RR) {
                *rr_r = xrealloc(*rr_r, (*n_r + 1) * sizeof(**rr_r));
                (*rr_r)[(*n_r)++] = *r;
                found++;
            } else if (r->type == DNS_T_CNAME && !cname) {
                cname = r;
            }
        }
        if (found || !cname || type == DNS_T_CNAME)
            break;
        *rr_r = xrealloc(*rr_r, (*n_r + 1) * sizeof(**rr_r));
        (*rr_r)[(*n_r)++] = *cname;
        str_copy(cur, sizeof(cur), cname->data);
    }
    return dns_fake_known(d, cur) ? DNS_OK : DNS_NOTFOUND;
}

/* ---------------------------------------------------------------------------------------- */
/* one query: name + type, CNAMEs followed */

struct dns_query;
typedef void dns_query_done(struct dns_query *q, enum dns_status st, const struct dns_rr *rr,
                            size_t n);

struct dns_query {
    struct dns *d;
    uint16_t type;
    int hops;
    bool starting;    /* inside ares_query(): an immediate callback is deferred */
    bool sync_answer; /* ... and it happened */
    bool fresh;       /* ans came from the network/fake (cache it) */
    bool cacheable;   /* false for PTR (see dns.h) */
    char name[DNS_NAME_MAX];
    dns_query_done *done;
    void *owner;
    enum dns_status st; /* the answer waiting to be handled */
    struct dns_rr *rr;
    size_t n;
    struct dns_defer df;
};

static void dns_query_start(struct dns_query *q);

/* Handle the answer held in q: cache it, follow CNAMEs, report. */
static void dns_query_answer(struct dns_query *q)
{
    struct dns *d = q->d;
    struct dns_rr *rr = q->rr;
    size_t n = q->n;
    enum dns_status st = q->st;
    q->rr = NULL;
    q->n = 0;
    if (st != DNS_OK) {
        free(rr);
        q->done(q, st, NULL, 0);
        return;
    }
    if (q->fresh && q->cacheable)
        dns_cache_put(d, q->type, q->name, rr, n);
    char cur[DNS_NAME_MAX];
    str_copy(cur, sizeof(cur), q->name);
    size_t found = 0;
    for (int hop = 0; hop <= DNS_MAX_HOPS && !found; hop++) {
        const struct dns_rr *cname = NULL;
        for (size_t i = 0; i < n; i++) {
            if (!str_ieq(rr[i].owner, cur))
                continue;
            if (rr[i].type == q->type)
                rr[found++] = rr[i]; /* compact in place: found <= i */
            else if (rr[i].type == DNS_T_CNAME && !cname)
                cname = &rr[i];
        }
        if (found || !cname)
            break;
        char next[DNS_NAME_MAX];
        str_copy(next, sizeof(next), cname->data);
        if (dns_name_norm(next, cur) < 0)
            break;
    }
    if (!found && strcmp(cur, q->name) != 0 && q->hops < DNS_MAX_HOPS) {
        /* the server gave the CNAME but not the target's records: ask for the target */
        free(rr);
        q->hops++;
        str_copy(q->name, sizeof(q->name), cur);
        dns_query_start(q);
        return;
    }
    q->done(q, DNS_OK, found ? rr : NULL, found);
    free(rr);
}

static void dns_query_fire(void *arg, bool cancelled)
{
    struct dns_query *q = arg;
    if (cancelled) {
        XFREE(&q->rr);
        q->n = 0;
        q->st = DNS_TEMPFAIL;
    }
    dns_query_answer(q);
}

static void dns_query_ares_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct dns_query *q = arg;
    q->rr = NULL;
    q->n = 0;
    q->fresh = true;
    switch (status) {
    case ARES_SUCCESS:
    case ARES_ENODATA: {
        int n = abuf && alen > 0 ? dns_answer_parse(abuf, (size_t)alen, &q->rr) : 0;
        q->st = n < 0 ? DNS_TEMPFAIL : DNS_OK;
        q->n = n < 0 ? 0 : (size_t)n;
        break;
    }
    case ARES_ENOTFOUND: /* NXDOMAIN */
    case ARES_EBADNAME:
        q->st = DNS_NOTFOUND;
        break;
    default: /* ETIMEOUT, ESERVFAIL, EREFUSED, ECONNREFUSED, EDESTRUCTION, ... */
        q->st = DNS_TEMPFAIL;
        break;
    }
    if (q->starting) {
        q->sync_answer = true;
        return;
    }
    dns_query_answer(q);
}

static void dns_query_start(struct dns_query *q)
{
    struct dns *d = q->d;
    q->fresh = false;
    q->rr = NULL;
    q->n = 0;
    if (d->closing) {
        q->done(q, DNS_TEMPFAIL, NULL, 0);
        return;
    }
    if (q->cacheable && dns_cache_get(d, q->type, q->name, &q->rr, &q->n)) {
        q->st = DNS_OK;
    } else if (d->fake) {
        q->st = dns_fake_answer(d, q->name, q->type, &q->rr, &q->n);
        q->fresh = true;
    } else {
        q->starting = true;
        q->sync_answer = false;
        ares_query(d->channel, q->name, DNS_CLASS_IN, q->type, dns_query_ares_cb, q);
        q->starting = false;
        dns_timer_arm(d);
        if (!q->sync_answer)
            return; /* dns_query_ares_cb() continues */
    }
    dns_defer(d, &q->df, dns_query_fire, q);
}

/* Start a query for name (any spelling); an unusable name answers DNS_NOTFOUND. */
static void dns_query_init(struct dns_query *q, struct dns *d, const char *name, uint16_t type,
                           dns_query_done *done, void *owner)
{
    memset(q, 0, sizeof(*q));
    q->d = d;
    q->type = type;
    q->done = done;
    q->owner = owner;
    q->cacheable = type != DNS_T_PTR;
    if (dns_name_norm(name, q->name) < 0) {
        q->st = DNS_NOTFOUND;
        dns_defer(d, &q->df, dns_query_fire, q);
        return;
    }
    dns_query_start(q);
}

/* ---------------------------------------------------------------------------------------- */
/* PTR */

struct dns_ptr_req {
    dns_name_cb *cb;
    void *ctx;
    struct dns_query q;
};

static void dns_ptr_done(struct dns_query *q, enum dns_status st, const struct dns_rr *rr, size_t n)
{
    struct dns_ptr_req *r = q->owner;
    if (st == DNS_OK && n > 0 && rr[0].data[0])
        r->cb(r->ctx, DNS_OK, rr[0].data);
    else
        r->cb(r->ctx, st == DNS_TEMPFAIL ? DNS_TEMPFAIL : DNS_NOTFOUND, NULL);
    free(r);
}

void dns_lookup_ptr(struct dns *d, const struct ipaddr *ip, dns_name_cb *cb, void *ctx)
{
    static const char hex[] = "0123456789abcdef";
    char name[DNS_NAME_MAX], *p = name;
    if (ip->family == AF_INET) {
        snprintf(name, sizeof(name), "%u.%u.%u.%u.in-addr.arpa", ip->b[15], ip->b[14], ip->b[13],
                 ip->b[12]);
    } else {
        for (int i = 15; i >= 0; i--) {
            *p++ = hex[ip->b[i] & 15];
            *p++ = '.';
            *p++ = hex[ip->b[i] >> 4];
            *p++ = '.';
        }
        strcpy(p, "ip6.arpa");
    }
    struct dns_ptr_req *r = xcalloc(1, sizeof(*r));
    r->cb = cb;
    r->ctx = ctx;
    dns_query_init(&r->q, d, name, DNS_T_PTR, dns_ptr_done, r);
}

/* ---------------------------------------------------------------------------------------- */
/* MX */

struct dns_mx_req {
    dns_mx_cb *cb;
    void *ctx;
    struct dns_query q;
};

static void dns_mx_done(struct dns_query *q, enum dns_status st, const struct dns_rr *rr, size_t n)
{
    struct dns_mx_req *r = q->owner;
    struct dns_mx *mx = n ? xcalloc(n, sizeof(*mx)) : NULL;
    for (size_t i = 0; i < n; i++) {
        mx[i].preference = rr[i].pref;
        str_copy(mx[i].host, sizeof(mx[i].host), rr[i].data);
    }
    bool null_mx = st == DNS_OK && dns_mx_is_null(mx, n);
    size_t k = 0;
    for (size_t i = 0; i < n && !null_mx; i++) /* a root among others, a bad name: unusable */
        if (!dns_name_is_root(rr[i].data) && dns_name_norm(rr[i].data, mx[k].host) == 0)
            mx[k++].preference = rr[i].pref;
    dns_mx_sort(mx, k);
    r->cb(r->ctx, st, k ? mx : NULL, k, null_mx);
    free(mx);
    free(r);
}

void dns_lookup_mx(struct dns *d, const char *domain, dns_mx_cb *cb, void *ctx)
{
    struct dns_mx_req *r = xcalloc(1, sizeof(*r));
    r->cb = cb;
    r->ctx = ctx;
    dns_query_init(&r->q, d, domain, DNS_T_MX, dns_mx_done, r);
}

/* ---------------------------------------------------------------------------------------- */
/* A + AAAA */

struct dns_addr_req {
    dns_addr_cb *cb;
    void *ctx;
    struct dns_query q4, q6;
    int pending;
    enum dns_status st4, st6;
    struct ipaddr addrs[2 * DNS_MAX_RR];
    size_t n4, n6;
    struct dns_defer df; /* literal answers */
};

static void dns_addr_finish(struct dns_addr_req *r)
{
    /* the IPv6 addresses sit at the second half: close the gap */
    memmove(r->addrs + r->n4, r->addrs + DNS_MAX_RR, r->n6 * sizeof(r->addrs[0]));
    size_t n = r->n4 + r->n6;
    enum dns_status st = DNS_OK;
    if (n == 0)
        st = r->st4 == DNS_TEMPFAIL || r->st6 == DNS_TEMPFAIL ? DNS_TEMPFAIL : DNS_NOTFOUND;
    r->cb(r->ctx, st, n ? r->addrs : NULL, n);
    free(r);
}

static void dns_addr_done(struct dns_query *q, enum dns_status st, const struct dns_rr *rr,
                          size_t n)
{
    struct dns_addr_req *r = q->owner;
    bool v4 = q == &r->q4;
    struct ipaddr *out = r->addrs + (v4 ? 0 : DNS_MAX_RR);
    size_t *cnt = v4 ? &r->n4 : &r->n6;
    *(v4 ? &r->st4 : &r->st6) = st;
    for (size_t i = 0; i < n && *cnt < DNS_MAX_RR; i++) {
        bool dup = false;
        for (size_t j = 0; j < *cnt && !dup; j++)
            dup = memcmp(out[j].b, rr[i].ip.b, 16) == 0;
        if (!dup)
            out[(*cnt)++] = rr[i].ip;
    }
    if (--r->pending == 0)
        dns_addr_finish(r);
}

static void dns_addr_literal_fire(void *arg, bool cancelled)
{
    struct dns_addr_req *r = arg;
    r->cb(r->ctx, cancelled ? DNS_TEMPFAIL : DNS_OK, cancelled ? NULL : r->addrs,
          cancelled ? 0 : 1);
    free(r);
}

void dns_lookup_addrs(struct dns *d, const char *host, dns_addr_cb *cb, void *ctx)
{
    struct dns_addr_req *r = xcalloc(1, sizeof(*r));
    r->cb = cb;
    r->ctx = ctx;
    if (dns_literal_parse(host, &r->addrs[0]) == 0) {
        dns_defer(d, &r->df, dns_addr_literal_fire, r);
        return;
    }
    r->pending = 2;
    dns_query_init(&r->q4, d, host, DNS_T_A, dns_addr_done, r);
    dns_query_init(&r->q6, d, host, DNS_T_AAAA, dns_addr_done, r); /* may free r (closing) */
}
