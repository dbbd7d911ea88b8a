/* test_dns: the DNS module (net/dns.c). Pure parts: IP-literal parsing, MX sorting (ties shuffled),
 * null-MX detection, the answer-section parser on hand-built messages (compression, truncation at
 * every byte, pointer loops, skipped classes/types). Lookups over the in-memory fake: MX, null
 * MX, NXDOMAIN/NODATA/TEMPFAIL, A+AAAA order and duplicates, CNAME chains, literals without a
 * query, callbacks never from inside the call, the cache (TTL, 1 h cap, TTL 0, size bound,
 * eviction order) and dns_free() with lookups pending. The real c-ares path against a UDP
 * responder thread in this process: MX, A/AAAA, a CNAME-only answer, NXDOMAIN, SERVFAIL, NODATA,
 * null MX, PTR, and the cache in front of the network. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/ipaddr.h"
#include "net/dns.h"

/* ---------------------------------------------------------------------------------------- */
/* DNS message builder */

struct pkt {
    uint8_t b[2048];
    size_t n;
};

static void put8(struct pkt *p, unsigned v)
{
    assert_true(p->n < sizeof(p->b));
    p->b[p->n++] = (uint8_t)v;
}

static void put16(struct pkt *p, unsigned v)
{
    put8(p, v >> 8);
    put8(p, v & 0xff);
}

static void put32(struct pkt *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p, v & 0xffff);
}

/* "a.b.c" as labels; "" or "." = the root. */
static void put_name(struct pkt *p, const char *name)
{
    const char *s = name;
    while (*s && strcmp(s, ".") != 0) {
        const char *dot = strchr(s, '.');
        size_t len = dot ? (size_t)(dot - s) : strlen(s);
        put8(p, (unsigned)len);
        for (size_t i = 0; i < len; i++)
            put8(p, (unsigned char)s[i]);
        s += len + (dot ? 1 : 0);
    }
    put8(p, 0);
}

static void put_header(struct pkt *p, unsigned id, unsigned flags, unsigned qd, unsigned an)
{
    p->n = 0;
    put16(p, id);
    put16(p, flags);
    put16(p, qd);
    put16(p, an);
    put16(p, 0);
    put16(p, 0);
}

/* One record: owner NULL = a pointer to the question name at offset 12. data: "192.0.2.1",
 * "2001:db8::1", "10 mx.test" (MX) or a name (CNAME/PTR); rdata_raw overrides it. */
static void put_rr(struct pkt *p, const char *owner, unsigned type, unsigned cls, uint32_t ttl,
                   const char *data)
{
    if (owner)
        put_name(p, owner);
    else
        put16(p, 0xc00c);
    put16(p, type);
    put16(p, cls);
    put32(p, ttl);
    size_t lenpos = p->n;
    put16(p, 0);
    size_t start = p->n;
    uint8_t a[16];
    switch (type) {
    case DNS_T_A:
        assert_int_equal(inet_pton(AF_INET, data, a), 1);
        for (int i = 0; i < 4; i++)
            put8(p, a[i]);
        break;
    case DNS_T_AAAA:
        assert_int_equal(inet_pton(AF_INET6, data, a), 1);
        for (int i = 0; i < 16; i++)
            put8(p, a[i]);
        break;
    case DNS_T_MX: {
        char *end;
        unsigned long pref = strtoul(data, &end, 10);
        put16(p, (unsigned)pref);
        put_name(p, end + 1);
        break;
    }
    case DNS_T_CNAME:
    case DNS_T_PTR:
        put_name(p, data);
        break;
    default: /* opaque bytes (e.g. TXT) */
        put8(p, (unsigned)strlen(data));
        for (const char *s = data; *s; s++)
            put8(p, (unsigned char)*s);
        break;
    }
    size_t len = p->n - start;
    p->b[lenpos] = (uint8_t)(len >> 8);
    p->b[lenpos + 1] = (uint8_t)(len & 0xff);
}

static void put_question(struct pkt *p, const char *name, unsigned type)
{
    put_name(p, name);
    put16(p, type);
    put16(p, 1);
}

static const char *fmt_ip(const struct ipaddr *ip, char buf[IPADDR_STRLEN])
{
    ipaddr_format(ip, buf);
    return buf;
}

/* ---------------------------------------------------------------------------------------- */
/* pure parts */

