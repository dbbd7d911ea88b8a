/* policy_rcpt: the RCPT TO decision (hmailserver-behaviour.md §4.1-4.4, §4.6, §2.3; replies.md
 * "RCPT TO" order) and the expansion of one address into stored recipients (§4.2).
 *
 *   policy_rcpt_check        permission check -> relay direction -> auth -> expansion
 *   policy_expand_address    the same resolution for delivery-time forwarding (no relay rules,
 *                            no list permission checks)
 *   policy_rcpt_result_free
 *
 * One address is classified by classify() with the §4.1 precedence: domain (via domain aliases)
 * -> disabled domain -> plus addressing -> account -> alias -> list -> route -> catch-all ->
 * external -> unknown. check_address() walks that with the hop counter, loop detection and list
 * permissions, answering the first failure; expand_address() walks it again collecting
 * recipients, skipping silently whatever is inactive or too deep. Any directory failure anywhere
 * becomes POLICY_TEMPFAIL + R_TEMP_LOOKUP, never "Unknown user". */
#include "policy/policy.h"

#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

enum step_kind {
    STEP_UNKNOWN = 0,     /* local domain, nothing found, no catch-all */
    STEP_DOMAIN_DISABLED, /* local domain that is disabled */
    STEP_ACCOUNT,         /* u.account */
    STEP_ALIAS,           /* u.alias */
    STEP_LIST,            /* u.list */
    STEP_ROUTE,           /* u.route covers the address */
    STEP_NOT_IN_ROUTE,    /* u.route matches the domain but not this address, no catch-all */
    STEP_CATCH_ALL,       /* continue with domain.catch_all */
    STEP_EXTERNAL,        /* not a local domain, no route */
};

/* What one address is (one hop of §4.1). */
struct step {
    enum step_kind kind;
    bool local_domain;
    /* The address as looked up: for a local domain local part (cut at the plus character) @
     * primary domain; otherwise the address as given. Used for loop detection. */
    char key[ADDR_MAX];
    struct dir_domain domain; /* valid when local_domain */
    union {
        struct dir_account account;
        struct dir_alias alias;
        struct dir_list list;
        struct dir_route route;
    } u;
};

struct strvec {
    char **v;
    size_t n;
};

struct list_depth {
    int64_t id;
    int depth;
};

/* State of one policy_rcpt_check / policy_expand_address call. */
struct ctx {
    struct dir *d;
    const char *sender;
    bool authenticated;
    bool list_checks;     /* false for delivery-time forwarding */
    enum dir_result fail; /* the directory failure behind an R_TEMP_LOOKUP */

    char sender_mapped[ADDR_MAX];
    bool sender_mapped_done;

    struct list_depth *checked; /* lists whose permission is checked (or being checked) */
    size_t n_checked;

    struct list_depth *expanded; /* lists expanded, with the smallest depth they were met at */
    size_t n_expanded;

    const char *original;
    struct policy_recipient *rcpts;
    size_t n_rcpts, cap_rcpts;
    size_t *hash; /* open addressing over rcpts: index + 1, 0 = empty */
    size_t hash_size;
};

/* ---- small containers ---- */

static void strvec_cb(void *ctxp, const char *address)
{
    struct strvec *sv = ctxp;
    sv->v = xrealloc(sv->v, (sv->n + 1) * sizeof(*sv->v));
    sv->v[sv->n++] = xstrdup(address);
}

static void strvec_free(struct strvec *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    XFREE(&sv->v);
    sv->n = 0;
}

/* Members of a list, collected before any further lookup (no nested queries inside the
 * backend's iteration). */
static enum dir_result list_members_get(struct ctx *c, int64_t list_id, struct strvec *out)
{
    enum dir_result r = dir_list_members(c->d, list_id, strvec_cb, out);
    if (r == DIR_NOTFOUND)
        r = DIR_OK; /* no members */
    if (r != DIR_OK)
        strvec_free(out);
    return r;
}

static size_t addr_hash(const char *s)
{
    size_t h = 1469598103934665603u;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 'A' && ch <= 'Z')
            ch = (unsigned char)(ch - 'A' + 'a');
        h = (h ^ ch) * 1099511628211u;
    }
    return h;
}

static void hash_insert(struct ctx *c, size_t index)
{
    size_t mask = c->hash_size - 1;
    size_t i = addr_hash(c->rcpts[index].address) & mask;
    while (c->hash[i])
        i = (i + 1) & mask;
    c->hash[i] = index + 1;
}

