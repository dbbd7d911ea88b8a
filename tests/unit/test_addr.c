/* test_addr: address, domain and HELO syntax (src/mail/addr.c; hmailserver-behaviour.md §1.6,
 * §14 items 16-19; replies.md "Greeting and sequence").
 *
 * Table-driven cases for addr_is_valid, addr_domain_is_valid, addr_helo_is_valid, addr_split and
 * addr_domain; then every case fed again as each of its prefixes (one byte more at a time), each
 * in an exactly-sized heap block so ASan catches any read past the NUL, checking the invariants
 * that tie the functions together. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"

/* Printable rendering of arbitrary bytes for failure messages. */
static const char *esc(const char *s)
{
    static char out[4][1200];
    static int slot;
    char *o = out[slot++ % 4];
    size_t j = 0;
    for (; *s && j < sizeof(out[0]) - 5; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7f && c != '\\')
            o[j++] = (char)c;
        else
            j += (size_t)snprintf(o + j, 5, "\\x%02x", c);
    }
    o[j] = '\0';
    return o;
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* An address of exactly total chars (>= 3): "u@" and labels of 60 x's separated by dots. */
static char *make_address(size_t total)
{
    char *s = malloc(total + 1);
    assert_non_null(s);
    size_t i = 0;
    s[i++] = 'u';
    s[i++] = '@';
    size_t in_label = 0;
    while (i < total) {
        /* never end on a dot, never put two dots together */
        if (in_label == 60 && i + 1 < total - 1) {
            s[i++] = '.';
            in_label = 0;
        } else {
            s[i++] = 'x';
            in_label++;
        }
    }
    s[total] = '\0';
    return s;
}

/* A domain name of exactly total chars: labels of 50 'd's separated by dots (total >= 1). */
static char *make_domain(size_t total)
{
    char *s = malloc(total + 1);
    assert_non_null(s);
    for (size_t i = 0; i < total; i++)
        s[i] = (i % 51 == 50 && i + 1 < total) ? '.' : 'd';
    s[total] = '\0';
    return s;
}

struct addr_case {
    const char *in;
    bool valid;
};

/* Every example of §1.6 and §14 items 16-19, plus edges of each rule. */
static const struct addr_case addr_cases[] = {
    /* valid */
    {"a@b.test", true},
    {"user@example.com", true},
    {"user@localhost", true}, /* single-label domain */
    {"user@[1.2.3.4]", true},
    {"$A12345@example.com", true},
    {"a/b@x", true},
    {"user+tag@x", true},
    {"!#$%&'*+-/=?^_`.{|}~@x", true},
    {"\"John Smith\"@x.test", true},
    {"\"a.b c\"@x.test", true},
    {"\"\"@x.test", true}, /* RFC 5321: Quoted-string = DQUOTE *QcontentSMTP DQUOTE */
    {"\"a!#$%&'*+/=?^_`{|}~(),;:[]\"@x.test", true},
    {"a.b.c@x.test", true},
    {".a@x.test", true}, /* dots anywhere in the unquoted local part */
    {"a.@x.test", true},
    {"a..b@x.test", true},
    {"USER@EXAMPLE.TEST", true},
    {"a@b-c.test", true},
    {"a@a--b.test", true},
    {"a@1.2.3.4", true}, /* labels may be all digits */
    {"a@x1", true},
    {"a@9", true},
    {"a@xn--bcher-kva.example", true},
    {"a@b.c.d.e.f.g", true},
    {"a@[255.255.255.255]", true},
    {"a@[0.0.0.0]", true},
    {"a@[001.002.003.004]", true}, /* 1-3 digits per part */
    {"caf\xc3\xa9@x.test", true},  /* 8-bit local part: accepted like hMailServer */
    {"a(b)c@x", true},
    {"a,b;c:d@x", true},
    {"a[b]@x", true},
    /* invalid */
    {"", false},
    {"a", false},
    {"@x.test", false},
    {"a@", false},
    {"@", false},
    {"a@@b", false},
    {"a@b@c", false},
    {"John Smith@x.test", false},
    {"a\\b@x.test", false},
    {"a@-x.test", false},
    {"a@x-.test", false},
    {"a@x.-y", false},
    {"a@-", false},
    {"a@b..c", false},
    {"a@.b", false},
    {"a@b.", false},
    {"a@.", false},
    {"a@b_c.test", false},
    {"a@b!c.test", false},
    {"a<b@x", false},
    {"a>b@x", false},
    {"<a@b>", false},
    {"a@b>", false},
    {"a\"b@x", false},
    {"\"a@b\"@x", false},  /* quoted part may not contain @ */
    {"\"a\\b\"@x", false}, /* nor a backslash */
    {"\"a<b\"@x", false},
    {"\"abc@x", false},   /* no closing quote */
    {"\"a\"b@x", false},  /* text after the quoted string */
    {"a.\"b\"@x", false}, /* quoted and unquoted mixed */
    {"\"a\"", false},
    {"a@[1.2.3]", false},
    {"a@[1.2.3.4.5]", false},
    {"a@[256.1.1.1]", false},
    {"a@[1234.1.1.1]", false},
    {"a@[1.2.3.4", false},
    {"a@1.2.3.4]", false},
    {"a@[]", false},
    {"a@[", false},
    {"a@[1..2.3]", false},
    {"a@[a.b.c.d]", false},
    {"a@[IPv6:::1]", false}, /* only IPv4 literals in addresses */
    {"a@[1.2.3.4]x", false},
    {"a@x[1.2.3.4]", false},
    {"a\tb@x", false}, /* control characters are refused */
    {"a@b\x7f", false},
    {"\"a\x01\"@x", false},
    {"a\x1b[0m@x", false},
    {"a@b c", false},
    {"a b@x", false},
    {" a@x.test", false},
    {"a@x.test ", false},
    {"a@ x.test", false},
    {"@a,@b:user@d.test", false}, /* source route */
    {"a@b:c", false},
    {"a@b,c", false},
    {"a@\xc3\xa9.test", false}, /* 8-bit domain */
};

