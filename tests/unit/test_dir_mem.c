/* Unit tests for dir_mem (the in-memory directory double): case-insensitive lookups, domain
 * alias resolution, list member order, route order and wildcards, IP range selection, and
 * failure injection. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "dir/dir.h"
#include "dir/dir_mem.h"

static void test_lookups_case_insensitive(void **state)
{
    (void)state;
    struct dir *d = dir_mem_new();
    int64_t id =
        dir_mem_add_domain(d, &(struct dir_domain){.name = "Example.Test", .enabled = true});
    assert_true(id > 0);
    dir_mem_add_domain_alias(d, "alias.test", "example.test");
    dir_mem_add_account(d, &(struct dir_account){.address = "User@Example.Test", .enabled = true});
    dir_mem_add_alias(d, &(struct dir_alias){.address = "a@example.test", .target = "t@x.test"});
    dir_mem_add_list(d, &(struct dir_list){.address = "l@example.test", .mode = DIR_LIST_MEMBERS});

    struct dir_domain dom;
    assert_int_equal(dir_domain_get(d, "EXAMPLE.test", &dom), DIR_OK);
    assert_int_equal(dom.id, id);
    assert_int_equal(dir_domain_get(d, "alias.test", &dom), DIR_NOTFOUND);
    assert_int_equal(dir_domain_resolve(d, "ALIAS.TEST", &dom), DIR_OK);
    assert_string_equal(dom.name, "Example.Test");
    assert_int_equal(dir_domain_resolve(d, "other.test", &dom), DIR_NOTFOUND);

    struct dir_account acc;
    assert_int_equal(dir_account_get(d, "user@EXAMPLE.TEST", &acc), DIR_OK);
    assert_string_equal(acc.address, "User@Example.Test");
    assert_true(acc.enabled);
    assert_int_equal(dir_account_get(d, "user2@example.test", &acc), DIR_NOTFOUND);

    struct dir_alias al;
    assert_int_equal(dir_alias_get(d, "A@Example.test", &al), DIR_OK);
    assert_string_equal(al.target, "t@x.test");
    struct dir_list li;
    assert_int_equal(dir_list_get(d, "L@EXAMPLE.TEST", &li), DIR_OK);
    assert_int_equal(li.mode, DIR_LIST_MEMBERS);
    assert_int_equal(dir_list_get(d, "a@example.test", &li), DIR_NOTFOUND);
    dir_close(&d);
    assert_null(d);
}

struct members {
    char buf[256];
};

static void member_cb(void *ctx, const char *address)
{
    struct members *m = ctx;
    if (m->buf[0])
        strcat(m->buf, ",");
    strcat(m->buf, address);
}

static void test_list_members_order(void **state)
{
    (void)state;
    struct dir *d = dir_mem_new();
    int64_t l1 = dir_mem_add_list(d, &(struct dir_list){.address = "l1@x.test"});
    int64_t l2 = dir_mem_add_list(d, &(struct dir_list){.address = "l2@x.test"});
    dir_mem_add_list_member(d, l1, "c@x.test");
    dir_mem_add_list_member(d, l2, "z@x.test");
    dir_mem_add_list_member(d, l1, "a@x.test");
    dir_mem_add_list_member(d, l1, "b@x.test");
    struct members m = {""};
    assert_int_equal(dir_list_members(d, l1, member_cb, &m), DIR_OK);
    assert_string_equal(m.buf, "c@x.test,a@x.test,b@x.test");
    struct members empty = {""};
    assert_int_equal(dir_list_members(d, 999, member_cb, &empty), DIR_OK);
    assert_string_equal(empty.buf, "");
    dir_close(&d);
}

static void test_routes(void **state)
{
    (void)state;
    struct dir *d = dir_mem_new();
    int64_t r1 = dir_mem_add_route(d, &(struct dir_route){.pattern = "*.Wild.test", .host = "h1"});
    int64_t r2 = dir_mem_add_route(d, &(struct dir_route){.pattern = "a?.wild.test", .host = "h2"});
    int64_t r3 = dir_mem_add_route(d, &(struct dir_route){.id = 77, .pattern = "exact.test"});
    assert_int_equal(r3, 77);
    dir_mem_add_route_address(d, r2, "Bob@ab.wild.test");

    struct dir_route rt;
    /* insertion order: r1 matches first even though r2 matches too */
    assert_int_equal(dir_route_find(d, "AB.wild.TEST", &rt), DIR_OK);
    assert_int_equal(rt.id, r1);
    assert_string_equal(rt.host, "h1");
    assert_int_equal(rt.port, 25); /* default */
    assert_int_equal(dir_route_find(d, "wild.test", &rt), DIR_NOTFOUND);
    assert_int_equal(dir_route_find(d, "exact.test", &rt), DIR_OK);
    assert_int_equal(rt.id, 77);
    assert_int_equal(dir_route_find(d, "exact.test.org", &rt), DIR_NOTFOUND);

    assert_int_equal(dir_route_has_address(d, r2, "bob@AB.wild.test"), DIR_OK);
    assert_int_equal(dir_route_has_address(d, r1, "bob@ab.wild.test"), DIR_NOTFOUND);
    assert_int_equal(dir_route_has_address(d, r2, "eve@ab.wild.test"), DIR_NOTFOUND);
    dir_close(&d);
}