/* Add one recipient unless its resolved address is already there (case-insensitive). */
static void rcpt_add(struct ctx *c, const char *address, bool local, int64_t route_id)
{
    if (c->hash_size) {
        size_t mask = c->hash_size - 1;
        for (size_t i = addr_hash(address) & mask; c->hash[i]; i = (i + 1) & mask) {
            if (str_ieq(c->rcpts[c->hash[i] - 1].address, address))
                return;
        }
    }
    if (c->n_rcpts == c->cap_rcpts) {
        c->cap_rcpts = c->cap_rcpts ? 2 * c->cap_rcpts : 4;
        c->rcpts = xrealloc(c->rcpts, c->cap_rcpts * sizeof(*c->rcpts));
    }
    struct policy_recipient *pr = &c->rcpts[c->n_rcpts++];
    memset(pr, 0, sizeof(*pr));
    str_copy(pr->address, sizeof(pr->address), address);
    str_copy(pr->original, sizeof(pr->original), c->original);
    pr->local = local;
    pr->route_id = route_id;

    if (2 * c->n_rcpts > c->hash_size) { /* keep the load at most 1/2: rebuild */
        free(c->hash);
        c->hash_size = c->hash_size ? 2 * c->hash_size : 16;
        c->hash = xcalloc(c->hash_size, sizeof(*c->hash));
        for (size_t i = 0; i < c->n_rcpts; i++)
            hash_insert(c, i);
    } else {
        hash_insert(c, c->n_rcpts - 1);
    }
}

static void ctx_init(struct ctx *c, struct dir *d, const char *sender, bool authenticated,
                     bool list_checks, const char *original)
{
    memset(c, 0, sizeof(*c));
    c->d = d;
    c->sender = sender ? sender : "";
    c->authenticated = authenticated;
    c->list_checks = list_checks;
    c->fail = DIR_OK;
    c->original = original;
}

static void ctx_free(struct ctx *c)
{
    free(c->checked);
    free(c->expanded);
    free(c->rcpts);
    free(c->hash);
    memset(c, 0, sizeof(*c));
}

/* Lists are walked (checked, expanded) once per call, unless met again higher up, where more of
 * their subtree fits under the hop limit: this bounds the work on lists that contain themselves
 * or each other, without losing what a shallower path reaches. True: walk it now. */
static bool list_visit(struct list_depth **arr, size_t *n, int64_t id, int depth)
{
    for (size_t i = 0; i < *n; i++) {
        if ((*arr)[i].id == id) {
            if ((*arr)[i].depth <= depth)
                return false;
            (*arr)[i].depth = depth;
            return true;
        }
    }
    *arr = xrealloc(*arr, (*n + 1) * sizeof(**arr));
    (*arr)[(*n)++] = (struct list_depth){.id = id, .depth = depth};
    return true;
}

/* ---- one hop ---- */

/* Classify address (§4.1 steps 2-7). DIR_OK with *st filled, or the directory failure. */
static enum dir_result classify(struct dir *d, const char *address, struct step *st)
{
    memset(st, 0, sizeof(*st));
    str_copy(st->key, sizeof(st->key), address);
    char local[ADDR_MAX], domain[ADDR_MAX];
    if (addr_split(address, local, domain) < 0) {
        st->kind = STEP_UNKNOWN; /* a stored target without a domain: nowhere to go */
        return DIR_OK;
    }

    enum dir_result r = dir_domain_resolve(d, domain, &st->domain);
    if (r == DIR_OK)
        st->local_domain = true;
    else if (r != DIR_NOTFOUND)
        return r;

    if (st->local_domain) {
        if (!st->domain.enabled) {
            st->kind = STEP_DOMAIN_DISABLED;
            return DIR_OK;
        }
        if (st->domain.plus_char) {
            char *plus = strchr(local, st->domain.plus_char);
            if (plus)
                *plus = '\0';
        }
        if (policy_address_join(st->key, local, st->domain.name) < 0)
            str_copy(st->key, sizeof(st->key), address);

        r = dir_account_get(d, st->key, &st->u.account);
        if (r == DIR_OK) {
            st->kind = STEP_ACCOUNT;
            return DIR_OK;
        }
        if (r != DIR_NOTFOUND)
            return r;
        r = dir_alias_get(d, st->key, &st->u.alias);
        if (r == DIR_OK) {
            st->kind = STEP_ALIAS;
            return DIR_OK;
        }
        if (r != DIR_NOTFOUND)
            return r;
        r = dir_list_get(d, st->key, &st->u.list);
        if (r == DIR_OK) {
            st->kind = STEP_LIST;
            return DIR_OK;
        }
        if (r != DIR_NOTFOUND)
            return r;
    }

