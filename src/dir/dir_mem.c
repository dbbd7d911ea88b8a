/* dir_mem: the in-memory directory backend (test double; see dir_mem.h for the contract).
 *
 * Public: dir_mem_new, dir_mem_add_{domain,domain_alias,account,alias,list,list_member,route,
 * route_address,iprange}, dir_mem_set_now, dir_mem_fail_{next,at,all}, dir_mem_lookups.
 * Storage is a set of growable arrays searched linearly (tests hold a few dozen rows). Builders
 * never fail (xalloc); lookups return DIR_OK / DIR_NOTFOUND, or the injected failure. */
#include "dir/dir_mem.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/str.h"
#include "lib/xalloc.h"

struct mem_domain_alias {
    char alias[DIR_NAME_MAX];
    char domain[DIR_NAME_MAX];
};

struct mem_member {
    int64_t owner_id; /* list id or route id */
    char address[DIR_ADDR_MAX];
};

struct dir_mem {
    struct dir dir; /* first: struct dir * <-> struct dir_mem * */
    int64_t next_id;
    int64_t now;

    struct dir_domain *domains;
    size_t n_domains;
    struct mem_domain_alias *domain_aliases;
    size_t n_domain_aliases;
    struct dir_account *accounts;
    size_t n_accounts;
    struct dir_alias *aliases;
    size_t n_aliases;
    struct dir_list *lists;
    size_t n_lists;
    struct mem_member *list_members;
    size_t n_list_members;
    struct dir_route *routes;
    size_t n_routes;
    struct mem_member *route_addresses;
    size_t n_route_addresses;
    struct dir_iprange *ipranges;
    size_t n_ipranges;

    unsigned lookups;
    bool fail_pending;
    unsigned fail_at;
    enum dir_result fail_once;
    enum dir_result fail_always;
};

static struct dir_mem *mem_of(struct dir *d)
{
    return (struct dir_mem *)d;
}

/* Append one zeroed element to array arr (of n elements); evaluates to a pointer to it. */
#define GROW(arr, n)                                                                               \
    ((arr) = xrealloc((arr), ((n) + 1) * sizeof(*(arr))), memset(&(arr)[(n)], 0, sizeof(*(arr))),  \
     &(arr)[(n)++])

static int64_t take_id(struct dir_mem *m, int64_t given)
{
    if (given > 0) {
        if (given >= m->next_id)
            m->next_id = given + 1;
        return given;
    }
    return m->next_id++;
}

/* Every lookup passes here first: counts it and returns the injected result (DIR_OK = none). */
static enum dir_result lookup_begin(struct dir_mem *m)
{
    unsigned index = m->lookups++;
    if (m->fail_always != DIR_OK)
        return m->fail_always;
    if (m->fail_pending && index == m->fail_at) {
        m->fail_pending = false;
        return m->fail_once;
    }
    return DIR_OK;
}

/* ---- lookups (struct dir_ops) ---- */

static enum dir_result mem_domain_get(struct dir *d, const char *name, struct dir_domain *out)
{
    struct dir_mem *m = mem_of(d);
    enum dir_result r = lookup_begin(m);
    if (r != DIR_OK)
        return r;
    for (size_t i = 0; i < m->n_domains; i++) {
        if (str_ieq(m->domains[i].name, name)) {
            *out = m->domains[i];
            return DIR_OK;
        }
    }
    return DIR_NOTFOUND;
}

static enum dir_result mem_domain_alias_get(struct dir *d, const char *alias, char *domain_out)
{
    struct dir_mem *m = mem_of(d);
    enum dir_result r = lookup_begin(m);
    if (r != DIR_OK)
        return r;
    for (size_t i = 0; i < m->n_domain_aliases; i++) {
        if (str_ieq(m->domain_aliases[i].alias, alias)) {
            str_copy(domain_out, DIR_NAME_MAX, m->domain_aliases[i].domain);
            return DIR_OK;
        }
    }
    return DIR_NOTFOUND;
}

