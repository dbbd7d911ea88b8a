/* queue_target: target resolution for outbound delivery and the local-IP loop check
 * (queue_target.h; hmailserver-behaviour.md §8.3, §8.4; RFC 5321 §5.1, RFC 7505).
 *   queue_target_resolve()      route → smarthost → MX → implicit MX, to at most 15 addresses
 *   queue_target_is_self()      would connecting to ip:port reach one of our own listeners?
 *   queue_target_is_self_with() the same with the interface addresses given
 * One request is one allocation (struct qt_req) freed right after its callback; the host lookups
 * run in parallel and are put back in order (route/MX order, IPv4 before IPv6) at the end.
 * Deviation from hMailServer (as issue 4 asks): NXDOMAIN, null MX and "no MX and no address"
 * fail permanently (hMailServer retries them); DNS failures stay temporary. */
#include "queue/queue_target.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "dir/dir.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "net/dns.h"

#define QT_MAX_FIXED_HOSTS 16

enum qt_mode { QT_FIXED, QT_MX, QT_IMPLICIT };

struct qt_req;

struct qt_host {
    struct qt_req *req;
    char name[256];
    enum dns_status st;
    struct ipaddr addrs[QUEUE_TARGET_MAX_ADDRS];
    size_t n;
};

struct qt_req {
    struct dns *dns;
    void (*cb)(void *ctx, const struct queue_target *t);
    void *ctx;
    enum qt_mode mode;
    int port;
    char domain[256];
    struct qt_host *hosts;
    size_t nhosts;
    size_t pending;
    struct queue_target result;
};

static void qt_done(struct qt_req *r, enum queue_target_status st, const char *error)
{
    r->result.status = st;
    if (st != QUEUE_TARGET_OK) {
        r->result.count = 0;
        str_copy(r->result.error, sizeof(r->result.error), error);
    }
    r->cb(r->ctx, &r->result);
    free(r->hosts);
    free(r);
}

static void qt_add_host(struct qt_req *r, const char *name)
{
    r->hosts = xrealloc(r->hosts, (r->nhosts + 1) * sizeof(*r->hosts));
    struct qt_host *h = &r->hosts[r->nhosts++];
    memset(h, 0, sizeof(*h));
    h->req = r;
    str_copy(h->name, sizeof(h->name), name);
    str_lower(h->name);
}

/* Every host has been looked up: collect the addresses in host order. */
static void qt_finish(struct qt_req *r)
{
    struct queue_target *t = &r->result;
    bool tempfail = false;
    for (size_t i = 0; i < r->nhosts; i++) {
        const struct qt_host *h = &r->hosts[i];
        if (h->st == DNS_TEMPFAIL)
            tempfail = true;
        for (size_t j = 0; j < h->n && t->count < QUEUE_TARGET_MAX_ADDRS; j++) {
            bool dup = false;
            for (size_t k = 0; k < t->count && !dup; k++)
                dup = memcmp(t->addrs[k].ip.b, h->addrs[j].b, 16) == 0;
            if (dup)
                continue;
            struct queue_target_addr *a = &t->addrs[t->count++];
            a->ip = h->addrs[j];
            a->port = r->port;
            str_copy(a->host, sizeof(a->host), h->name);
        }
    }
    if (t->count > 0) {
        qt_done(r, QUEUE_TARGET_OK, "");
        return;
    }
    if (tempfail)
        qt_done(r, QUEUE_TARGET_TEMPFAIL, QUEUE_TARGET_ERR_DNS);
    else if (r->mode == QT_FIXED) /* every route/relay host is NXDOMAIN or has no address */
        qt_done(r, QUEUE_TARGET_TEMPFAIL, QUEUE_TARGET_ERR_RELAY);
    else
        qt_done(r, QUEUE_TARGET_PERMFAIL, QUEUE_TARGET_ERR_NO_MX);
}

static void qt_host_cb(void *ctx, enum dns_status st, const struct ipaddr *addrs, size_t n)
{
    struct qt_host *h = ctx;
    struct qt_req *r = h->req;
    h->st = st;
    for (size_t i = 0; i < n && h->n < QUEUE_TARGET_MAX_ADDRS; i++)
        h->addrs[h->n++] = addrs[i];
    if (--r->pending == 0)
        qt_finish(r);
}

static void qt_resolve_hosts(struct qt_req *r)
{
    if (r->nhosts == 0)
        qt_add_host(r, "");     /* answers DNS_NOTFOUND, later */
    r->pending = r->nhosts + 1; /* held until every lookup has started */
    for (size_t i = 0; i < r->nhosts; i++)
        dns_lookup_addrs(r->dns, r->hosts[i].name, qt_host_cb, &r->hosts[i]);
    if (--r->pending == 0)
        qt_finish(r);
}

static void qt_mx_cb(void *ctx, enum dns_status st, const struct dns_mx *mx, size_t n, bool null_mx)
{
    struct qt_req *r = ctx;
    if (st == DNS_TEMPFAIL) {
        qt_done(r, QUEUE_TARGET_TEMPFAIL, QUEUE_TARGET_ERR_DNS);
        return;
    }
    if (st == DNS_NOTFOUND || null_mx) {
        qt_done(r, QUEUE_TARGET_PERMFAIL, QUEUE_TARGET_ERR_NO_MX);
        return;
    }
    if (n == 0) {
        r->mode = QT_IMPLICIT;
        qt_add_host(r, r->domain);
    } else {
        r->mode = QT_MX;
        for (size_t i = 0; i < n; i++)
            qt_add_host(r, mx[i].host);
    }
    qt_resolve_hosts(r);
}