    bool catch_all = st->local_domain && st->domain.catch_all[0] != '\0';

    /* §4.6: the route matches the domain as written (before domain-alias mapping). */
    r = dir_route_find(d, domain, &st->u.route);
    if (r == DIR_OK) {
        bool covered = st->u.route.all_addresses;
        if (!covered) {
            r = dir_route_has_address(d, st->u.route.id, address);
            if (r == DIR_OK)
                covered = true;
            else if (r != DIR_NOTFOUND)
                return r;
        }
        if (covered) {
            st->kind = STEP_ROUTE;
            return DIR_OK;
        }
        st->kind = catch_all ? STEP_CATCH_ALL : STEP_NOT_IN_ROUTE;
        return DIR_OK;
    }
    if (r != DIR_NOTFOUND)
        return r;

    if (catch_all)
        st->kind = STEP_CATCH_ALL;
    else if (!st->local_domain)
        st->kind = STEP_EXTERNAL;
    else
        st->kind = STEP_UNKNOWN;
    return DIR_OK;
}

/* ---- permission check (§4.1, §4.3) ---- */

static enum reply_id check_address(struct ctx *c, const char *address, int hops, bool first,
                                   bool *local_recipient_r);

static enum reply_id temp(struct ctx *c, enum dir_result r)
{
    if (c->fail == DIR_OK)
        c->fail = r;
    return R_TEMP_LOOKUP;
}

/* Does the (domain-alias mapped) sender equal address (mapped the same way)? */
static enum reply_id sender_matches(struct ctx *c, const char *address, bool *match_r)
{
    *match_r = false;
    enum dir_result r;
    if (!c->sender_mapped_done) {
        r = policy_address_map(c->d, c->sender, c->sender_mapped);
        if (r != DIR_OK)
            return temp(c, r);
        c->sender_mapped_done = true;
    }
    if (!c->sender_mapped[0] || !address[0])
        return R_250_OK; /* the null sender (or an empty entry) matches nobody */
    char mapped[ADDR_MAX];
    r = policy_address_map(c->d, address, mapped);
    if (r != DIR_OK)
        return temp(c, r);
    *match_r = str_ieq(mapped, c->sender_mapped);
    return R_250_OK;
}

/* §4.3: may the sender write to this (active) list? Then nested lists among the members are
 * checked the same way; only their permission errors (and lookup failures) propagate. */
static enum reply_id check_list(struct ctx *c, const struct dir_list *list, int hops)
{
    if (!c->list_checks)
        return R_250_OK;
    if (!list_visit(&c->checked, &c->n_checked, list->id, hops))
        return R_250_OK; /* already checked (or being checked: a list containing itself) */

    if (list->require_auth && !c->authenticated)
        return R_AUTH_REQUIRED;

    struct strvec members = {0};
    enum dir_result r = list_members_get(c, list->id, &members);
    if (r != DIR_OK)
        return temp(c, r);

    enum reply_id rr = R_250_OK;
    bool match = false;
    if (list->mode == DIR_LIST_MEMBERS) {
        for (size_t i = 0; i < members.n && !match && rr == R_250_OK; i++)
            rr = sender_matches(c, members.v[i], &match);
        if (rr == R_250_OK && !match)
            rr = R_NOT_AUTHORIZED;
    } else if (list->mode == DIR_LIST_ANNOUNCE) {
        rr = sender_matches(c, list->announcer, &match);
        if (rr == R_250_OK && !match)
            rr = R_NOT_AUTHORIZED;
    }

    for (size_t i = 0; i < members.n && rr == R_250_OK; i++) {
        enum reply_id nested = check_address(c, members.v[i], hops + 1, false, NULL);
        if (nested == R_TEMP_LOOKUP || nested == R_AUTH_REQUIRED || nested == R_NOT_AUTHORIZED)
            rr = nested;
    }
    strvec_free(&members);
    return rr;
}

/* §4.1 for one address: R_250_OK, or the reply of the first failure (R_TEMP_LOOKUP with c->fail
 * set on a directory failure). first: this is the RCPT address itself, whose first hop decides
 * *local_recipient_r (§2.3). */
