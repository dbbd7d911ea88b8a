/* test_queue_target: target resolution (queue_target_resolve) over the in-memory DNS fake —
 * MX order with each host's IPv4 then IPv6 addresses, an MX that is an IP literal, implicit MX,
 * null MX, NXDOMAIN, "no MX and no address", DNS failures, routes ("a|b", port, precedence over
 * the smarthost), smarthost (literal, port 0), unresolvable route/relay hosts, the 15-address cap,
 * duplicates, upper-case domains, address-literal domains, asynchronous callbacks and dns_free()
 * with a resolution pending — and the local-IP loop check (queue_target_is_self[_with]) for
 * several listener configurations. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "dir/dir.h"
#include "lib/ipaddr.h"
#include "net/dns.h"
#include "queue/queue_target.h"

struct fx {
    struct event_base *base;
    struct dns *d;
};

struct res {
    int calls;
    struct queue_target t;
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
    event_base_free(f->base);
    free(f);
    return 0;
}

static void add(struct dns *d, const char *name, const char *type, const char *value)
{
    if (dns_fake_add(d, name, type, value, 60) < 0)
        fail_msg("dns_fake_add(%s %s %s) failed", name, type, value);
}

static void target_cb(void *ctx, const struct queue_target *t)
{
    struct res *r = ctx;
    r->calls++;
    r->t = *t;
}

static void resolve(struct fx *f, const struct queue_target_request *req, struct res *r)
{
    memset(r, 0, sizeof(*r));
    queue_target_resolve(f->d, req, target_cb, r);
    assert_int_equal(r->calls, 0); /* never from inside the call */
    for (int i = 0; r->calls == 0 && i < 10000; i++)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(r->calls, 1);
    if (r->t.status == QUEUE_TARGET_OK) {
        assert_true(r->t.count > 0);
        assert_string_equal(r->t.error, "");
    } else {
        assert_int_equal(r->t.count, 0);
        assert_true(r->t.error[0] != '\0');
    }
}

static void resolve_domain(struct fx *f, const char *domain, struct res *r)
{
    struct queue_target_request req = {.domain = domain, .relay_host = "", .relay_port = 25};
    resolve(f, &req, r);
}

/* Expect "ip port host" entries, in order. */
static void expect_addrs(const struct res *r, const char *const *want, size_t n)
{
    assert_int_equal(r->t.status, QUEUE_TARGET_OK);
    if (r->t.count != n)
        fail_msg("%zu addresses, expected %zu", r->t.count, n);
    for (size_t i = 0; i < n; i++) {
        char ip[IPADDR_STRLEN], got[400];
        ipaddr_format(&r->t.addrs[i].ip, ip);
        snprintf(got, sizeof(got), "%s %d %s", ip, r->t.addrs[i].port, r->t.addrs[i].host);
        if (strcmp(got, want[i]) != 0)
            fail_msg("address %zu: \"%s\", expected \"%s\"", i, got, want[i]);
    }
}

static void expect_fail(const struct res *r, enum queue_target_status st, const char *error)
{
    assert_int_equal(r->t.status, st);
    assert_string_equal(r->t.error, error);
}

static void test_mx_order(void **state)
{
    struct fx *f = *state;
    struct res r;
    add(f->d, "example.test", "MX", "20 mx2.example.test");
    add(f->d, "example.test", "MX", "10 MX1.example.test");
    add(f->d, "example.test", "MX", "30 192.0.2.30"); /* an IP literal as exchange */
    add(f->d, "mx1.example.test", "AAAA", "2001:db8::1");
    add(f->d, "mx1.example.test", "A", "192.0.2.1");
    add(f->d, "mx2.example.test", "A", "192.0.2.2");
    add(f->d, "example.test", "A", "192.0.2.99"); /* not used: there are MX records */
    static const char *const want[] = {"192.0.2.1 25 mx1.example.test",
                                       "2001:db8::1 25 mx1.example.test",
                                       "192.0.2.2 25 mx2.example.test", "192.0.2.30 25 192.0.2.30"};
    resolve_domain(f, "example.test", &r);
    expect_addrs(&r, want, 4);
    resolve_domain(f, "EXAMPLE.Test.", &r); /* any spelling */
    expect_addrs(&r, want, 4);
}

