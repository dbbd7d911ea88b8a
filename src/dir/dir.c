/* dir: backend-independent wrappers over struct dir_ops (see dir.h). */
#include "dir/dir.h"

#include <stddef.h>

#include "lib/str.h"

enum dir_result dir_domain_get(struct dir *d, const char *name, struct dir_domain *out)
{
    return d->ops->domain_get(d, name, out);
}

enum dir_result dir_domain_alias_get(struct dir *d, const char *alias, char *domain_out)
{
    return d->ops->domain_alias_get(d, alias, domain_out);
}

enum dir_result dir_account_get(struct dir *d, const char *address, struct dir_account *out)
{
    return d->ops->account_get(d, address, out);
}

enum dir_result dir_alias_get(struct dir *d, const char *address, struct dir_alias *out)
{
    return d->ops->alias_get(d, address, out);
}

enum dir_result dir_list_get(struct dir *d, const char *address, struct dir_list *out)
{
    return d->ops->list_get(d, address, out);
}

enum dir_result dir_list_members(struct dir *d, int64_t list_id,
                                 void (*fn)(void *ctx, const char *address), void *ctx)
{
    return d->ops->list_members(d, list_id, fn, ctx);
}

enum dir_result dir_route_find(struct dir *d, const char *domain, struct dir_route *out)
{
    return d->ops->route_find(d, domain, out);
}

enum dir_result dir_route_has_address(struct dir *d, int64_t route_id, const char *address)
{
    return d->ops->route_has_address(d, route_id, address);
}

enum dir_result dir_iprange_match(struct dir *d, const struct ipaddr *ip, struct dir_iprange *out)
{
    return d->ops->iprange_match(d, ip, out);
}

void dir_close(struct dir **d)
{
    if (*d) {
        (*d)->ops->close(*d);
        *d = NULL;
    }
}

enum dir_result dir_domain_resolve(struct dir *d, const char *name, struct dir_domain *out)
{
    enum dir_result r = dir_domain_get(d, name, out);
    if (r != DIR_NOTFOUND)
        return r;
    char primary[DIR_NAME_MAX];
    r = dir_domain_alias_get(d, name, primary);
    if (r != DIR_OK)
        return r;
    return dir_domain_get(d, primary, out);
}

const char *dir_result_name(enum dir_result r)
{
    switch (r) {
    case DIR_OK:
        return "ok";
    case DIR_NOTFOUND:
        return "not found";
    case DIR_TEMPFAIL:
        return "temporary failure";
    case DIR_PERMFAIL:
        return "permanent failure";
    }
    return "?";
}