static void test_literal_parse(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *out; /* NULL = not a literal */
        int family;
    } cases[] = {
        {"1.2.3.4", "1.2.3.4", AF_INET},
        {"[1.2.3.4]", "1.2.3.4", AF_INET},
        {"::1", "::1", AF_INET6},
        {"[::1]", "::1", AF_INET6},
        {"[IPv6:2001:db8::5]", "2001:db8::5", AF_INET6},
        {"[ipv6:::1]", "::1", AF_INET6},
        {"[IPv6:1.2.3.4]", NULL, 0},
        {"mx.example.test", NULL, 0},
        {"", NULL, 0},
        {"[]", NULL, 0},
        {"[1.2.3.4", NULL, 0},
        {"1.2.3.4]", NULL, 0},
        {"1.2.3", NULL, 0},
        {"1.2.3.4.5", NULL, 0},
        {"[1.2.3.4]:25", NULL, 0},
        {"256.1.1.1", NULL, 0},
        {"[IPv6:]", NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ipaddr ip;
        char buf[IPADDR_STRLEN];
        int rc = dns_literal_parse(cases[i].in, &ip);
        if (!cases[i].out) {
            if (rc != -1)
                fail_msg("\"%s\" parsed as a literal", cases[i].in);
            continue;
        }
        if (rc != 0)
            fail_msg("\"%s\" not parsed", cases[i].in);
        assert_string_equal(fmt_ip(&ip, buf), cases[i].out);
        assert_int_equal(ip.family, cases[i].family);
    }
}

static void test_mx_sort(void **state)
{
    (void)state;
    static const struct {
        const char *host;
        unsigned pref;
    } in[] = {{"c20", 20}, {"a10", 10}, {"b10", 10}, {"d30", 30}, {"e10", 10}, {"f0", 0}};
    enum { N = sizeof(in) / sizeof(in[0]) };
    int first_of_ties[3] = {0}; /* how often a10 / b10 / e10 came first among the 10s */
    for (int run = 0; run < 300; run++) {
        struct dns_mx mx[N];
        for (size_t i = 0; i < N; i++) {
            snprintf(mx[i].host, sizeof(mx[i].host), "%s", in[i].host);
            mx[i].preference = in[i].pref;
        }
        dns_mx_sort(mx, N);
        assert_string_equal(mx[0].host, "f0");
        for (size_t i = 1; i < N; i++)
            assert_true(mx[i - 1].preference <= mx[i].preference);
        assert_string_equal(mx[4].host, "c20");
        assert_string_equal(mx[5].host, "d30");
        /* the three 10s are positions 1..3, each exactly once */
        bool seen[3] = {false, false, false};
        for (size_t i = 1; i <= 3; i++) {
            assert_int_equal(mx[i].preference, 10);
            int k = mx[i].host[0] == 'a' ? 0 : mx[i].host[0] == 'b' ? 1 : 2;
            assert_false(seen[k]);
            seen[k] = true;
        }
        first_of_ties[mx[1].host[0] == 'a' ? 0 : mx[1].host[0] == 'b' ? 1 : 2]++;
    }
    for (int k = 0; k < 3; k++) /* each of the tied hosts leads sometimes (p of failing ~1e-50) */
        assert_true(first_of_ties[k] > 30);
    dns_mx_sort(NULL, 0); /* nothing to do */
}

static void test_mx_is_null(void **state)
{
    (void)state;
    struct dns_mx one_root[1] = {{"", 0}};
    struct dns_mx one_dot[1] = {{".", 0}};
    struct dns_mx root_pref10[1] = {{"", 10}};
    struct dns_mx two_roots[2] = {{"", 0}, {".", 5}};
    struct dns_mx real[1] = {{"mx.example.test", 0}};
    struct dns_mx mixed[2] = {{"", 0}, {"mx.example.test", 10}};
    assert_true(dns_mx_is_null(one_root, 1));
    assert_true(dns_mx_is_null(one_dot, 1));
    assert_true(dns_mx_is_null(root_pref10, 1));
    assert_true(dns_mx_is_null(two_roots, 2));
    assert_false(dns_mx_is_null(real, 1));
    assert_false(dns_mx_is_null(mixed, 2));
    assert_false(dns_mx_is_null(NULL, 0));
}

/* A response for "Example.TEST" MX with an MX, a CNAME, an A and an AAAA (compression used). */
static void build_sample(struct pkt *p)
{
    put_header(p, 0x1234, 0x8180, 1, 6);
    put_question(p, "Example.TEST", DNS_T_MX);
    put_rr(p, NULL, DNS_T_MX, 1, 300, "10 MX1.example.test.");
    put_rr(p, "www.example.test", DNS_T_CNAME, 1, 60, "example.test");
    put_rr(p, "mx1.example.test", DNS_T_A, 1, 0x80000000u, "192.0.2.1");
    put_rr(p, "mx1.example.test", DNS_T_AAAA, 1, 7200, "2001:db8::1");
    put_rr(p, NULL, 16 /* TXT: skipped */, 1, 60, "v=spf1 -all");
    put_rr(p, NULL, DNS_T_A, 3 /* CHAOS: skipped */, 60, "192.0.2.99");
}