static void test_mx_partial(void **state)
{
    struct fx *f = *state;
    struct res r;
    /* one MX host does not resolve, one fails: the one that resolves is used */
    add(f->d, "partial.test", "MX", "10 gone.partial.test");
    add(f->d, "partial.test", "MX", "20 broken.partial.test");
    add(f->d, "partial.test", "MX", "30 ok.partial.test");
    add(f->d, "ok.partial.test", "A", "192.0.2.3");
    dns_fake_fail(f->d, "broken.partial.test", NULL);
    static const char *const want[] = {"192.0.2.3 25 ok.partial.test"};
    resolve_domain(f, "partial.test", &r);
    expect_addrs(&r, want, 1);

    /* no MX host resolves, one lookup failed: try again later */
    add(f->d, "tmp.test", "MX", "10 gone.tmp.test");
    add(f->d, "tmp.test", "MX", "20 broken.partial.test");
    resolve_domain(f, "tmp.test", &r);
    expect_fail(&r, QUEUE_TARGET_TEMPFAIL, QUEUE_TARGET_ERR_DNS);

    /* every MX host is NXDOMAIN: nothing usable */
    add(f->d, "dead.test", "MX", "10 gone1.dead.test");
    add(f->d, "dead.test", "MX", "20 gone2.dead.test");
    resolve_domain(f, "dead.test", &r);
    expect_fail(&r, QUEUE_TARGET_PERMFAIL, QUEUE_TARGET_ERR_NO_MX);
}

static void test_implicit_mx(void **state)
{
    struct fx *f = *state;
    struct res r;
    add(f->d, "plain.test", "A", "192.0.2.10");
    add(f->d, "plain.test", "AAAA", "2001:db8::10");
    static const char *const want[] = {"192.0.2.10 25 plain.test", "2001:db8::10 25 plain.test"};
    resolve_domain(f, "plain.test", &r);
    expect_addrs(&r, want, 2);
    resolve_domain(f, "Plain.TEST.", &r);
    expect_addrs(&r, want, 2);

    /* the name exists, with neither MX nor address */
    add(f->d, "empty.test", "PTR", "x.test");
    resolve_domain(f, "empty.test", &r);
    expect_fail(&r, QUEUE_TARGET_PERMFAIL, QUEUE_TARGET_ERR_NO_MX);

    /* no MX, and the address lookups fail */
    add(f->d, "flaky.test", "PTR", "x.test");
    dns_fake_fail(f->d, "flaky.test", "A");
    dns_fake_fail(f->d, "flaky.test", "AAAA");
    resolve_domain(f, "flaky.test", &r);
    expect_fail(&r, QUEUE_TARGET_TEMPFAIL, QUEUE_TARGET_ERR_DNS);
}

static void test_mx_failures(void **state)
{
    struct fx *f = *state;
    struct res r;
    add(f->d, "null.test", "MX", "0 .");
    add(f->d, "null.test", "A", "192.0.2.11"); /* ignored: null MX means no mail */
    resolve_domain(f, "null.test", &r);
    expect_fail(&r, QUEUE_TARGET_PERMFAIL, QUEUE_TARGET_ERR_NO_MX);

    resolve_domain(f, "nxdomain.test", &r);
    expect_fail(&r, QUEUE_TARGET_PERMFAIL, QUEUE_TARGET_ERR_NO_MX);

    add(f->d, "servfail.test", "A", "192.0.2.12");
    dns_fake_fail(f->d, "servfail.test", "MX");
    resolve_domain(f, "servfail.test", &r);
    expect_fail(&r, QUEUE_TARGET_TEMPFAIL, QUEUE_TARGET_ERR_DNS);

    resolve_domain(f, "", &r);
    expect_fail(&r, QUEUE_TARGET_PERMFAIL, QUEUE_TARGET_ERR_NO_MX);
}

static void test_literal_domain(void **state)
{
    struct fx *f = *state;
    struct res r;
    unsigned q = dns_fake_queries(f->d);
    static const char *const want4[] = {"192.0.2.7 25 [192.0.2.7]"};
    resolve_domain(f, "[192.0.2.7]", &r);
    expect_addrs(&r, want4, 1);
    static const char *const want6[] = {"2001:db8::7 25 [ipv6:2001:db8::7]"};
    resolve_domain(f, "[IPv6:2001:db8::7]", &r);
    expect_addrs(&r, want6, 1);
    assert_int_equal(dns_fake_queries(f->d), q);
}