/* Split "a|b|c" into hosts (blanks trimmed, empty entries skipped). */
static void qt_add_host_list(struct qt_req *r, const char *list)
{
    char *copy = xstrdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, "|", &save); tok && r->nhosts < QT_MAX_FIXED_HOSTS;
         tok = strtok_r(NULL, "|", &save)) {
        tok = str_trim(tok);
        if (*tok)
            qt_add_host(r, tok);
    }
    free(copy);
}

void queue_target_resolve(struct dns *dns, const struct queue_target_request *req,
                          void (*cb)(void *ctx, const struct queue_target *t), void *ctx)
{
    struct qt_req *r = xcalloc(1, sizeof(*r));
    r->dns = dns;
    r->cb = cb;
    r->ctx = ctx;
    r->port = 25;
    str_copy(r->domain, sizeof(r->domain), req->domain ? req->domain : "");
    str_lower(r->domain);
    size_t len = strlen(r->domain);
    if (len > 0 && r->domain[len - 1] == '.')
        r->domain[len - 1] = '\0';

    struct ipaddr lit;
    if (req->route) {
        r->mode = QT_FIXED;
        if (req->route->port > 0 && req->route->port <= 65535)
            r->port = (int)req->route->port;
        qt_add_host_list(r, req->route->host);
        qt_resolve_hosts(r);
    } else if (req->relay_host && *req->relay_host) {
        r->mode = QT_FIXED;
        if (req->relay_port > 0 && req->relay_port <= 65535)
            r->port = req->relay_port;
        qt_add_host_list(r, req->relay_host);
        qt_resolve_hosts(r);
    } else if (dns_literal_parse(r->domain, &lit) == 0) {
        r->mode = QT_IMPLICIT; /* user@[1.2.3.4] */
        qt_add_host(r, r->domain);
        qt_resolve_hosts(r);
    } else {
        r->mode = QT_MX;
        dns_lookup_mx(dns, r->domain, qt_mx_cb, r);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* local-IP loop check */

static const uint8_t qt_v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool qt_ip_is_loopback(const struct ipaddr *ip)
{
    static const uint8_t zero[16], one[16] = {[15] = 1};
    if (memcmp(ip->b, qt_v4_prefix, 12) == 0) /* IPv4, also written ::ffff:a.b.c.d */
        return ip->b[12] == 127 || memcmp(ip->b + 12, zero, 4) == 0;
    return memcmp(ip->b, one, 16) == 0 || memcmp(ip->b, zero, 16) == 0;
}

static bool qt_ip_is_unspecified(const struct ipaddr *ip)
{
    static const uint8_t zero[16];
    return memcmp(ip->b, zero, 16) == 0 ||
           (memcmp(ip->b, qt_v4_prefix, 12) == 0 && memcmp(ip->b + 12, zero, 4) == 0);
}

enum qt_bind { QT_BIND_ANY, QT_BIND_LOCALHOST, QT_BIND_IP, QT_BIND_OTHER };

static enum qt_bind qt_listener_bind(const struct conf_listener *l, struct ipaddr *ip_r)
{
    const char *h = l->host ? l->host : "";
    if (!*h || strcmp(h, "*") == 0)
        return QT_BIND_ANY;
    if (str_ieq(h, "localhost"))
        return QT_BIND_LOCALHOST;
    if (dns_literal_parse(h, ip_r) < 0)
        return QT_BIND_OTHER;
    return qt_ip_is_unspecified(ip_r) ? QT_BIND_ANY : QT_BIND_IP;
}

bool queue_target_is_self_with(const struct conf *conf, const struct ipaddr *ip, int port,
                               const struct ipaddr *local, size_t nlocal)
{
    bool loopback = qt_ip_is_loopback(ip);
    for (size_t i = 0; i < conf->listeners_count; i++) {
        const struct conf_listener *l = &conf->listeners[i];
        if (l->port != port)
            continue;
        struct ipaddr lip;
        enum qt_bind bind = qt_listener_bind(l, &lip);
        if (loopback) {
            if (bind == QT_BIND_ANY || bind == QT_BIND_LOCALHOST ||
                (bind == QT_BIND_IP && qt_ip_is_loopback(&lip)))
                return true;
        } else if (bind == QT_BIND_IP) {
            if (memcmp(lip.b, ip->b, 16) == 0)
                return true;
        } else if (bind == QT_BIND_ANY) {
            for (size_t j = 0; j < nlocal; j++)
                if (memcmp(local[j].b, ip->b, 16) == 0)
                    return true;
        }
    }
    return false;
}

bool queue_target_is_self(const struct conf *conf, const struct ipaddr *ip, int port)
{
    bool need_local = false;
    if (!qt_ip_is_loopback(ip)) {
        for (size_t i = 0; i < conf->listeners_count && !need_local; i++) {
            struct ipaddr lip;
            need_local = conf->listeners[i].port == port &&
                         qt_listener_bind(&conf->listeners[i], &lip) == QT_BIND_ANY;
        }
    }
    struct ipaddr *local = NULL;
    size_t nlocal = 0;
    struct ifaddrs *ifs = NULL;
    if (need_local && getifaddrs(&ifs) == 0) {
        for (struct ifaddrs *p = ifs; p; p = p->ifa_next) {
            struct ipaddr a;
            if (!p->ifa_addr || ipaddr_from_sockaddr(p->ifa_addr, &a, NULL) < 0)
                continue;
            local = xrealloc(local, (nlocal + 1) * sizeof(*local));
            local[nlocal++] = a;
        }
        freeifaddrs(ifs);
    }
    bool self = queue_target_is_self_with(conf, ip, port, local, nlocal);
    free(local);
    return self;
}