static void test_addr_is_valid(void **state)
{
    (void)state;
    int failures = 0;
    size_t n = sizeof(addr_cases) / sizeof(addr_cases[0]);
    for (size_t i = 0; i < n; i++) {
        bool got = addr_is_valid(addr_cases[i].in);
        if (got != addr_cases[i].valid) {
            print_error("addr_is_valid(\"%s\") = %d, want %d\n", esc(addr_cases[i].in), got,
                        addr_cases[i].valid);
            failures++;
        }
    }
    assert_true(n >= 60);
    assert_int_equal(failures, 0);
}

static void test_addr_lengths(void **state)
{
    (void)state;
    static const struct {
        size_t len;
        bool valid;
    } cases[] = {
        {3, true},    {64, true},   {253, true},   {254, true},     {255, false},
        {256, false}, {261, false}, {1000, false}, {100000, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *a = make_address(cases[i].len);
        assert_int_equal(strlen(a), cases[i].len);
        if (addr_is_valid(a) != cases[i].valid)
            fail_msg("addr_is_valid(<%zu chars>) != %d", cases[i].len, cases[i].valid);
        /* addr_split never overflows, whatever the length */
        char local[ADDR_MAX], domain[ADDR_MAX];
        int r = addr_split(a, local, domain);
        assert_int_equal(r, cases[i].len - 2 < ADDR_MAX ? 0 : -1);
        free(a);
    }

    /* the 261-char address of §14 item 18, local part heavy */
    char *local261 = repeat('l', 261 - strlen("@example.test"));
    char buf[400];
    snprintf(buf, sizeof(buf), "%s@example.test", local261);
    assert_int_equal(strlen(buf), 261);
    assert_false(addr_is_valid(buf));
    free(local261);

    /* labels: 63 chars fine, 64 not */
    char *l63 = repeat('a', 63), *l64 = repeat('a', 64);
    snprintf(buf, sizeof(buf), "u@%s.test", l63);
    assert_true(addr_is_valid(buf));
    snprintf(buf, sizeof(buf), "u@%s.test", l64);
    assert_false(addr_is_valid(buf));
    free(l63);
    free(l64);
}

struct domain_case {
    const char *in;
    bool valid;
};

static const struct domain_case domain_cases[] = {
    {"example.test", true}, {"localhost", true},    {"a", true},           {"1.2.3.4", true},
    {"[1.2.3.4]", true},    {"a-b.c", true},        {"", false},           {".", false},
    {"a.", false},          {".a", false},          {"a..b", false},       {"-a", false},
    {"a-", false},          {"a_b", false},         {"a b", false},        {"a@b", false},
    {"[1.2.3.4", false},    {"[256.0.0.0]", false}, {"[IPv6:::1]", false}, {"[1.2.3.4].x", false},
    {"\xff", false},
};

static void test_domain_is_valid(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(domain_cases) / sizeof(domain_cases[0]); i++) {
        bool got = addr_domain_is_valid(domain_cases[i].in);
        if (got != domain_cases[i].valid) {
            print_error("addr_domain_is_valid(\"%s\") = %d\n", esc(domain_cases[i].in), got);
            failures++;
        }
    }
    assert_int_equal(failures, 0);

    /* 127 one-char labels: 253 chars, valid; 128 labels: 255 chars (<= 255) but too many */
    char d[600];
    size_t j = 0;
    for (int k = 0; k < 128; k++) {
        if (k > 0)
            d[j++] = '.';
        d[j++] = 'a';
        d[j] = '\0';
        if (k == 126) {
            assert_int_equal(strlen(d), 253);
            assert_true(addr_domain_is_valid(d));
        }
    }
    assert_int_equal(strlen(d), 255);
    assert_false(addr_domain_is_valid(d));
    /* 255 chars fine, 256 not */
    char *d255 = make_domain(255), *d256 = make_domain(256);
    bool ok255 = addr_domain_is_valid(d255), ok256 = addr_domain_is_valid(d256);
    free(d255);
    free(d256);
    assert_true(ok255);
    assert_false(ok256);
}

