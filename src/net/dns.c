/* dns: c-ares channel driven by libevent — one read/write event per c-ares socket (sock-state
 * callback) and one timer for c-ares' own timeouts (ares_timeout). Lookups time out after 2 s
 * per try, 2 tries per server. */
#include "net/dns.h"

#include <ares.h>
#include <event2/event.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/log.h"
#include "lib/xalloc.h"

struct dns_sock {
    ares_socket_t fd;
    struct event *ev;
    struct dns_sock *next;
};

struct dns {
    struct event_base *base;
    ares_channel channel;
    struct dns_sock *socks;
    struct event *timer;
};

static void dns_timer_arm(struct dns *d)
{
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

void dns_free(struct dns **dp)
{
    struct dns *d = *dp;
    if (!d)
        return;
    ares_destroy(d->channel); /* pending callbacks run with ARES_EDESTRUCTION */
    while (d->socks) {
        struct dns_sock *s = d->socks;
        d->socks = s->next;
        if (s->ev)
            event_free(s->ev);
        free(s);
    }
    event_free(d->timer);
    free(d);
    *dp = NULL;
}

struct dns_ptr_req {
    dns_name_cb *cb;
    void *ctx;
};

static void dns_ptr_done(void *arg, int status, int timeouts, struct hostent *he)
{
    (void)timeouts;
    struct dns_ptr_req *r = arg;
    if (status == ARES_SUCCESS && he && he->h_name && *he->h_name)
        r->cb(r->ctx, DNS_OK, he->h_name);
    else if (status == ARES_ENOTFOUND || status == ARES_ENODATA || status == ARES_SUCCESS)
        r->cb(r->ctx, DNS_NOTFOUND, NULL);
    else
        r->cb(r->ctx, DNS_TEMPFAIL, NULL);
    free(r);
}

void dns_lookup_ptr(struct dns *d, const struct ipaddr *ip, dns_name_cb *cb, void *ctx)
{
    struct dns_ptr_req *r = xcalloc(1, sizeof(*r));
    r->cb = cb;
    r->ctx = ctx;
    if (ip->family == AF_INET)
        ares_gethostbyaddr(d->channel, ip->b + 12, 4, AF_INET, dns_ptr_done, r);
    else
        ares_gethostbyaddr(d->channel, ip->b, 16, AF_INET6, dns_ptr_done, r);
    dns_timer_arm(d);
}