static enum reply_id check_address(struct ctx *c, const char *address, int hops, bool first,
                                   bool *local_recipient_r)
{
    char cur[ADDR_MAX];
    str_copy(cur, sizeof(cur), address);
    char(*seen)[ADDR_MAX] = xmalloc((POLICY_MAX_HOPS + 1) * sizeof(*seen));
    size_t n_seen = 0;
    struct step *st = xmalloc(sizeof(*st));
    enum reply_id rr = R_250_OK;

    for (bool first_hop = first;; first_hop = false, hops++) {
        if (hops > POLICY_MAX_HOPS) {
            rr = R_TOO_MANY_FORWARDS;
            break;
        }
        enum dir_result r = classify(c->d, cur, st);
        if (r != DIR_OK) {
            rr = temp(c, r);
            break;
        }
        bool loop = false;
        for (size_t i = 0; i < n_seen && !loop; i++)
            loop = str_ieq(seen[i], st->key);
        if (loop) {
            rr = R_TOO_MANY_FORWARDS;
            break;
        }
        if (n_seen <= POLICY_MAX_HOPS)
            memcpy(seen[n_seen++], st->key, ADDR_MAX);
        if (first_hop && st->local_domain && local_recipient_r)
            *local_recipient_r = true;

        switch (st->kind) {
        case STEP_DOMAIN_DISABLED:
            rr = R_DOMAIN_DISABLED;
            break;
        case STEP_ACCOUNT:
            rr = st->u.account.enabled ? R_250_OK : R_ACCOUNT_INACTIVE;
            break;
        case STEP_ALIAS:
            if (!st->u.alias.enabled) {
                rr = R_ALIAS_INACTIVE;
                break;
            }
            str_copy(cur, sizeof(cur), st->u.alias.target);
            continue;
        case STEP_LIST:
            rr = st->u.list.enabled ? check_list(c, &st->u.list, hops) : R_LIST_INACTIVE;
            break;
        case STEP_ROUTE:
            if (first_hop && local_recipient_r)
                *local_recipient_r = st->u.route.local_recipient;
            rr = R_250_OK;
            break;
        case STEP_NOT_IN_ROUTE:
            rr = R_NOT_IN_ROUTE;
            break;
        case STEP_CATCH_ALL:
            str_copy(cur, sizeof(cur), st->domain.catch_all);
            continue;
        case STEP_EXTERNAL:
            rr = R_250_OK;
            break;
        case STEP_UNKNOWN:
            rr = R_UNKNOWN_USER;
            break;
        }
        break;
    }
    free(st);
    free(seen);
    return rr;
}

/* ---- expansion (§4.2) ---- */

static int expand_address(struct ctx *c, const char *address, int depth);

static int expand_list(struct ctx *c, const struct dir_list *list, int depth)
{
    if (!list_visit(&c->expanded, &c->n_expanded, list->id, depth))
        return 0;

    struct strvec members = {0};
    enum dir_result r = list_members_get(c, list->id, &members);
    if (r != DIR_OK) {
        temp(c, r);
        return -1;
    }
    int ret = 0;
    for (size_t i = 0; i < members.n && ret == 0; i++)
        ret = expand_address(c, members.v[i], depth + 1);
    strvec_free(&members);
    return ret;
}

/* Add the recipients address resolves to. 0, or -1 on a directory failure (c->fail). */
static int expand_address(struct ctx *c, const char *address, int depth)
{
    char cur[ADDR_MAX];
    str_copy(cur, sizeof(cur), address);
    struct step *st = xmalloc(sizeof(*st));
    int ret = 0;

    for (; depth <= POLICY_MAX_HOPS; depth++) {
        enum dir_result r = classify(c->d, cur, st);
        if (r != DIR_OK) {
            temp(c, r);
            ret = -1;
            break;
        }
        if (st->kind == STEP_ALIAS && st->u.alias.enabled) {
            str_copy(cur, sizeof(cur), st->u.alias.target);
            continue;
        }
        if (st->kind == STEP_CATCH_ALL) {
            str_copy(cur, sizeof(cur), st->domain.catch_all);
            continue;
        }
        if (st->kind == STEP_ACCOUNT && st->u.account.enabled)
            rcpt_add(c, st->u.account.address, true, 0);
        else if (st->kind == STEP_LIST && st->u.list.enabled)
            ret = expand_list(c, &st->u.list, depth);
        else if (st->kind == STEP_ROUTE)
            rcpt_add(c, cur, false, st->u.route.id);
        else if (st->kind == STEP_EXTERNAL)
            rcpt_add(c, cur, false, 0);
        /* everything else (inactive, disabled, unknown, not in route) is skipped silently */
        break;
    }
    free(st);
    return ret;
}