static enum dir_result mem_account_get(struct dir *d, const char *address, struct dir_account *out)
{
    struct dir_mem *m = mem_of(d);
    enum dir_result r = lookup_begin(m);
    if (r != DIR_OK)
        return r;
    for (size_t i = 0; i < m->n_accounts; i++) {
        if (str_ieq(m->accounts[i].address, address)) {
            *out = m->accounts[i];
            return DIR_OK;
        }
    }
    return DIR_NOTFOUND;
}

static enum dir_result mem_alias_get(struct dir *d, const char *address, struct dir_alias *out)
{
    struct dir_mem *m = mem_of(d);
    enum dir_result r = lookup_begin(m);
    if (r != DIR_OK)
        return r;
    for (size_t i = 0; i < m->n_aliases; i++) {
        if (str_ieq(m->aliases[i].address, address)) {
            *out = m->aliases[i];
            return DIR_OK;
        }
    }
    return DIR_NOTFOUND;
}

static enum dir_result mem_list_get(struct dir *d, const char *address, struct dir_list *out)
{
    struct dir_mem *m = mem_of(d);
    enum dir_result r = lookup_begin(m);
    if (r != DIR_OK)
        return r;
    for (size_t i = 0; i < m->n_lists; i++) {
        if (str_ieq(m->lists[i].address, address)) {
            *out = m->lists[i];
            return DIR_OK;
        }
    }
    return DIR_NOTFOUND;
}

static enum dir_result mem_list_members(struct dir *d, int64_t list_id,
                                        void (*fn)(void *ctx, const char *address), void *ctx)
{
    struct dir_mem *m = mem_of(d);
    enum dir_result r = lookup_begin(m);
    if (r != DIR_OK)
        return r;
    /* Index loop: fn may not add members, but stay safe if the array moves anyway. */
    for (size_t i = 0; i < m->n_list_members; i++) {
        if (m->list_members[i].owner_id == list_id)
            fn(ctx, m->list_members[i].address);
    }
    return DIR_OK;
}

static enum dir_result mem_route_find(struct dir *d, const char *domain, struct dir_route *out)
{
    struct dir_mem *m = mem_of(d);
    enum dir_result r = lookup_begin(m);
    if (r != DIR_OK)
        return r;
    for (size_t i = 0; i < m->n_routes; i++) {
        if (str_wildcard_match(m->routes[i].pattern, domain)) {
            *out = m->routes[i];
            return DIR_OK;
        }
    }
    return DIR_NOTFOUND;
}

static enum dir_result mem_route_has_address(struct dir *d, int64_t route_id, const char *address)
{
    struct dir_mem *m = mem_of(d);
    enum dir_result r = lookup_begin(m);
    if (r != DIR_OK)
        return r;
    for (size_t i = 0; i < m->n_route_addresses; i++) {
        if (m->route_addresses[i].owner_id == route_id &&
            str_ieq(m->route_addresses[i].address, address))
            return DIR_OK;
    }
    return DIR_NOTFOUND;
}

static enum dir_result mem_iprange_match(struct dir *d, const struct ipaddr *ip,
                                         struct dir_iprange *out)
{
    struct dir_mem *m = mem_of(d);
    enum dir_result r = lookup_begin(m);
    if (r != DIR_OK)
        return r;
    int64_t now = m->now ? m->now : (int64_t)time(NULL);
    const struct dir_iprange *best = NULL;
    for (size_t i = 0; i < m->n_ipranges; i++) {
        const struct dir_iprange *c = &m->ipranges[i];
        if (c->expires != 0 && c->expires <= now)
            continue;
        if (!ipaddr_in_range(ip, &c->from, &c->to))
            continue;
        if (!best || c->priority > best->priority)
            best = c;
    }
    if (!best)
        return DIR_NOTFOUND;
    *out = *best;
    return DIR_OK;
}

static void mem_close(struct dir *d)
{
    struct dir_mem *m = mem_of(d);
    free(m->domains);
    free(m->domain_aliases);
    free(m->accounts);
    free(m->aliases);
    free(m->lists);
    free(m->list_members);
    free(m->routes);
    free(m->route_addresses);
    free(m->ipranges);
    free(m);
}

