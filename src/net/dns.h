/* dns: asynchronous DNS on the event loop (c-ares). Nameservers come from [dns] nameservers or
 * /etc/resolv.conf; /etc/hosts is never consulted (answers are what DNS says). Results arrive in
 * a callback on the loop thread; a lookup still running when dns_free() is called gets its
 * callback with DNS_TEMPFAIL. Today: reverse (PTR) lookups for the Received header; the MX/A/TXT
 * lookups of outbound delivery and anti-spam join this module. */
#ifndef GANNET_NET_DNS_H
#define GANNET_NET_DNS_H

#include "lib/ipaddr.h"

struct event_base;
struct dns;

enum dns_status { DNS_OK = 0, DNS_NOTFOUND, DNS_TEMPFAIL };

/* nameservers: "" for the system resolver configuration, else "ip[:port],[v6]:port,...". */
struct dns *dns_new(struct event_base *base, const char *nameservers, const char **err_r);
void dns_free(struct dns **dns);

/* name is the first PTR answer (NULL unless DNS_OK). */
typedef void dns_name_cb(void *ctx, enum dns_status status, const char *name);
void dns_lookup_ptr(struct dns *dns, const struct ipaddr *ip, dns_name_cb *cb, void *ctx);

#endif