static struct dir_iprange range(const char *name, const char *from, const char *to, int prio,
                                int64_t expires)
{
    struct dir_iprange r = {.priority = prio, .flags = DIR_IPR_SMTP, .expires = expires};
    strcpy(r.name, name);
    assert_int_equal(ipaddr_parse(from, &r.from), 0);
    assert_int_equal(ipaddr_parse(to, &r.to), 0);
    return r;
}

static void test_ipranges(void **state)
{
    (void)state;
    struct dir *d = dir_mem_new();
    dir_mem_set_now(d, 1000);
    struct dir_iprange r;
    r = range("Internet", "0.0.0.0", "255.255.255.255", 10, 0);
    dir_mem_add_iprange(d, &r);
    r = range("My computer", "127.0.0.1", "127.0.0.1", 30, 0);
    dir_mem_add_iprange(d, &r);
    r = range("Tie", "127.0.0.1", "127.0.0.1", 30, 0); /* same priority, added later: loses */
    dir_mem_add_iprange(d, &r);
    r = range("Expired", "10.0.0.0", "10.255.255.255", 50, 1000);
    dir_mem_add_iprange(d, &r);
    r = range("Live", "10.1.0.0", "10.1.255.255", 40, 1001);
    dir_mem_add_iprange(d, &r);
    r = range("v6", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 5, 0);
    dir_mem_add_iprange(d, &r);

    static const struct {
        const char *ip;
        const char *want; /* NULL = not found */
    } cases[] = {
        {"127.0.0.1", "My computer"},
        {"127.0.0.2", "Internet"},
        {"10.0.0.1", "Internet"},
        {"10.1.2.3", "Live"},
        {"::1", "v6"},
        {"::ffff:127.0.0.1", "v6"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ipaddr ip;
        assert_int_equal(ipaddr_parse(cases[i].ip, &ip), 0);
        struct dir_iprange out;
        enum dir_result res = dir_iprange_match(d, &ip, &out);
        if (!cases[i].want) {
            assert_int_equal(res, DIR_NOTFOUND);
            continue;
        }
        assert_int_equal(res, DIR_OK);
        if (strcmp(out.name, cases[i].want) != 0)
            fail_msg("%s: got range %s, want %s", cases[i].ip, out.name, cases[i].want);
    }
    dir_close(&d);

    /* No IPv6 range: ::1 matches nothing. */
    d = dir_mem_new();
    r = range("Internet", "0.0.0.0", "255.255.255.255", 10, 0);
    dir_mem_add_iprange(d, &r);
    struct ipaddr ip;
    struct dir_iprange out;
    assert_int_equal(ipaddr_parse("::1", &ip), 0);
    assert_int_equal(dir_iprange_match(d, &ip, &out), DIR_NOTFOUND);
    dir_close(&d);
}

static void test_failure_injection(void **state)
{
    (void)state;
    struct dir *d = dir_mem_new();
    dir_mem_add_domain(d, &(struct dir_domain){.name = "example.test", .enabled = true});
    struct dir_domain dom;
    unsigned before = dir_mem_lookups(d);

    dir_mem_fail_next(d, DIR_TEMPFAIL);
    assert_int_equal(dir_domain_get(d, "example.test", &dom), DIR_TEMPFAIL);
    assert_int_equal(dir_domain_get(d, "example.test", &dom), DIR_OK); /* once only */

    dir_mem_fail_at(d, 2, DIR_PERMFAIL);
    assert_int_equal(dir_domain_get(d, "example.test", &dom), DIR_OK);
    assert_int_equal(dir_domain_get(d, "nothere.test", &dom), DIR_NOTFOUND);
    assert_int_equal(dir_domain_get(d, "example.test", &dom), DIR_PERMFAIL);
    assert_int_equal(dir_domain_get(d, "example.test", &dom), DIR_OK);

    dir_mem_fail_all(d, DIR_TEMPFAIL);
    struct members m = {""};
    assert_int_equal(dir_list_members(d, 1, member_cb, &m), DIR_TEMPFAIL);
    struct dir_route rt;
    assert_int_equal(dir_route_find(d, "x", &rt), DIR_TEMPFAIL);
    assert_int_equal(dir_domain_resolve(d, "example.test", &dom), DIR_TEMPFAIL);
    dir_mem_fail_all(d, DIR_OK);
    assert_int_equal(dir_domain_resolve(d, "example.test", &dom), DIR_OK);
    assert_int_equal(dir_mem_lookups(d) - before, 10);
    dir_close(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookups_case_insensitive),
        cmocka_unit_test(test_list_members_order),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_ipranges),
        cmocka_unit_test(test_failure_injection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