static void test_route(void **state)
{
    struct fx *f = *state;
    struct res r;
    add(f->d, "a.route.test", "A", "192.0.2.21");
    add(f->d, "b.route.test", "A", "192.0.2.22");
    add(f->d, "b.route.test", "AAAA", "2001:db8::22");
    add(f->d, "example.test", "MX", "10 mx.example.test");
    add(f->d, "mx.example.test", "A", "192.0.2.1");
    struct dir_route route;
    memset(&route, 0, sizeof(route));
    snprintf(route.pattern, sizeof(route.pattern), "example.test");
    snprintf(route.host, sizeof(route.host), " A.route.test | b.route.test||gone.route.test ");
    route.port = 2525;
    struct queue_target_request req = {
        .domain = "example.test", .route = &route, .relay_host = "relay.test", .relay_port = 587};
    static const char *const want[] = {"192.0.2.21 2525 a.route.test",
                                       "192.0.2.22 2525 b.route.test",
                                       "2001:db8::22 2525 b.route.test"};
    resolve(f, &req, &r);
    expect_addrs(&r, want, 3);

    /* port 0 = 25; a literal host */
    snprintf(route.host, sizeof(route.host), "[192.0.2.23]");
    route.port = 0;
    static const char *const want_lit[] = {"192.0.2.23 25 [192.0.2.23]"};
    resolve(f, &req, &r);
    expect_addrs(&r, want_lit, 1);

    /* no route host resolves */
    snprintf(route.host, sizeof(route.host), "gone.route.test|gone2.route.test");
    resolve(f, &req, &r);
    expect_fail(&r, QUEUE_TARGET_TEMPFAIL, QUEUE_TARGET_ERR_RELAY);
    /* ... because DNS failed */
    dns_fake_fail(f->d, "down.route.test", NULL);
    snprintf(route.host, sizeof(route.host), "gone.route.test|down.route.test");
    resolve(f, &req, &r);
    expect_fail(&r, QUEUE_TARGET_TEMPFAIL, QUEUE_TARGET_ERR_DNS);
    /* an empty host */
    snprintf(route.host, sizeof(route.host), " | ");
    resolve(f, &req, &r);
    expect_fail(&r, QUEUE_TARGET_TEMPFAIL, QUEUE_TARGET_ERR_RELAY);
}

static void test_relay(void **state)
{
    struct fx *f = *state;
    struct res r;
    add(f->d, "relay.test", "A", "192.0.2.40");
    add(f->d, "example.test", "MX", "10 mx.example.test");
    add(f->d, "mx.example.test", "A", "192.0.2.1");
    struct queue_target_request req = {
        .domain = "example.test", .route = NULL, .relay_host = "Relay.test", .relay_port = 587};
    static const char *const want[] = {"192.0.2.40 587 relay.test"};
    resolve(f, &req, &r);
    expect_addrs(&r, want, 1);

    req.relay_port = 0;
    static const char *const want25[] = {"192.0.2.40 25 relay.test"};
    resolve(f, &req, &r);
    expect_addrs(&r, want25, 1);

    unsigned q = dns_fake_queries(f->d);
    req.relay_host = "[192.0.2.50]";
    req.relay_port = 2526;
    static const char *const want_lit[] = {"192.0.2.50 2526 [192.0.2.50]"};
    resolve(f, &req, &r);
    expect_addrs(&r, want_lit, 1);
    assert_int_equal(dns_fake_queries(f->d), q); /* no DNS at all */

    req.relay_host = "norelay.test";
    resolve(f, &req, &r);
    expect_fail(&r, QUEUE_TARGET_TEMPFAIL, QUEUE_TARGET_ERR_RELAY);

    req.relay_host = NULL; /* no relay: MX */
    static const char *const want_mx[] = {"192.0.2.1 25 mx.example.test"};
    resolve(f, &req, &r);
    expect_addrs(&r, want_mx, 1);
}

