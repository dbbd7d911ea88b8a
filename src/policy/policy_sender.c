/* policy_sender: decisions about the MAIL FROM address that need the directory.
 *
 *   policy_address_map      address -> same local part @ primary domain (domain aliases, §4.4)
 *   policy_sender_is_local  the §2.3 "local sender" classification for the relay rules
 *   policy_max_message_kb   the §1.10 effective size limit (global vs the sender's domain)
 *
 * Directory failures are returned as DIR_TEMPFAIL/DIR_PERMFAIL (the caller answers 4xx); the
 * out-parameters then hold the safe default (address unchanged, external sender, global limit). */
#include "policy/policy.h"

#include <string.h>

#include "lib/str.h"

int policy_address_join(char out[ADDR_MAX], const char *local, const char *domain)
{
    size_t ll = strlen(local), dl = strlen(domain);
    if (ll + 1 + dl >= ADDR_MAX)
        return -1;
    memcpy(out, local, ll);
    out[ll] = '@';
    memcpy(out + ll + 1, domain, dl + 1);
    return 0;
}

enum dir_result policy_address_map(struct dir *d, const char *address, char out[ADDR_MAX])
{
    str_copy(out, ADDR_MAX, address);
    char local[ADDR_MAX], domain[ADDR_MAX];
    if (addr_split(address, local, domain) < 0)
        return DIR_OK;
    struct dir_domain dom;
    enum dir_result r = dir_domain_resolve(d, domain, &dom);
    if (r == DIR_NOTFOUND)
        return DIR_OK;
    if (r != DIR_OK)
        return r;
    char mapped[ADDR_MAX];
    if (policy_address_join(mapped, local, dom.name) == 0)
        memcpy(out, mapped, ADDR_MAX);
    return DIR_OK;
}

enum dir_result policy_sender_is_local(struct dir *d, const char *sender, bool *local_r)
{
    *local_r = false;
    if (!sender || !*sender)
        return DIR_OK; /* the null sender is external */
    char local[ADDR_MAX], domain[ADDR_MAX];
    if (addr_split(sender, local, domain) < 0)
        return DIR_OK;

    struct dir_domain dom;
    enum dir_result r = dir_domain_resolve(d, domain, &dom);
    if (r == DIR_OK && dom.enabled) {
        *local_r = true;
        return DIR_OK;
    }
    if (r != DIR_OK && r != DIR_NOTFOUND)
        return r;

    /* A route for the sender's domain (as written, before domain aliases) that covers this
     * address and says "treat sender as local domain". */
    struct dir_route route;
    r = dir_route_find(d, domain, &route);
    if (r == DIR_NOTFOUND)
        return DIR_OK;
    if (r != DIR_OK)
        return r;
    if (!route.local_sender)
        return DIR_OK;
    if (!route.all_addresses) {
        r = dir_route_has_address(d, route.id, sender);
        if (r == DIR_NOTFOUND)
            return DIR_OK;
        if (r != DIR_OK)
            return r;
    }
    *local_r = true;
    return DIR_OK;
}

enum dir_result policy_max_message_kb(struct dir *d, const char *sender, unsigned global_kb,
                                      unsigned *max_kb_r)
{
    *max_kb_r = global_kb;
    if (!sender || !*sender)
        return DIR_OK;
    char local[ADDR_MAX], domain[ADDR_MAX];
    if (addr_split(sender, local, domain) < 0)
        return DIR_OK;
    struct dir_domain dom;
    enum dir_result r = dir_domain_resolve(d, domain, &dom);
    if (r == DIR_NOTFOUND)
        return DIR_OK;
    if (r != DIR_OK)
        return r;
    if (dom.max_message_kb > 0 && (global_kb == 0 || dom.max_message_kb < global_kb))
        *max_kb_r = dom.max_message_kb;
    return DIR_OK;
}