static void test_answer_parse(void **state)
{
    (void)state;
    struct pkt p;
    build_sample(&p);
    struct dns_rr *rr = NULL;
    char buf[IPADDR_STRLEN];
    assert_int_equal(dns_answer_parse(p.b, p.n, &rr), 4);
    assert_int_equal(rr[0].type, DNS_T_MX);
    assert_string_equal(rr[0].owner, "Example.TEST");
    assert_int_equal(rr[0].pref, 10);
    assert_string_equal(rr[0].data, "MX1.example.test");
    assert_int_equal(rr[0].ttl, 300);
    assert_int_equal(rr[1].type, DNS_T_CNAME);
    assert_string_equal(rr[1].owner, "www.example.test");
    assert_string_equal(rr[1].data, "example.test");
    assert_int_equal(rr[2].type, DNS_T_A);
    assert_string_equal(fmt_ip(&rr[2].ip, buf), "192.0.2.1");
    assert_int_equal(rr[2].ip.family, AF_INET);
    assert_int_equal(rr[2].ttl, 0); /* RFC 2181 §8: TTL with the top bit set is 0 */
    assert_int_equal(rr[3].type, DNS_T_AAAA);
    assert_string_equal(fmt_ip(&rr[3].ip, buf), "2001:db8::1");
    assert_int_equal(rr[3].ip.family, AF_INET6);
    assert_int_equal(rr[3].ttl, 7200);
    free(rr);

    /* every truncation is malformed (the header promises 6 records), never a crash */
    for (size_t len = 0; len < p.n; len++) {
        rr = NULL;
        int n = dns_answer_parse(p.b, len, &rr);
        if (n != -1)
            fail_msg("truncated at %zu parsed as %d records", len, n);
        assert_null(rr);
    }

    /* no answers */
    put_header(&p, 1, 0x8180, 1, 0);
    put_question(&p, "x.test", DNS_T_A);
    assert_int_equal(dns_answer_parse(p.b, p.n, &rr), 0);
    assert_null(rr);

    /* the root as MX exchange (null MX) */
    put_header(&p, 1, 0x8180, 1, 1);
    put_question(&p, "null.test", DNS_T_MX);
    put_rr(&p, NULL, DNS_T_MX, 1, 60, "0 .");
    assert_int_equal(dns_answer_parse(p.b, p.n, &rr), 1);
    assert_string_equal(rr[0].data, "");
    assert_int_equal(rr[0].pref, 0);
    free(rr);

    /* a compression pointer to itself */
    put_header(&p, 1, 0x8180, 0, 1);
    put16(&p, 0xc00c);
    put16(&p, DNS_T_A);
    put16(&p, 1);
    put32(&p, 60);
    put16(&p, 4);
    put32(&p, 0x01020304);
    assert_int_equal(dns_answer_parse(p.b, p.n, &rr), -1);

    /* an A record of the wrong length */
    put_header(&p, 1, 0x8180, 0, 1);
    put_name(&p, "a.test");
    put16(&p, DNS_T_A);
    put16(&p, 1);
    put32(&p, 60);
    put16(&p, 3);
    put8(&p, 1);
    put8(&p, 2);
    put8(&p, 3);
    assert_int_equal(dns_answer_parse(p.b, p.n, &rr), -1);

    /* an MX whose name runs past its rdata */
    put_header(&p, 1, 0x8180, 0, 1);
    put_name(&p, "a.test");
    put16(&p, DNS_T_MX);
    put16(&p, 1);
    put32(&p, 60);
    put16(&p, 4); /* pref + 2 bytes, but the name takes 8 */
    put16(&p, 10);
    put_name(&p, "mx.test");
    assert_int_equal(dns_answer_parse(p.b, p.n, &rr), -1);

    /* a pointer past the end */
    put_header(&p, 1, 0x8180, 0, 1);
    put16(&p, 0xc0ff);
    assert_int_equal(dns_answer_parse(p.b, p.n, &rr), -1);

    /* at most 64 records are kept */
    put_header(&p, 1, 0x8180, 1, 70);
    put_question(&p, "many.test", DNS_T_A);
    for (int i = 0; i < 70; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "192.0.2.%d", i);
        put_rr(&p, NULL, DNS_T_A, 1, 60, ip);
    }
    assert_int_equal(dns_answer_parse(p.b, p.n, &rr), 64);
    assert_string_equal(fmt_ip(&rr[63].ip, buf), "192.0.2.63");
    free(rr);
}

/* ---------------------------------------------------------------------------------------- */
/* lookups: result capture */

struct res {
    int calls;
    enum dns_status st;
    size_t n;
    bool null_mx;
    struct dns_mx mx[20];
    char addr[20][IPADDR_STRLEN];
    char name[256];
};

static void mx_cb(void *ctx, enum dns_status st, const struct dns_mx *mx, size_t n, bool null_mx)
{
    struct res *r = ctx;
    r->calls++;
    r->st = st;
    r->n = n;
    r->null_mx = null_mx;
    assert_true(n == 0 || mx != NULL);
    for (size_t i = 0; i < n && i < 20; i++)
        r->mx[i] = mx[i];
}