static void test_cap_and_duplicates(void **state)
{
    struct fx *f = *state;
    struct res r;
    for (int i = 0; i < 20; i++) {
        char mx[64], host[64], ip[32];
        snprintf(mx, sizeof(mx), "%d mx%02d.big.test", i, i);
        snprintf(host, sizeof(host), "mx%02d.big.test", i);
        snprintf(ip, sizeof(ip), "192.0.2.%d", 100 + i);
        add(f->d, "big.test", "MX", mx);
        add(f->d, host, "A", ip);
    }
    resolve_domain(f, "big.test", &r);
    assert_int_equal(r.t.status, QUEUE_TARGET_OK);
    assert_int_equal(r.t.count, QUEUE_TARGET_MAX_ADDRS);
    for (size_t i = 0; i < r.t.count; i++) {
        char want_host[64], ip[IPADDR_STRLEN], want_ip[32];
        snprintf(want_host, sizeof(want_host), "mx%02zu.big.test", i);
        snprintf(want_ip, sizeof(want_ip), "192.0.2.%zu", 100 + i);
        ipaddr_format(&r.t.addrs[i].ip, ip);
        assert_string_equal(r.t.addrs[i].host, want_host);
        assert_string_equal(ip, want_ip);
    }

    /* two MX names, one address */
    add(f->d, "dup.test", "MX", "10 one.dup.test");
    add(f->d, "dup.test", "MX", "20 two.dup.test");
    add(f->d, "one.dup.test", "A", "192.0.2.60");
    add(f->d, "two.dup.test", "A", "192.0.2.60");
    add(f->d, "two.dup.test", "A", "192.0.2.61");
    static const char *const want[] = {"192.0.2.60 25 one.dup.test", "192.0.2.61 25 two.dup.test"};
    resolve_domain(f, "dup.test", &r);
    expect_addrs(&r, want, 2);
}

static void test_mx_ties_random(void **state)
{
    struct fx *f = *state;
    add(f->d, "tie.test", "MX", "10 a.tie.test");
    add(f->d, "tie.test", "MX", "10 b.tie.test");
    add(f->d, "a.tie.test", "A", "192.0.2.71");
    add(f->d, "b.tie.test", "A", "192.0.2.72");
    int a_first = 0;
    for (int i = 0; i < 100; i++) {
        struct res r;
        resolve_domain(f, "tie.test", &r);
        assert_int_equal(r.t.count, 2);
        if (strcmp(r.t.addrs[0].host, "a.tie.test") == 0)
            a_first++;
    }
    assert_true(a_first > 10 && a_first < 90);
}