/* ---- public ---- */

static void result_reply(struct policy_rcpt_result *res, enum policy_verdict verdict,
                         enum reply_id reply)
{
    res->verdict = verdict;
    res->reply = reply;
}

/* Any directory failure: 451. Not logged here: the caller logs it, and a lookup that only missed
 * the directory cache (dir_cache.h) is retried on a worker without being a failure at all. */
static void result_tempfail(const struct ctx *c, struct policy_rcpt_result *res)
{
    res->fail = c->fail;
    result_reply(res, POLICY_TEMPFAIL, R_TEMP_LOOKUP);
}

/* Expand into res (ACCEPT), or answer TEMPFAIL / 550 Unknown user when nothing comes out. */
static void expand_into(struct ctx *c, const char *address, int hops,
                        struct policy_rcpt_result *res)
{
    if (expand_address(c, address, hops) < 0) {
        result_tempfail(c, res);
        return;
    }
    if (c->n_rcpts == 0) {
        result_reply(res, POLICY_REJECT, R_UNKNOWN_USER);
        return;
    }
    result_reply(res, POLICY_ACCEPT, R_250_OK);
    res->recipients = c->rcpts;
    res->recipients_count = c->n_rcpts;
    c->rcpts = NULL;
    c->n_rcpts = c->cap_rcpts = 0;
}

void policy_rcpt_check(struct dir *d, const struct policy_rcpt_request *req,
                       struct policy_rcpt_result *res)
{
    memset(res, 0, sizeof(*res));
    struct ctx c;
    ctx_init(&c, d, req->sender, req->authenticated, true, req->rcpt);

    enum reply_id rr = check_address(&c, req->rcpt, 1, true, &res->local_recipient);
    if (rr != R_250_OK) {
        if (rr == R_TEMP_LOOKUP)
            result_tempfail(&c, res);
        else
            result_reply(res, POLICY_REJECT, rr);
        goto out;
    }

    enum dir_result dr = policy_sender_is_local(d, c.sender, &res->local_sender);
    if (dr != DIR_OK) {
        temp(&c, dr);
        result_tempfail(&c, res);
        goto out;
    }
    /* §2.3: the direction's "allow deliveries" bit, then its "require SMTP auth" bit. */
    static const uint32_t deliver[2][2] = {
        {DIR_IPR_DELIVER_EE, DIR_IPR_DELIVER_EL}, /* [local_sender][local_recipient] */
        {DIR_IPR_DELIVER_LE, DIR_IPR_DELIVER_LL},
    };
    static const uint32_t auth[2][2] = {
        {DIR_IPR_AUTH_EE, DIR_IPR_AUTH_EL},
        {DIR_IPR_AUTH_LE, DIR_IPR_AUTH_LL},
    };
    int s = res->local_sender, r = res->local_recipient;
    if (!(req->iprange_flags & deliver[s][r])) {
        result_reply(res, POLICY_REJECT, R_RELAY_DENIED);
        goto out;
    }
    if ((req->iprange_flags & auth[s][r]) && !req->authenticated) {
        result_reply(res, POLICY_REJECT, R_AUTH_REQUIRED);
        goto out;
    }

    expand_into(&c, req->rcpt, 1, res);
out:
    ctx_free(&c);
}

void policy_expand_address(struct dir *d, const char *sender, const char *address, int hops,
                           struct policy_rcpt_result *res)
{
    memset(res, 0, sizeof(*res));
    if (hops < 1)
        hops = 1;
    struct ctx c;
    ctx_init(&c, d, sender, false, false, address);
    enum reply_id rr = check_address(&c, address, hops, true, &res->local_recipient);
    if (rr == R_250_OK)
        expand_into(&c, address, hops, res);
    else if (rr == R_TEMP_LOOKUP)
        result_tempfail(&c, res);
    else
        result_reply(res, POLICY_REJECT, rr);
    ctx_free(&c);
}

void policy_rcpt_result_free(struct policy_rcpt_result *res)
{
    XFREE(&res->recipients);
    res->recipients_count = 0;
}