static void addr_cb(void *ctx, enum dns_status st, const struct ipaddr *addrs, size_t n)
{
    struct res *r = ctx;
    r->calls++;
    r->st = st;
    r->n = n;
    assert_true(n == 0 || addrs != NULL);
    assert_true(st == DNS_OK ? n > 0 : n == 0);
    for (size_t i = 0; i < n && i < 20; i++)
        ipaddr_format(&addrs[i], r->addr[i]);
}

static void name_cb(void *ctx, enum dns_status st, const char *name)
{
    struct res *r = ctx;
    r->calls++;
    r->st = st;
    snprintf(r->name, sizeof(r->name), "%s", name ? name : "(null)");
}

static void run_until(struct event_base *base, const int *calls, int want)
{
    for (int i = 0; *calls < want && i < 100000; i++)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(*calls, want);
}

static void lookup_mx(struct event_base *base, struct dns *d, const char *domain, struct res *r)
{
    memset(r, 0, sizeof(*r));
    dns_lookup_mx(d, domain, mx_cb, r);
    assert_int_equal(r->calls, 0); /* never from inside the call */
    run_until(base, &r->calls, 1);
}

static void lookup_addrs(struct event_base *base, struct dns *d, const char *host, struct res *r)
{
    memset(r, 0, sizeof(*r));
    dns_lookup_addrs(d, host, addr_cb, r);
    assert_int_equal(r->calls, 0);
    run_until(base, &r->calls, 1);
}

static void lookup_ptr(struct event_base *base, struct dns *d, const char *ip, struct res *r)
{
    struct ipaddr a;
    assert_int_equal(ipaddr_parse(ip, &a), 0);
    memset(r, 0, sizeof(*r));
    dns_lookup_ptr(d, &a, name_cb, r);
    assert_int_equal(r->calls, 0);
    run_until(base, &r->calls, 1);
}

/* ---------------------------------------------------------------------------------------- */
/* the fake */

struct fx {
    struct event_base *base;
    struct dns *d;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->base = event_base_new();
    f->d = dns_new_fake(f->base);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    dns_free(&f->d);
    assert_null(f->d);
    event_base_free(f->base);
    free(f);
    return 0;
}

static void add(struct dns *d, const char *name, const char *type, const char *value, unsigned ttl)
{
    if (dns_fake_add(d, name, type, value, ttl) < 0)
        fail_msg("dns_fake_add(%s %s %s) failed", name, type, value);
}

static void test_fake_add_errors(void **state)
{
    struct fx *f = *state;
    assert_int_equal(dns_fake_add(f->d, "a.test", "TXT", "x", 60), -1);
    assert_int_equal(dns_fake_add(f->d, "a.test", "A", "::1", 60), -1);
    assert_int_equal(dns_fake_add(f->d, "a.test", "AAAA", "1.2.3.4", 60), -1);
    assert_int_equal(dns_fake_add(f->d, "a.test", "MX", "mx.test", 60), -1);
    assert_int_equal(dns_fake_add(f->d, "a.test", "MX", "70000 mx.test", 60), -1);
    assert_int_equal(dns_fake_add(f->d, "", "A", "1.2.3.4", 60), -1);
    assert_int_equal(dns_fake_add(f->d, "a.test", "cname", "b.test", 60), 0);
}

