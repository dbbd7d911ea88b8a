/* policy: decisions that need the directory — recipient resolution (hmailserver-behaviour.md §4),
 * the IP-range relay and auth rules (§2.3), in the RCPT check order of replies.md.
 *
 * These functions are synchronous and may do several directory lookups, so the server calls them
 * on a worker thread (each worker owns a struct dir). They never return "Unknown user" for a
 * directory failure: any DIR_TEMPFAIL/PERMFAIL becomes POLICY_TEMPFAIL (451 Temporary lookup
 * failure). */
#ifndef GANNET_POLICY_POLICY_H
#define GANNET_POLICY_POLICY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dir/dir.h"
#include "mail/addr.h"
#include "mail/reply.h"

#define POLICY_MAX_HOPS 25

enum policy_verdict { POLICY_ACCEPT = 0, POLICY_REJECT, POLICY_TEMPFAIL };

/* One stored recipient after expansion (§4.2). */
struct policy_recipient {
    char address[ADDR_MAX];  /* resolved: a local account address, or a remote address */
    char original[ADDR_MAX]; /* the RCPT TO address as given (for Delivered-To) */
    bool local;              /* true: deliver into the account's mailbox */
    int64_t route_id;        /* remote via a route (0 = via MX / smarthost) */
};

struct policy_rcpt_request {
    const char *sender; /* MAIL FROM address, "" for the null sender */
    const char *rcpt;   /* RCPT TO address (already syntax-checked) */
    bool authenticated;
    uint32_t iprange_flags; /* DIR_IPR_* of the client's IP range */
};

struct policy_rcpt_result {
    enum policy_verdict verdict;
    enum reply_id reply; /* for REJECT/TEMPFAIL: the catalogue reply to send */
    enum dir_result fail; /* for TEMPFAIL: what the directory answered */
    bool local_sender;   /* §2.3 classification, for logs and tests */
    bool local_recipient;
    /* For ACCEPT: the expanded recipients (owned; free with policy_rcpt_result_free). */
    struct policy_recipient *recipients;
    size_t recipients_count;
};

/* The whole RCPT decision after syntax checks, in replies.md order: recursion limit, domain
 * disabled, account/alias/list inactive, list auth and sender permission, route list, unknown
 * user, relay direction (550 Delivery is not allowed...), auth requirement (530), then expansion
 * into recipients (an expansion that yields nothing -> 550 Unknown user). */
void policy_rcpt_check(struct dir *d, const struct policy_rcpt_request *req,
                       struct policy_rcpt_result *res);
void policy_rcpt_result_free(struct policy_rcpt_result *res);

/* §2.3: is the sender local (its domain, after domain aliases, is an enabled local domain, or a
 * route with "treat sender as local" covers it)? The null sender is external. */
enum dir_result policy_sender_is_local(struct dir *d, const char *sender, bool *local_r);

/* The effective maximum message size in KB for this sender (§1.10): min(global, sender's local
 * domain limit), 0 = unlimited. */
enum dir_result policy_max_message_kb(struct dir *d, const char *sender, unsigned global_kb,
                                      unsigned *max_kb_r);

/* Forwarding at delivery time (§4.5): resolve a forward target the way RCPT would for an
 * unauthenticated sender, without relay rules. Fills recipients like policy_rcpt_check. */
void policy_expand_address(struct dir *d, const char *sender, const char *address, int hops,
                           struct policy_rcpt_result *res);

/* Map an address through domain aliases (§4.4): local@alias-domain -> local@primary-domain.
 * Addresses outside local domains (and strings without '@') are copied unchanged. On
 * TEMPFAIL/PERMFAIL out holds the unchanged address. */
enum dir_result policy_address_map(struct dir *d, const char *address, char out[ADDR_MAX]);
/* out = local "@" domain; -1 (out untouched) when it would not fit in ADDR_MAX. */
int policy_address_join(char out[ADDR_MAX], const char *local, const char *domain);

#endif