struct helo_case {
    const char *in;
    bool valid;
};

static const struct helo_case helo_cases[] = {
    {"x", true},
    {"mail.example.test", true},
    {"mail.example.test.", true}, /* one trailing dot */
    {"my_host.example", true},    /* underscores tolerated */
    {"-weird.example", false},    /* labels never start with a hyphen */
    {"weird-.example", false},    /* ... nor end with one */
    {"we-ird.ex-ample", true},
    {"localhost", true},
    {"1.2.3.4", true},
    {"MAIL.EXAMPLE.TEST", true},
    {"[1.2.3.4]", true},
    {"[255.255.255.255]", true},
    {"[IPv6:::1]", true},
    {"[ipv6:2001:db8::1]", true},
    {"[IPv6:2001:0db8:0000:0000:0000:0000:0000:0001]", true},
    {"[IPv6:::ffff:1.2.3.4]", true},
    {"", false},
    {" ", false},
    {"\t", false},
    {"a b", false},
    {"a\tb", false},
    {" x", false},
    {"a@b", false},
    {"user@example.test", false},
    {"a..b", false},
    {".a", false},
    {".", false},
    {"..", false},
    {"a..", false},
    {"x/y", false},
    {"x:25", false},
    {"\xc3\xa9.test", false},
    {"[1.2.3.4", false},
    {"1.2.3.4]", false},
    {"[1.2.3]", false},
    {"[256.1.1.1]", false},
    {"[1.2.3.4].", false},
    {"[::1]", false}, /* IPv6 needs the tag */
    {"[IPv6:]", false},
    {"[IPv6:1.2.3.4]", false},
    {"[IPv6:::1%eth0]", false},
    {"[IPv6:::1:::2]", false},
    {"[IPv6:"
     "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]",
     false},
    {"[IPv7:::1]", false},
    {"[]", false},
    {"[", false},
    {"]", false},
};

static void test_helo_is_valid(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(helo_cases) / sizeof(helo_cases[0]); i++) {
        bool got = addr_helo_is_valid(helo_cases[i].in);
        if (got != helo_cases[i].valid) {
            print_error("addr_helo_is_valid(\"%s\") = %d\n", esc(helo_cases[i].in), got);
            failures++;
        }
    }
    assert_int_equal(failures, 0);

    char name[600];
    char *d = make_domain(255);
    snprintf(name, sizeof(name), "%s", d);
    free(d);
    assert_true(addr_helo_is_valid(name));
    strcat(name, "."); /* 256 with the root dot: still fine */
    assert_true(addr_helo_is_valid(name));
    strcat(name, "."); /* two trailing dots: not */
    assert_false(addr_helo_is_valid(name));
    d = make_domain(256);
    snprintf(name, sizeof(name), "%s", d);
    free(d);
    assert_false(addr_helo_is_valid(name));
    char *l63 = repeat('h', 63), *l64 = repeat('h', 64);
    snprintf(name, sizeof(name), "%s.x", l63);
    assert_true(addr_helo_is_valid(name));
    snprintf(name, sizeof(name), "%s.x", l64);
    free(l63);
    free(l64);
    assert_false(addr_helo_is_valid(name));
    char *huge = repeat('h', 100000);
    assert_false(addr_helo_is_valid(huge));
    huge[0] = '[';
    huge[99999] = ']';
    assert_false(addr_helo_is_valid(huge));
    free(huge);
}