static const struct dir_ops mem_ops = {
    .domain_get = mem_domain_get,
    .domain_alias_get = mem_domain_alias_get,
    .account_get = mem_account_get,
    .alias_get = mem_alias_get,
    .list_get = mem_list_get,
    .list_members = mem_list_members,
    .route_find = mem_route_find,
    .route_has_address = mem_route_has_address,
    .iprange_match = mem_iprange_match,
    .close = mem_close,
};

/* ---- builders ---- */

struct dir *dir_mem_new(void)
{
    struct dir_mem *m = xcalloc(1, sizeof(*m));
    m->dir.ops = &mem_ops;
    m->next_id = 1;
    m->fail_once = DIR_OK;
    m->fail_always = DIR_OK;
    return &m->dir;
}

int64_t dir_mem_add_domain(struct dir *d, const struct dir_domain *domain)
{
    struct dir_mem *m = mem_of(d);
    struct dir_domain *e = GROW(m->domains, m->n_domains);
    *e = *domain;
    e->id = take_id(m, domain->id);
    return e->id;
}

void dir_mem_add_domain_alias(struct dir *d, const char *alias, const char *domain)
{
    struct dir_mem *m = mem_of(d);
    struct mem_domain_alias *e = GROW(m->domain_aliases, m->n_domain_aliases);
    str_copy(e->alias, sizeof(e->alias), alias);
    str_copy(e->domain, sizeof(e->domain), domain);
}

int64_t dir_mem_add_account(struct dir *d, const struct dir_account *account)
{
    struct dir_mem *m = mem_of(d);
    struct dir_account *e = GROW(m->accounts, m->n_accounts);
    *e = *account;
    e->id = take_id(m, account->id);
    return e->id;
}

int64_t dir_mem_add_alias(struct dir *d, const struct dir_alias *alias)
{
    struct dir_mem *m = mem_of(d);
    struct dir_alias *e = GROW(m->aliases, m->n_aliases);
    *e = *alias;
    e->id = take_id(m, alias->id);
    return e->id;
}

int64_t dir_mem_add_list(struct dir *d, const struct dir_list *list)
{
    struct dir_mem *m = mem_of(d);
    struct dir_list *e = GROW(m->lists, m->n_lists);
    *e = *list;
    e->id = take_id(m, list->id);
    return e->id;
}

void dir_mem_add_list_member(struct dir *d, int64_t list_id, const char *address)
{
    struct dir_mem *m = mem_of(d);
    struct mem_member *e = GROW(m->list_members, m->n_list_members);
    e->owner_id = list_id;
    str_copy(e->address, sizeof(e->address), address);
}

int64_t dir_mem_add_route(struct dir *d, const struct dir_route *route)
{
    struct dir_mem *m = mem_of(d);
    struct dir_route *e = GROW(m->routes, m->n_routes);
    *e = *route;
    e->id = take_id(m, route->id);
    if (e->port == 0)
        e->port = 25;
    return e->id;
}

void dir_mem_add_route_address(struct dir *d, int64_t route_id, const char *address)
{
    struct dir_mem *m = mem_of(d);
    struct mem_member *e = GROW(m->route_addresses, m->n_route_addresses);
    e->owner_id = route_id;
    str_copy(e->address, sizeof(e->address), address);
}

int64_t dir_mem_add_iprange(struct dir *d, const struct dir_iprange *range)
{
    struct dir_mem *m = mem_of(d);
    struct dir_iprange *e = GROW(m->ipranges, m->n_ipranges);
    *e = *range;
    e->id = take_id(m, range->id);
    return e->id;
}

void dir_mem_set_now(struct dir *d, int64_t now)
{
    mem_of(d)->now = now;
}

void dir_mem_fail_next(struct dir *d, enum dir_result result)
{
    dir_mem_fail_at(d, 0, result);
}

void dir_mem_fail_at(struct dir *d, unsigned n, enum dir_result result)
{
    struct dir_mem *m = mem_of(d);
    m->fail_pending = result != DIR_OK;
    m->fail_at = m->lookups + n;
    m->fail_once = result;
}

void dir_mem_fail_all(struct dir *d, enum dir_result result)
{
    mem_of(d)->fail_always = result;
}

unsigned dir_mem_lookups(const struct dir *d)
{
    return ((const struct dir_mem *)d)->lookups;
}
