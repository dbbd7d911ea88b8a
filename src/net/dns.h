/* dns: asynchronous DNS on the event loop (c-ares). Nameservers come from [dns] nameservers or
 * /etc/resolv.conf; /etc/hosts is never consulted (answers are what DNS says). Results arrive in
 * a callback on the loop thread, always later than the call that started the lookup (never from
 * inside it); a lookup still running when dns_free() is called gets its callback with
 * DNS_TEMPFAIL (from inside dns_free()). Everything runs on the event-loop thread.
 *
 * Lookups: PTR (Received header), MX (sorted, null MX detected) and A+AAAA (IP literals answered
 * without a query). CNAME chains are followed (also when the server only returns the CNAME).
 * Positive MX/A/AAAA answers are cached for min(TTL, 1 h), at most 1000 names
 * (dns_set_cache_size()); PTR answers are not cached (one per connection, and protocol tests add
 * and remove PTR records for the same client address while one server runs). Negative answers
 * are not cached.
 *
 * dns_new_fake() gives the same API over an in-memory zone (dns_fake_add()) for unit tests: it
 * answers like tests/proto/gannet.py's FakeDNS — records for the name and type, else NODATA when
 * the name has other records, else NXDOMAIN; CNAMEs are followed as a recursive resolver does. */
#ifndef GANNET_NET_DNS_H
#define GANNET_NET_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* ---- MX ---- */

#define DNS_NAME_MAX 256

struct dns_mx {
    char host[DNS_NAME_MAX]; /* lower-case, no trailing dot */
    unsigned preference;
};

/* mx is sorted by preference, equal preferences in random order; valid during the callback only.
 * DNS_NOTFOUND = NXDOMAIN; DNS_OK with n = 0 = the domain exists but has no MX (implicit MX);
 * null_mx (RFC 7505 "0 .", n = 0) = the domain accepts no mail; DNS_TEMPFAIL = timeout, SERVFAIL
 * or another resolver failure. */
typedef void dns_mx_cb(void *ctx, enum dns_status st, const struct dns_mx *mx, size_t n,
                       bool null_mx);
void dns_lookup_mx(struct dns *d, const char *domain, dns_mx_cb *cb, void *ctx);

/* ---- A / AAAA ---- */

/* addrs: every IPv4 address, then every IPv6 address, without duplicates; valid during the
 * callback only. An IP literal host ("1.2.3.4", "[1.2.3.4]", "::1", "[::1]", "[IPv6:::1]")
 * answers itself. DNS_NOTFOUND = NXDOMAIN or no address of either family; DNS_TEMPFAIL = no
 * address and at least one of the two queries failed (timeout, SERVFAIL...). */
typedef void dns_addr_cb(void *ctx, enum dns_status st, const struct ipaddr *addrs, size_t n);
void dns_lookup_addrs(struct dns *d, const char *host, dns_addr_cb *cb, void *ctx);

/* ---- cache ---- */

/* At most max_entries answers are kept (default 1000); 0 turns the cache off and empties it. */
void dns_set_cache_size(struct dns *d, size_t max_entries);

/* ---- in-memory fake for tests ---- */

struct dns *dns_new_fake(struct event_base *base);
/* type: "A", "AAAA", "MX" (value "10 mx.example.test", "0 ." for null MX), "CNAME", "PTR" (name
 * "4.3.2.1.in-addr.arpa"). Returns 0, or -1 for an unknown type or a value that does not parse. */
int dns_fake_add(struct dns *d, const char *name, const char *type, const char *value,
                 unsigned ttl);
/* Queries for name/type (type NULL = every type) fail with DNS_TEMPFAIL (like SERVFAIL). */
void dns_fake_fail(struct dns *d, const char *name, const char *type);
/* Forget every record and failure (the cache is kept: see dns_set_cache_size()). */
void dns_fake_clear(struct dns *d);
/* Number of queries the fake has answered (a cache hit is not a query). */
unsigned dns_fake_queries(const struct dns *d);

/* ---- pure parts, exposed for unit tests ---- */

/* An IP literal as a host: "1.2.3.4", "::1", "[1.2.3.4]", "[::1]" or "[IPv6:::1]" (RFC 5321
 * address literal). Returns 0 and the address, or -1 when host is not a literal. */
int dns_literal_parse(const char *host, struct ipaddr *ip_r);
/* Sort by preference; equal preferences are shuffled. */
void dns_mx_sort(struct dns_mx *mx, size_t n);
/* RFC 7505: the set is a null MX when its only exchange is the root ("" or "."). A set whose
 * every exchange is the root (whatever the preference) counts as null too. */
bool dns_mx_is_null(const struct dns_mx *mx, size_t n);

/* One resource record of a parsed answer section (names lower-case, no trailing dot). */
struct dns_rr {
    uint16_t type; /* DNS_T_* */
    uint16_t pref; /* MX */
    uint32_t ttl;
    char owner[DNS_NAME_MAX];
    char data[DNS_NAME_MAX]; /* MX exchange, CNAME target, PTR name */
    struct ipaddr ip;        /* A, AAAA */
};
enum { DNS_T_A = 1, DNS_T_CNAME = 5, DNS_T_PTR = 12, DNS_T_MX = 15, DNS_T_AAAA = 28 };

/* Parse the answer section of a DNS response (RFC 1035 §4.1): class IN records of the types
 * above are kept (at most 64), others skipped. Returns the number of records (*rr_r malloc'ed,
 * NULL when 0), or -1 when the message is malformed. */
int dns_answer_parse(const uint8_t *msg, size_t len, struct dns_rr **rr_r);
/* Advance the cache clock by seconds (tests of TTL expiry). */
void dns_cache_advance(struct dns *d, unsigned seconds);

#endif