static void test_fake_mx(void **state)
{
    struct fx *f = *state;
    struct res r;
    add(f->d, "example.test", "MX", "20 MX2.Example.Test.", 60);
    add(f->d, "example.test", "MX", "10 mx1.example.test", 60);
    add(f->d, "example.test", "MX", "30 mx3.example.test", 60);
    add(f->d, "null.test", "MX", "0 .", 60);
    add(f->d, "nomx.test", "A", "192.0.2.5", 60);
    add(f->d, "alias.test", "CNAME", "example.test", 60);

    lookup_mx(f->base, f->d, "Example.TEST.", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_false(r.null_mx);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.mx[0].host, "mx1.example.test");
    assert_int_equal(r.mx[0].preference, 10);
    assert_string_equal(r.mx[1].host, "mx2.example.test");
    assert_string_equal(r.mx[2].host, "mx3.example.test");

    lookup_mx(f->base, f->d, "null.test", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_true(r.null_mx);
    assert_int_equal(r.n, 0);

    lookup_mx(f->base, f->d, "nomx.test", &r); /* NODATA */
    assert_int_equal(r.st, DNS_OK);
    assert_false(r.null_mx);
    assert_int_equal(r.n, 0);

    lookup_mx(f->base, f->d, "missing.test", &r); /* NXDOMAIN */
    assert_int_equal(r.st, DNS_NOTFOUND);
    assert_int_equal(r.n, 0);

    lookup_mx(f->base, f->d, "alias.test", &r); /* through the CNAME */
    assert_int_equal(r.st, DNS_OK);
    assert_int_equal(r.n, 3);

    lookup_mx(f->base, f->d, "", &r);
    assert_int_equal(r.st, DNS_NOTFOUND);
    lookup_mx(f->base, f->d, "bad name.test", &r);
    assert_int_equal(r.st, DNS_NOTFOUND);

    dns_fake_fail(f->d, "broken.test", "MX");
    add(f->d, "broken.test", "A", "192.0.2.6", 60);
    lookup_mx(f->base, f->d, "broken.test", &r);
    assert_int_equal(r.st, DNS_TEMPFAIL);
    lookup_addrs(f->base, f->d, "broken.test", &r); /* only MX fails */
    assert_int_equal(r.st, DNS_OK);
}

static void test_fake_mx_mixed_root(void **state)
{
    struct fx *f = *state;
    struct res r;
    add(f->d, "mixed.test", "MX", "0 .", 60);
    add(f->d, "mixed.test", "MX", "10 mx.mixed.test", 60);
    lookup_mx(f->base, f->d, "mixed.test", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_false(r.null_mx);
    assert_int_equal(r.n, 1); /* the root exchange is dropped */
    assert_string_equal(r.mx[0].host, "mx.mixed.test");
}

static void test_fake_addrs(void **state)
{
    struct fx *f = *state;
    struct res r;
    add(f->d, "mx.test", "AAAA", "2001:db8::1", 60);
    add(f->d, "mx.test", "A", "192.0.2.1", 60);
    add(f->d, "mx.test", "A", "192.0.2.2", 60);
    add(f->d, "mx.test", "A", "192.0.2.1", 60); /* duplicate */
    add(f->d, "v6only.test", "AAAA", "2001:db8::6", 60);
    add(f->d, "www.test", "CNAME", "web.test", 60);
    add(f->d, "web.test", "CNAME", "mx.test", 60);
    add(f->d, "dangling.test", "CNAME", "nowhere.test", 60);
    add(f->d, "loop1.test", "CNAME", "loop2.test", 60);
    add(f->d, "loop2.test", "CNAME", "loop1.test", 60);
    add(f->d, "mxonly.test", "MX", "10 mx.test", 60);
    add(f->d, "half.test", "A", "192.0.2.7", 60);
    dns_fake_fail(f->d, "half.test", "AAAA");
    dns_fake_fail(f->d, "down.test", NULL);

    lookup_addrs(f->base, f->d, "MX.test", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.addr[0], "192.0.2.1");
    assert_string_equal(r.addr[1], "192.0.2.2");
    assert_string_equal(r.addr[2], "2001:db8::1");

    lookup_addrs(f->base, f->d, "v6only.test", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.addr[0], "2001:db8::6");

    lookup_addrs(f->base, f->d, "www.test", &r); /* two CNAMEs */
    assert_int_equal(r.st, DNS_OK);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.addr[0], "192.0.2.1");

    lookup_addrs(f->base, f->d, "dangling.test", &r);
    assert_int_equal(r.st, DNS_NOTFOUND);
    lookup_addrs(f->base, f->d, "loop1.test", &r);
    assert_int_equal(r.st, DNS_NOTFOUND);
    lookup_addrs(f->base, f->d, "mxonly.test", &r); /* NODATA for both */
    assert_int_equal(r.st, DNS_NOTFOUND);
    lookup_addrs(f->base, f->d, "missing.test", &r);
    assert_int_equal(r.st, DNS_NOTFOUND);
    lookup_addrs(f->base, f->d, "half.test", &r); /* A answers, AAAA fails: the A is enough */
    assert_int_equal(r.st, DNS_OK);
    assert_int_equal(r.n, 1);
    lookup_addrs(f->base, f->d, "down.test", &r);
    assert_int_equal(r.st, DNS_TEMPFAIL);
    lookup_addrs(f->base, f->d, "", &r);
    assert_int_equal(r.st, DNS_NOTFOUND);

    /* literals: no query at all */
    unsigned before = dns_fake_queries(f->d);
    static const struct {
        const char *in, *out;
    } lits[] = {{"192.0.2.9", "192.0.2.9"},
                {"[192.0.2.9]", "192.0.2.9"},
                {"::1", "::1"},
                {"[IPv6:2001:db8::9]", "2001:db8::9"}};
    for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
        lookup_addrs(f->base, f->d, lits[i].in, &r);
        assert_int_equal(r.st, DNS_OK);
        assert_int_equal(r.n, 1);
        assert_string_equal(r.addr[0], lits[i].out);
    }
    assert_int_equal(dns_fake_queries(f->d), before);
}