/* dns_free() while resolutions wait: each reports TEMPFAIL once. */
static void test_free_pending(void **state)
{
    struct fx *f = *state;
    add(f->d, "example.test", "MX", "10 mx.example.test");
    add(f->d, "mx.example.test", "A", "192.0.2.1");
    struct res r1, r2, r3;
    memset(&r1, 0, sizeof(r1));
    memset(&r2, 0, sizeof(r2));
    memset(&r3, 0, sizeof(r3));
    struct queue_target_request mx = {.domain = "example.test", .relay_host = ""};
    struct queue_target_request relay = {.domain = "example.test", .relay_host = "a|b|[192.0.2.1]"};
    queue_target_resolve(f->d, &mx, target_cb, &r1);
    /* the MX answer arrives, the address lookups are then pending */
    event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(r1.calls, 0);
    queue_target_resolve(f->d, &relay, target_cb, &r2);
    queue_target_resolve(f->d, &mx, target_cb, &r3);
    dns_free(&f->d);
    struct res *all[] = {&r1, &r2, &r3};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(all[i]->calls, 1);
        expect_fail(all[i], QUEUE_TARGET_TEMPFAIL, QUEUE_TARGET_ERR_DNS);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* loop check */

static struct conf *load_conf(const char *text)
{
    char *errors = NULL;
    struct conf *c = conf_load_string(text, "t.conf", &errors);
    if (!c)
        fail_msg("config:\n%s", errors ? errors : "?");
    return c;
}

static void test_is_self(void **state)
{
    (void)state;
    static const struct {
        const char *listeners; /* conf text */
        const char *ip;
        int port;
        bool with_local; /* interface addresses: 192.0.2.10 and 2001:db8::10 */
        bool self;
    } cases[] = {
        /* wildcard */
        {"[listener:mx]\naddress = *:25\n", "127.0.0.1", 25, false, true},
        {"[listener:mx]\naddress = *:25\n", "127.0.0.5", 25, false, true},
        {"[listener:mx]\naddress = *:25\n", "::1", 25, false, true},
        {"[listener:mx]\naddress = *:25\n", "0.0.0.0", 25, false, true},
        {"[listener:mx]\naddress = *:25\n", "127.0.0.1", 2525, false, false},
        {"[listener:mx]\naddress = *:25\n", "192.0.2.10", 25, true, true},
        {"[listener:mx]\naddress = *:25\n", "2001:db8::10", 25, true, true},
        {"[listener:mx]\naddress = *:25\n", "192.0.2.10", 25, false, false},
        {"[listener:mx]\naddress = *:25\n", "198.51.100.1", 25, true, false},
        {"[listener:mx]\naddress = 0.0.0.0:25\n", "192.0.2.10", 25, true, true},
        {"[listener:mx]\naddress = [::]:25\n", "127.0.0.1", 25, false, true},
        {"[listener:mx]\naddress = [::]:25\n", "192.0.2.10", 25, true, true},
        /* loopback listener */
        {"[listener:mx]\naddress = 127.0.0.1:2525\n", "127.0.0.1", 2525, false, true},
        {"[listener:mx]\naddress = 127.0.0.1:2525\n", "127.0.0.2", 2525, false, true},
        {"[listener:mx]\naddress = 127.0.0.1:2525\n", "::1", 2525, false, true},
        {"[listener:mx]\naddress = 127.0.0.1:2525\n", "127.0.0.1", 25, false, false},
        {"[listener:mx]\naddress = 127.0.0.1:2525\n", "192.0.2.10", 2525, true, false},
        {"[listener:mx]\naddress = [::1]:25\n", "::1", 25, false, true},
        {"[listener:mx]\naddress = [::1]:25\n", "127.0.0.1", 25, false, true},
        {"[listener:mx]\naddress = [::1]:25\n", "2001:db8::1", 25, true, false},
        {"[listener:mx]\naddress = [::1]:25\n", "::1", 26, false, false},
        {"[listener:mx]\naddress = localhost:25\n", "127.0.0.1", 25, false, true},
        {"[listener:mx]\naddress = localhost:25\n", "192.0.2.10", 25, true, false},
        /* a specific address */
        {"[listener:mx]\naddress = 192.0.2.10:25\n", "192.0.2.10", 25, false, true},
        {"[listener:mx]\naddress = 192.0.2.10:25\n", "::ffff:192.0.2.10", 25, false, true},
        {"[listener:mx]\naddress = 192.0.2.10:25\n", "192.0.2.11", 25, true, false},
        {"[listener:mx]\naddress = 192.0.2.10:25\n", "127.0.0.1", 25, true, false},
        {"[listener:mx]\naddress = [2001:db8::10]:25\n", "2001:db8::10", 25, false, true},
        /* several listeners, any protocol */
        {"[listener:mx]\naddress = 127.0.0.1:2525\n"
         "[listener:imap]\nprotocol = imap\naddress = *:1143\n",
         "192.0.2.10", 1143, true, true},
        {"[listener:mx]\naddress = 127.0.0.1:2525\n"
         "[listener:imap]\nprotocol = imap\naddress = *:1143\n",
         "192.0.2.10", 2525, true, false},
        /* no listeners */
        {"", "127.0.0.1", 25, true, false},
    };
    struct ipaddr local[2];
    assert_int_equal(ipaddr_parse("192.0.2.10", &local[0]), 0);
    assert_int_equal(ipaddr_parse("2001:db8::10", &local[1]), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct conf *c = load_conf(cases[i].listeners);
        struct ipaddr ip;
        assert_int_equal(ipaddr_parse(cases[i].ip, &ip), 0);
        bool self = queue_target_is_self_with(
            c, &ip, cases[i].port, cases[i].with_local ? local : NULL, cases[i].with_local ? 2 : 0);
        if (self != cases[i].self)
            fail_msg("case %zu (%s:%d): %s, expected %s", i, cases[i].ip, cases[i].port,
                     self ? "self" : "not self", cases[i].self ? "self" : "not self");
        conf_free(&c);
    }
}

/* The same through getifaddrs(): the loopback interface exists everywhere. */
static void test_is_self_real_interfaces(void **state)
{
    (void)state;
    struct conf *c = load_conf("[listener:mx]\naddress = *:25\n"
                               "[listener:sub]\naddress = 127.0.0.1:2525\n");
    struct ipaddr ip;
    assert_int_equal(ipaddr_parse("127.0.0.1", &ip), 0);
    assert_true(queue_target_is_self(c, &ip, 25));
    assert_true(queue_target_is_self(c, &ip, 2525));
    assert_false(queue_target_is_self(c, &ip, 587));
    assert_int_equal(ipaddr_parse("192.0.2.254", &ip), 0); /* TEST-NET-1: not ours */
    assert_false(queue_target_is_self(c, &ip, 25));
    assert_false(queue_target_is_self(c, &ip, 2525));
    conf_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mx_order, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_mx_partial, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_implicit_mx, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_mx_failures, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_literal_domain, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_route, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_relay, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cap_and_duplicates, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_mx_ties_random, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_free_pending, fx_setup, fx_teardown),
        cmocka_unit_test(test_is_self),
        cmocka_unit_test(test_is_self_real_interfaces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