static void test_split_and_domain(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int ret;
        const char *local, *domain;
    } cases[] = {
        {"a@b", 0, "a", "b"},
        {"user@example.test", 0, "user", "example.test"},
        {"\"a@b\"@c", 0, "\"a@b\"", "c"}, /* '@' inside quotes is not the separator */
        {"\"John Smith\"@x.test", 0, "\"John Smith\"", "x.test"},
        {"a@b@c", 0, "a@b", "c"}, /* the last '@' */
        {"a@", 0, "a", ""},
        {"@b", 0, "", "b"},
        {"@", 0, "", ""},
        {"abc", -1, "", ""},
        {"", -1, "", ""},
        {"\"a@b\"", -1, "", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char local[ADDR_MAX], domain[ADDR_MAX];
        memset(local, 'X', sizeof(local));
        memset(domain, 'X', sizeof(domain));
        int r = addr_split(cases[i].in, local, domain);
        if (r != cases[i].ret || strcmp(local, cases[i].local) != 0 ||
            strcmp(domain, cases[i].domain) != 0)
            fail_msg("addr_split(\"%s\") = %d \"%s\" \"%s\"", esc(cases[i].in), r, esc(local),
                     esc(domain));
        const char *d = addr_domain(cases[i].in);
        if (strcmp(d, cases[i].domain) != 0)
            fail_msg("addr_domain(\"%s\") = \"%s\"", esc(cases[i].in), esc(d));
        if (r == 0 && d != strchr(cases[i].in, '\0') - strlen(cases[i].domain))
            fail_msg("addr_domain(\"%s\") does not point into the address", esc(cases[i].in));
    }

    /* parts that do not fit ADDR_MAX: -1 and both outputs empty, no overflow */
    char *big = repeat('a', 600);
    big[300] = '@';
    char local[ADDR_MAX], domain[ADDR_MAX];
    assert_int_equal(addr_split(big, local, domain), -1);
    assert_string_equal(local, "");
    assert_string_equal(domain, "");
    assert_ptr_equal(addr_domain(big), big + 301);
    big[300] = 'a';
    big[10] = '@';
    assert_int_equal(addr_split(big, local, domain), -1);
    big[10] = 'a';
    big[400] = '@';
    assert_int_equal(addr_split(big, local, domain), -1);
    free(big);
    char *edge = repeat('a', 255 + 1 + 255);
    edge[255] = '@';
    assert_int_equal(addr_split(edge, local, domain), 0);
    assert_int_equal(strlen(local), 255);
    assert_int_equal(strlen(domain), 255);
    free(edge);
}

/* The invariants that hold for any input. */
static void check_invariants(const char *s)
{
    char local[ADDR_MAX], domain[ADDR_MAX];
    int r = addr_split(s, local, domain);
    const char *d = addr_domain(s);
    if (r == 0 && strcmp(d, domain) != 0)
        fail_msg("addr_split/addr_domain disagree on \"%s\"", esc(s));
    if (addr_is_valid(s)) {
        if (r != 0 || local[0] == '\0' || !addr_domain_is_valid(domain))
            fail_msg("valid address \"%s\" splits badly", esc(s));
        if (!addr_helo_is_valid(domain))
            fail_msg("valid address domain \"%s\" is not a valid HELO", esc(domain));
        if (strlen(s) > 254)
            fail_msg("valid address longer than 254");
    }
    if (addr_domain_is_valid(s) && !addr_helo_is_valid(s))
        fail_msg("valid domain \"%s\" is not a valid HELO", esc(s));
}

/* Feed every prefix of s, each in an exactly-sized heap block (ASan sees any overread). */
static void feed_prefixes(const char *s)
{
    size_t n = strlen(s);
    for (size_t k = 0; k <= n; k++) {
        char *p = malloc(k + 1);
        assert_non_null(p);
        memcpy(p, s, k);
        p[k] = '\0';
        check_invariants(p);
        free(p);
    }
}

static void test_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++)
        feed_prefixes(addr_cases[i].in);
    for (size_t i = 0; i < sizeof(domain_cases) / sizeof(domain_cases[0]); i++)
        feed_prefixes(domain_cases[i].in);
    for (size_t i = 0; i < sizeof(helo_cases) / sizeof(helo_cases[0]); i++)
        feed_prefixes(helo_cases[i].in);
    char *a = make_address(300);
    feed_prefixes(a);
    free(a);

    /* the prefixes of one address, with the exact verdict for each */
    const char *full = "user@example.test";
    for (size_t k = 0; k <= strlen(full); k++) {
        char p[64];
        memcpy(p, full, k);
        p[k] = '\0';
        bool want = k >= strlen("user@e") && k != strlen("user@example.");
        if (addr_is_valid(p) != want)
            fail_msg("prefix \"%s\": want %d", p, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_is_valid),    cmocka_unit_test(test_addr_lengths),
        cmocka_unit_test(test_domain_is_valid),  cmocka_unit_test(test_helo_is_valid),
        cmocka_unit_test(test_split_and_domain), cmocka_unit_test(test_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