static void test_fake_ptr(void **state)
{
    struct fx *f = *state;
    struct res r;
    add(f->d, "9.2.0.192.in-addr.arpa", "PTR", "host.example.test.", 60);
    add(f->d, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "PTR",
        "v6host.example.test", 60);
    lookup_ptr(f->base, f->d, "192.0.2.9", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_string_equal(r.name, "host.example.test");
    lookup_ptr(f->base, f->d, "2001:db8::1", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_string_equal(r.name, "v6host.example.test");
    lookup_ptr(f->base, f->d, "192.0.2.10", &r);
    assert_int_equal(r.st, DNS_NOTFOUND);
    assert_string_equal(r.name, "(null)");
    /* not cached: the record's removal is seen at once */
    unsigned q = dns_fake_queries(f->d);
    lookup_ptr(f->base, f->d, "192.0.2.9", &r);
    assert_int_equal(dns_fake_queries(f->d), q + 1);
    dns_fake_clear(f->d);
    lookup_ptr(f->base, f->d, "192.0.2.9", &r);
    assert_int_equal(r.st, DNS_NOTFOUND);
    dns_fake_fail(f->d, "11.2.0.192.in-addr.arpa", "PTR");
    lookup_ptr(f->base, f->d, "192.0.2.11", &r);
    assert_int_equal(r.st, DNS_TEMPFAIL);
}

static void test_fake_cache(void **state)
{
    struct fx *f = *state;
    struct res r;
    add(f->d, "ttl60.test", "MX", "10 mx.test", 60);
    add(f->d, "ttl0.test", "MX", "10 mx.test", 0);
    add(f->d, "ttl2h.test", "MX", "10 mx.test", 7200);
    add(f->d, "nx-cname.test", "CNAME", "ttl60.test", 30);

    unsigned q = dns_fake_queries(f->d);
    lookup_mx(f->base, f->d, "ttl60.test", &r);
    assert_int_equal(dns_fake_queries(f->d), q + 1);
    lookup_mx(f->base, f->d, "TTL60.test.", &r); /* hit, whatever the spelling */
    assert_int_equal(r.n, 1);
    assert_int_equal(dns_fake_queries(f->d), q + 1);
    dns_cache_advance(f->d, 59);
    lookup_mx(f->base, f->d, "ttl60.test", &r);
    assert_int_equal(dns_fake_queries(f->d), q + 1);
    dns_cache_advance(f->d, 1); /* expired */
    lookup_mx(f->base, f->d, "ttl60.test", &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(dns_fake_queries(f->d), q + 2);

    q = dns_fake_queries(f->d);
    lookup_mx(f->base, f->d, "ttl0.test", &r);
    lookup_mx(f->base, f->d, "ttl0.test", &r);
    assert_int_equal(dns_fake_queries(f->d), q + 2);

    /* a TTL over an hour is cut to an hour */
    q = dns_fake_queries(f->d);
    lookup_mx(f->base, f->d, "ttl2h.test", &r);
    dns_cache_advance(f->d, 3599);
    lookup_mx(f->base, f->d, "ttl2h.test", &r);
    assert_int_equal(dns_fake_queries(f->d), q + 1);
    dns_cache_advance(f->d, 1);
    lookup_mx(f->base, f->d, "ttl2h.test", &r);
    assert_int_equal(dns_fake_queries(f->d), q + 2);

    /* negative answers are not cached */
    q = dns_fake_queries(f->d);
    lookup_mx(f->base, f->d, "missing.test", &r);
    lookup_mx(f->base, f->d, "missing.test", &r);
    assert_int_equal(r.st, DNS_NOTFOUND);
    assert_int_equal(dns_fake_queries(f->d), q + 2);

    /* a cached answer survives the zone changing (that is what a cache is) */
    q = dns_fake_queries(f->d);
    lookup_mx(f->base, f->d, "nx-cname.test", &r);
    assert_int_equal(r.n, 1);
    dns_fake_clear(f->d);
    lookup_mx(f->base, f->d, "nx-cname.test", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(dns_fake_queries(f->d), q + 1);

    /* off */
    dns_set_cache_size(f->d, 0);
    q = dns_fake_queries(f->d);
    lookup_mx(f->base, f->d, "nx-cname.test", &r);
    assert_int_equal(r.st, DNS_NOTFOUND);
    assert_int_equal(dns_fake_queries(f->d), q + 1);
}

static void test_fake_cache_bound(void **state)
{
    struct fx *f = *state;
    struct res r;
    dns_set_cache_size(f->d, 2);
    add(f->d, "a.test", "A", "192.0.2.1", 100);
    add(f->d, "b.test", "A", "192.0.2.2", 200);
    add(f->d, "c.test", "A", "192.0.2.3", 300);
    lookup_addrs(f->base, f->d, "a.test", &r); /* 2 queries each (A + AAAA); AAAA not cached */
    lookup_addrs(f->base, f->d, "b.test", &r);
    lookup_addrs(f->base, f->d, "c.test", &r); /* evicts a (closest to expiry) */
    unsigned q = dns_fake_queries(f->d);
    lookup_addrs(f->base, f->d, "b.test", &r);
    lookup_addrs(f->base, f->d, "c.test", &r);
    assert_int_equal(dns_fake_queries(f->d), q + 2); /* only the AAAA queries */
    lookup_addrs(f->base, f->d, "a.test", &r);
    assert_string_equal(r.addr[0], "192.0.2.1");
    assert_int_equal(dns_fake_queries(f->d), q + 4);
}

/* dns_free() with lookups waiting: each gets DNS_TEMPFAIL from inside dns_free(). */
static void test_fake_free_pending(void **state)
{
    struct fx *f = *state;
    struct res r1, r2, r3, r4;
    memset(&r1, 0, sizeof(r1));
    memset(&r2, 0, sizeof(r2));
    memset(&r3, 0, sizeof(r3));
    memset(&r4, 0, sizeof(r4));
    add(f->d, "example.test", "MX", "10 mx.example.test", 60);
    dns_lookup_mx(f->d, "example.test", mx_cb, &r1);
    dns_lookup_addrs(f->d, "example.test", addr_cb, &r2);
    dns_lookup_addrs(f->d, "[192.0.2.1]", addr_cb, &r3);
    dns_lookup_mx(f->d, "", mx_cb, &r4);
    dns_free(&f->d);
    assert_null(f->d);
    struct res *all[] = {&r1, &r2, &r3, &r4};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(all[i]->calls, 1);
        assert_int_equal(all[i]->st, DNS_TEMPFAIL);
    }
    event_base_loop(f->base, EVLOOP_NONBLOCK); /* nothing left behind */
}

/* ---------------------------------------------------------------------------------------- */
/* the real c-ares path against a UDP responder thread */

struct canned_rr {
    const char *owner; /* NULL = the question name */
    unsigned type;
    const char *data;
};

struct canned {
    const char *name;
    unsigned qtype;
    unsigned rcode;
    struct canned_rr rr[4];
};

static const struct canned canned[] = {
    {"real.test",
     DNS_T_MX,
     0,
     {{NULL, DNS_T_MX, "20 mx2.real.test"}, {NULL, DNS_T_MX, "10 MX1.Real.Test"}}},
    {"mx1.real.test", DNS_T_A, 0, {{NULL, DNS_T_A, "192.0.2.1"}}},
    {"mx1.real.test", DNS_T_AAAA, 0, {{NULL, DNS_T_AAAA, "2001:db8::1"}}},
    /* the CNAME alone: the client must ask for the target */
    {"alias.real.test", DNS_T_A, 0, {{NULL, DNS_T_CNAME, "mx1.real.test"}}},
    {"alias.real.test", DNS_T_AAAA, 0, {{NULL, DNS_T_CNAME, "mx1.real.test"}}},
    /* the CNAME and the target's record together */
    {"www.real.test",
     DNS_T_A,
     0,
     {{NULL, DNS_T_CNAME, "web.real.test"}, {"web.real.test", DNS_T_A, "192.0.2.8"}}},
    {"www.real.test", DNS_T_AAAA, 0, {{NULL, DNS_T_CNAME, "web.real.test"}}},
    {"web.real.test", DNS_T_AAAA, 0, {{NULL, 0, NULL}}},
    {"broken.real.test", DNS_T_MX, 2 /* SERVFAIL */, {{NULL, 0, NULL}}},
    {"nodata.real.test", DNS_T_MX, 0, {{NULL, 0, NULL}}},
    {"null.real.test", DNS_T_MX, 0, {{NULL, DNS_T_MX, "0 ."}}},
    /* an exchange that is no host name: dropped, and not a null MX either */
    {"badname.real.test", DNS_T_MX, 0, {{NULL, DNS_T_MX, "0 bad name.real.test"}}},
    {"9.2.0.192.in-addr.arpa", DNS_T_PTR, 0, {{NULL, DNS_T_PTR, "Host.Real.Test"}}},
};

struct responder {
    int fd;
    int port;
    atomic_int stop;
    atomic_int queries;
    pthread_t thread;
};

static bool read_qname(const uint8_t *b, size_t n, size_t *off, char *out, size_t outsz)
{
    size_t o = *off, w = 0;
    while (o < n && b[o]) {
        size_t len = b[o++];
        if (len > 63 || o + len > n || w + len + 2 > outsz)
            return false;
        if (w)
            out[w++] = '.';
        memcpy(out + w, b + o, len);
        w += len;
        o += len;
    }
    if (o >= n)
        return false;
    out[w] = '\0';
    *off = o + 1;
    return true;
}

static void *responder_main(void *arg)
{
    struct responder *rs = arg;
    while (!atomic_load(&rs->stop)) {
        struct pollfd pfd = {.fd = rs->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        uint8_t q[512];
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof(from);
        ssize_t n = recvfrom(rs->fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fromlen);
        if (n < 12)
            continue;
        size_t off = 12;
        char name[256];
        if (!read_qname(q, (size_t)n, &off, name, sizeof(name)) || off + 4 > (size_t)n)
            continue;
        unsigned qtype = (unsigned)q[off] << 8 | q[off + 1];
        off += 4;
        atomic_fetch_add(&rs->queries, 1);
        const struct canned *c = NULL;
        for (size_t i = 0; i < sizeof(canned) / sizeof(canned[0]) && !c; i++)
            if (strcasecmp(canned[i].name, name) == 0 && canned[i].qtype == qtype)
                c = &canned[i];
        struct pkt p;
        unsigned an = 0;
        for (size_t i = 0; c && i < 4 && c->rr[i].type; i++)
            an++;
        unsigned rcode = c ? c->rcode : 3 /* NXDOMAIN */;
        put_header(&p, (unsigned)q[0] << 8 | q[1], 0x8180 | rcode, 1, an);
        memcpy(p.b + 12, q + 12, off - 12); /* the question as asked */
        p.n = off;
        for (size_t i = 0; i < an; i++)
            put_rr(&p, c->rr[i].owner, c->rr[i].type, 1, 60, c->rr[i].data);
        sendto(rs->fd, p.b, p.n, 0, (struct sockaddr *)&from, fromlen);
    }
    return NULL;
}

struct rfx {
    struct event_base *base;
    struct dns *d;
    struct responder rs;
};

static int rfx_setup(void **state)
{
    struct rfx *f = calloc(1, sizeof(*f));
    f->rs.fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(f->rs.fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->rs.fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t len = sizeof(sin);
    assert_int_equal(getsockname(f->rs.fd, (struct sockaddr *)&sin, &len), 0);
    f->rs.port = ntohs(sin.sin_port);
    assert_int_equal(pthread_create(&f->rs.thread, NULL, responder_main, &f->rs), 0);
    f->base = event_base_new();
    char ns[64];
    snprintf(ns, sizeof(ns), "127.0.0.1:%d", f->rs.port);
    const char *err = NULL;
    f->d = dns_new(f->base, ns, &err);
    if (!f->d)
        fail_msg("dns_new: %s", err);
    *state = f;
    return 0;
}

static int rfx_teardown(void **state)
{
    struct rfx *f = *state;
    dns_free(&f->d);
    event_base_free(f->base);
    atomic_store(&f->rs.stop, 1);
    pthread_join(f->rs.thread, NULL);
    close(f->rs.fd);
    free(f);
    return 0;
}

static void test_real_lookups(void **state)
{
    struct rfx *f = *state;
    struct res r;

    lookup_mx(f->base, f->d, "real.test", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.mx[0].host, "mx1.real.test");
    assert_int_equal(r.mx[0].preference, 10);
    assert_string_equal(r.mx[1].host, "mx2.real.test");

    lookup_mx(f->base, f->d, "null.real.test", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_true(r.null_mx);
    lookup_mx(f->base, f->d, "badname.real.test", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_int_equal(r.n, 0);
    assert_false(r.null_mx);
    lookup_mx(f->base, f->d, "nodata.real.test", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_int_equal(r.n, 0);
    assert_false(r.null_mx);
    lookup_mx(f->base, f->d, "gone.real.test", &r);
    assert_int_equal(r.st, DNS_NOTFOUND);
    lookup_mx(f->base, f->d, "broken.real.test", &r);
    assert_int_equal(r.st, DNS_TEMPFAIL);

    lookup_addrs(f->base, f->d, "mx1.real.test", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.addr[0], "192.0.2.1");
    assert_string_equal(r.addr[1], "2001:db8::1");

    int before = atomic_load(&f->rs.queries);
    lookup_addrs(f->base, f->d, "alias.real.test", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.addr[0], "192.0.2.1");
    assert_string_equal(r.addr[1], "2001:db8::1");
    /* the CNAME answers for alias.real.test, the target's answers came from the cache */
    assert_int_equal(atomic_load(&f->rs.queries), before + 2);

    lookup_addrs(f->base, f->d, "www.real.test", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.addr[0], "192.0.2.8");

    lookup_addrs(f->base, f->d, "gone.real.test", &r);
    assert_int_equal(r.st, DNS_NOTFOUND);

    lookup_ptr(f->base, f->d, "192.0.2.9", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_string_equal(r.name, "Host.Real.Test");
    lookup_ptr(f->base, f->d, "192.0.2.10", &r);
    assert_int_equal(r.st, DNS_NOTFOUND);

    /* cached: no new query */
    before = atomic_load(&f->rs.queries);
    lookup_mx(f->base, f->d, "real.test", &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(atomic_load(&f->rs.queries), before);
}

/* A lookup on the network still running when dns_free() is called. */
static void test_real_free_pending(void **state)
{
    struct rfx *f = *state;
    struct res r;
    memset(&r, 0, sizeof(r));
    dns_lookup_mx(f->d, "real.test", mx_cb, &r);
    dns_free(&f->d);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.st, DNS_TEMPFAIL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_parse),
        cmocka_unit_test(test_mx_sort),
        cmocka_unit_test(test_mx_is_null),
        cmocka_unit_test(test_answer_parse),
        cmocka_unit_test_setup_teardown(test_fake_add_errors, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_fake_mx, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_fake_mx_mixed_root, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_fake_addrs, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_fake_ptr, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_fake_cache, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_fake_cache_bound, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_fake_free_pending, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_real_lookups, rfx_setup, rfx_teardown),
        cmocka_unit_test_setup_teardown(test_real_free_pending, rfx_setup, rfx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
