/* queue_target: where the recipients of one domain are delivered (hmailserver-behaviour.md
 * §8.3) and the local-IP loop check (§8.4). Runs on the event-loop thread.
 *
 * Order: the recipient's route (its host may be "a|b|c", each name's A/AAAA, the route's port)
 * → the smarthost ([delivery] relay_host, relay_port) → the domain's MX hosts by preference
 * (equal preferences in random order; each MX host's addresses, IPv4 first; an MX that is an IP
 * literal is used directly) → no MX: the domain's own A/AAAA (implicit MX, RFC 5321 §5.1).
 * A recipient domain that is an address literal ("[1.2.3.4]") is that address. MX targets use
 * port 25. At most QUEUE_TARGET_MAX_ADDRS addresses, duplicates removed.
 *
 * Failures (error = the per-recipient text, without the "Error Type: SMTP" framing):
 *   NXDOMAIN, null MX (RFC 7505), no MX and no address, every MX host without an address
 *     → PERMFAIL QUEUE_TARGET_ERR_NO_MX;
 *   DNS timeout/SERVFAIL (and nothing usable) → TEMPFAIL QUEUE_TARGET_ERR_DNS;
 *   route/relay host names none of which resolve → TEMPFAIL QUEUE_TARGET_ERR_RELAY
 *     (QUEUE_TARGET_ERR_DNS when the lookup itself failed). */
#ifndef GANNET_QUEUE_QUEUE_TARGET_H
#define GANNET_QUEUE_QUEUE_TARGET_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/ipaddr.h"

struct conf;
struct dir_route;
struct dns;

#define QUEUE_TARGET_MAX_ADDRS 15

#define QUEUE_TARGET_ERR_NO_MX "No mail servers appear to exists for the recipient's address."
#define QUEUE_TARGET_ERR_DNS                                                                       \
    "Unable to find the recipient's email server. The DNS query has failed."
#define QUEUE_TARGET_ERR_RELAY                                                                     \
    "The host specified as SMTP relay server could not be found. Please contact your server "      \
    "administrator."

struct queue_target_addr {
    struct ipaddr ip;
    int port;
    char host[256]; /* the MX/route/relay host name (lower-case), or the literal as written */
};

enum queue_target_status { QUEUE_TARGET_OK, QUEUE_TARGET_TEMPFAIL, QUEUE_TARGET_PERMFAIL };

struct queue_target {
    enum queue_target_status status;
    char error[512]; /* TEMPFAIL/PERMFAIL: one of QUEUE_TARGET_ERR_*; "" when OK */
    struct queue_target_addr addrs[QUEUE_TARGET_MAX_ADDRS];
    size_t count; /* > 0 exactly when OK */
};

struct queue_target_request {
    const char *domain;            /* recipient domain (any case) */
    const struct dir_route *route; /* the route for this recipient, or NULL */
    const char *relay_host;        /* [delivery] relay_host (smarthost), "" or NULL = none */
    int relay_port;                /* 0 = 25 */
};

/* The request is copied: it need not outlive the call. cb runs exactly once, on the loop,
 * never from inside this call (except from inside dns_free(), with a TEMPFAIL); t is valid
 * during the callback only. */
void queue_target_resolve(struct dns *dns, const struct queue_target_request *req,
                          void (*cb)(void *ctx, const struct queue_target *t), void *ctx);

/* §8.4: true when connecting to ip:port would reach this server. A loopback target (127.0.0.0/8,
 * ::1, or the unspecified 0.0.0.0/::) matches any listener on that port bound to a wildcard
 * ("*", "", 0.0.0.0, ::), to localhost or to a loopback address; another target matches a
 * listener on that port bound to that address, or a wildcard listener when the address is one
 * of this machine's interface addresses (getifaddrs()). Every listener counts, whatever its
 * protocol. */
bool queue_target_is_self(const struct conf *conf, const struct ipaddr *ip, int port);
/* The same with the interface addresses given (tests). */
bool queue_target_is_self_with(const struct conf *conf, const struct ipaddr *ip, int port,
                               const struct ipaddr *local, size_t nlocal);

#endif
