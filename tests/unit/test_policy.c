/* Unit tests for policy (recipient resolution §4, relay/auth rules §2.3, size limit §1.10)
 * against the in-memory directory. Each rule of policy_rcpt_check has table rows for every reply
 * it can give; failure injection checks that every lookup point answers 451, never 550. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir/dir_mem.h"
#include "lib/log.h"
#include "policy/policy.h"

#define DELIVER_ALL                                                                                \
    (DIR_IPR_DELIVER_LL | DIR_IPR_DELIVER_LE | DIR_IPR_DELIVER_EL | DIR_IPR_DELIVER_EE)
#define OPEN DELIVER_ALL /* every direction allowed, no auth required */
/* The default ranges of design.md §5 */
#define INTERNET                                                                                   \
    (DIR_IPR_SMTP | DIR_IPR_POP3 | DIR_IPR_IMAP | DELIVER_ALL | DIR_IPR_ANTISPAM |                 \
     DIR_IPR_AUTH_LL | DIR_IPR_AUTH_LE | DIR_IPR_AUTH_EE | DIR_IPR_TLS_FOR_AUTH)
#define MY_COMPUTER                                                                                \
    (DIR_IPR_SMTP | DIR_IPR_POP3 | DIR_IPR_IMAP | DELIVER_ALL | DIR_IPR_ANTISPAM | DIR_IPR_AUTH_EE)

#define ROUTE_ROUTED 101
#define ROUTE_LISTED 102
#define ROUTE_LISTEDCA 103
#define ROUTE_WILD 104
#define ROUTE_PARTNER 105
#define ROUTE_PARTLIST 106

/* ---- fixture ---- */

static void domain(struct dir *d, const char *name, bool enabled, char plus, const char *catch_all,
                   unsigned max_kb)
{
    struct dir_domain dom = {.enabled = enabled, .plus_char = plus, .max_message_kb = max_kb};
    strcpy(dom.name, name);
    strcpy(dom.catch_all, catch_all ? catch_all : "");
    dir_mem_add_domain(d, &dom);
}

static void account(struct dir *d, const char *address, bool enabled)
{
    struct dir_account a = {.enabled = enabled};
    strcpy(a.address, address);
    dir_mem_add_account(d, &a);
}

static void alias(struct dir *d, const char *address, const char *target, bool enabled)
{
    struct dir_alias a = {.enabled = enabled};
    strcpy(a.address, address);
    strcpy(a.target, target);
    dir_mem_add_alias(d, &a);
}

/* members: comma-separated */
static void list(struct dir *d, const char *address, bool enabled, enum dir_list_mode mode,
                 const char *announcer, bool require_auth, const char *members)
{
    struct dir_list l = {.enabled = enabled, .mode = mode, .require_auth = require_auth};
    strcpy(l.address, address);
    strcpy(l.announcer, announcer ? announcer : "");
    int64_t id = dir_mem_add_list(d, &l);
    char buf[1024];
    strcpy(buf, members);
    for (char *save = NULL, *m = strtok_r(buf, ",", &save); m; m = strtok_r(NULL, ",", &save))
        dir_mem_add_list_member(d, id, m);
}

static void route(struct dir *d, int64_t id, const char *pattern, bool all, bool local_rcpt,
                  bool local_sender, const char *addresses)
{
    struct dir_route r = {.id = id,
                          .all_addresses = all,
                          .local_recipient = local_rcpt,
                          .local_sender = local_sender};
    strcpy(r.pattern, pattern);
    strcpy(r.host, "relay.example.net");
    dir_mem_add_route(d, &r);
    char buf[1024];
    strcpy(buf, addresses);
    for (char *save = NULL, *a = strtok_r(buf, ",", &save); a; a = strtok_r(NULL, ",", &save))
        dir_mem_add_route_address(d, id, a);
}

static int setup(void **state)
{
    struct dir *d = dir_mem_new();
    domain(d, "example.test", true, '+', NULL, 1000);
    dir_mem_add_domain_alias(d, "alias-domain.test", "example.test");
    domain(d, "disabled.test", false, 0, NULL, 0);
    domain(d, "noplus.test", true, 0, NULL, 0);
    domain(d, "dash.test", true, '-', NULL, 30000);
    domain(d, "catch.test", true, 0, "catcher@catch.test", 0);
    domain(d, "extcatch.test", true, 0, "sink@remote.test", 0);
    domain(d, "offcatch.test", true, 0, "off@offcatch.test", 0);
    domain(d, "loopcatch.test", true, 0, "nobody@loopcatch.test", 0);
    domain(d, "listedca.test", true, 0, "ca@listedca.test", 0);
    domain(d, "localroute.test", true, 0, NULL, 0);

    account(d, "user@example.test", true);
    account(d, "friend@example.test", true);
    account(d, "boss@example.test", true);
    account(d, "off@example.test", false);
    account(d, "a@noplus.test", true);
    account(d, "a+b@noplus.test", true);
    account(d, "bob@dash.test", true);
    account(d, "catcher@catch.test", true);
    account(d, "off@offcatch.test", false);
    account(d, "ca@listedca.test", true);
    account(d, "x@disabled.test", true);

    alias(d, "alias@example.test", "user@example.test", true);
    alias(d, "offalias@example.test", "user@example.test", false);
    alias(d, "toff@example.test", "off@example.test", true);
    alias(d, "ext-alias@example.test", "someone@remote.test", true);
    alias(d, "loop1@example.test", "LOOP2@alias-domain.test", true);
    alias(d, "loop2@example.test", "loop1@example.test", true);
    alias(d, "tolist@example.test", "memberlist@example.test", true);
    alias(d, "broken@example.test", "no-domain-here", true);
    alias(d, "toroute@example.test", "x@routed.test", true);
    alias(d, "offalias2@example.test", "friend@example.test", false);
    dir_mem_add_domain_alias(d, "routealias.test", "example.test");

    list(d, "pub@example.test", true, DIR_LIST_PUBLIC, NULL, false,
         "user@example.test,someone@remote.test,off@example.test,USER@example.test,"
         "nosuch@example.test,alias@example.test,x@routed.test");
    list(d, "memberlist@example.test", true, DIR_LIST_MEMBERS, NULL, false,
         "user@example.test,friend@alias-domain.test");
    list(d, "announce@example.test", true, DIR_LIST_ANNOUNCE, "boss@alias-domain.test", false,
         "user@example.test,friend@example.test");
    list(d, "noannouncer@example.test", true, DIR_LIST_ANNOUNCE, "", false, "user@example.test");
    list(d, "authlist@example.test", true, DIR_LIST_PUBLIC, NULL, true, "user@example.test");
    list(d, "offlist@example.test", false, DIR_LIST_PUBLIC, NULL, false, "user@example.test");
    list(d, "empty@example.test", true, DIR_LIST_PUBLIC, NULL, false, "");
    list(d, "deadlist@example.test", true, DIR_LIST_PUBLIC, NULL, false,
         "off@example.test,nosuch@example.test,offlist@example.test,x@disabled.test,"
         "offalias2@example.test");
    /* nesting */
    list(d, "outer-members@example.test", true, DIR_LIST_PUBLIC, NULL, false,
         "nosuch@example.test,friend@example.test,memberlist@example.test");
    list(d, "outer-auth@example.test", true, DIR_LIST_PUBLIC, NULL, false,
         "user@example.test,authlist@example.test");
    list(d, "outer-alias@example.test", true, DIR_LIST_PUBLIC, NULL, false, "tolist@example.test");
    list(d, "outer-off@example.test", true, DIR_LIST_PUBLIC, NULL, false,
         "offlist@example.test,friend@example.test");
    list(d, "self@example.test", true, DIR_LIST_PUBLIC, NULL, false,
         "self@example.test,user@example.test,other@example.test,SELF@alias-domain.test");
    list(d, "other@example.test", true, DIR_LIST_PUBLIC, NULL, false,
         "self@example.test,other@example.test,friend@example.test,user@example.test");

    route(d, ROUTE_ROUTED, "routed.test", true, false, false, "");
    route(d, ROUTE_LISTED, "listed.test", false, false, false, "a@listed.test");
    route(d, ROUTE_LISTEDCA, "listedca.test", false, false, false, "x@listedca.test");
    route(d, ROUTE_WILD, "*.wild.test", true, true, false, "");
    route(d, ROUTE_PARTNER, "partner.test", true, false, true, "");
    route(d, ROUTE_PARTLIST, "partlist.test", false, false, true, "boss@partlist.test");
    route(d, 107, "localroute.test", false, false, false, "r@localroute.test");
    route(d, 108, "routealias.test", false, false, false, "r@routealias.test");
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    struct dir *d = *state;
    dir_close(&d);
    return 0;
}

/* "L addr" / "R<route> addr" joined by ", "; also checks every original == rcpt. */
static void format_recipients(const struct policy_rcpt_result *res, const char *rcpt, char *out,
                              size_t size)
{
    out[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < res->recipients_count; i++) {
        const struct policy_recipient *r = &res->recipients[i];
        assert_string_equal(r->original, rcpt);
        if (r->local)
            assert_int_equal(r->route_id, 0);
        int n;
        if (r->local)
            n = snprintf(out + len, size - len, "%sL %s", i ? ", " : "", r->address);
        else
            n = snprintf(out + len, size - len, "%sR%lld %s", i ? ", " : "", (long long)r->route_id,
                         r->address);
        assert_true(n > 0 && (size_t)n < size - len);
        len += (size_t)n;
    }
}

struct rcase {
    const char *name;
    const char *sender;
    const char *rcpt;
    bool auth;
    uint32_t flags;
    enum policy_verdict verdict;
    enum reply_id reply;
    const char *expect; /* ACCEPT: the recipients (format_recipients) */
    const char *dirn;   /* NULL or "LL"/"LE"/"EL"/"EE": local_sender, local_recipient */
};

static void run_cases(struct dir *d, const struct rcase *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct rcase *c = &cases[i];
        struct policy_rcpt_request req = {.sender = c->sender,
                                          .rcpt = c->rcpt,
                                          .authenticated = c->auth,
                                          .iprange_flags = c->flags};
        struct policy_rcpt_result res;
        memset(&res, 0xa5, sizeof(res)); /* policy_rcpt_check must initialise everything */
        policy_rcpt_check(d, &req, &res);
        if (res.verdict != c->verdict || res.reply != c->reply)
            fail_msg("%s: got verdict %d reply %s, want verdict %d reply %s", c->name, res.verdict,
                     reply_info(res.reply)->name, c->verdict, reply_info(c->reply)->name);
        if (c->verdict == POLICY_ACCEPT) {
            char got[2048];
            format_recipients(&res, c->rcpt, got, sizeof(got));
            if (strcmp(got, c->expect) != 0)
                fail_msg("%s: recipients [%s], want [%s]", c->name, got, c->expect);
        } else {
            assert_null(res.recipients);
            assert_int_equal(res.recipients_count, 0);
        }
        if (c->dirn) {
            if (res.local_sender != (c->dirn[0] == 'L') ||
                res.local_recipient != (c->dirn[1] == 'L'))
                fail_msg("%s: direction %c%c, want %s", c->name, res.local_sender ? 'L' : 'E',
                         res.local_recipient ? 'L' : 'E', c->dirn);
        }
        policy_rcpt_result_free(&res);
        assert_null(res.recipients);
    }
}

#define RUN(d, cases) run_cases(d, cases, sizeof(cases) / sizeof(cases[0]))
#define EXT "sender@remote.test"
#define ACC(...) POLICY_ACCEPT, R_250_OK, __VA_ARGS__
#define REJ(r) POLICY_REJECT, r, NULL

/* ---- §4.1 resolution ---- */

static void test_accounts_aliases(void **state)
{
    static const struct rcase cases[] = {
        {"account", EXT, "user@example.test", false, OPEN, ACC("L user@example.test"), "EL"},
        {"account case", EXT, "USER@Example.TEST", false, OPEN, ACC("L user@example.test"), NULL},
        {"account inactive", EXT, "off@example.test", false, OPEN, REJ(R_ACCOUNT_INACTIVE), NULL},
        {"unknown user", EXT, "nosuch@example.test", false, OPEN, REJ(R_UNKNOWN_USER), NULL},
        {"alias -> account", EXT, "alias@example.test", false, OPEN, ACC("L user@example.test"),
         NULL},
        {"alias inactive", EXT, "offalias@example.test", false, OPEN, REJ(R_ALIAS_INACTIVE), NULL},
        {"alias -> inactive account", EXT, "toff@example.test", false, OPEN,
         REJ(R_ACCOUNT_INACTIVE), NULL},
        {"alias -> external, still local rcpt", EXT, "ext-alias@example.test", false, OPEN,
         ACC("R0 someone@remote.test"), "EL"},
        {"alias loop", EXT, "loop1@example.test", false, OPEN, REJ(R_TOO_MANY_FORWARDS), NULL},
        {"alias loop from the middle", EXT, "loop2@alias-domain.test", false, OPEN,
         REJ(R_TOO_MANY_FORWARDS), NULL},
        {"alias target without domain", EXT, "broken@example.test", false, OPEN,
         REJ(R_UNKNOWN_USER), NULL},
        {"disabled domain", EXT, "x@disabled.test", false, OPEN, REJ(R_DOMAIN_DISABLED), NULL},
        {"disabled domain, no account", EXT, "nosuch@disabled.test", false, OPEN,
         REJ(R_DOMAIN_DISABLED), NULL},
        {"external", EXT, "someone@remote.test", false, OPEN, ACC("R0 someone@remote.test"), "EE"},
    };
    RUN(*state, cases);
}

static void test_domain_alias_plus(void **state)
{
    static const struct rcase cases[] = {
        {"domain alias", EXT, "user@alias-domain.test", false, OPEN, ACC("L user@example.test"),
         "EL"},
        {"domain alias + plus", EXT, "user+tag@alias-domain.test", false, OPEN,
         ACC("L user@example.test"), NULL},
        {"plus, first plus char cuts", EXT, "user+a+b@example.test", false, OPEN,
         ACC("L user@example.test"), NULL},
        {"plus, unknown base", EXT, "nosuch+tag@example.test", false, OPEN, REJ(R_UNKNOWN_USER),
         NULL},
        {"plus alias", EXT, "alias+x@example.test", false, OPEN, ACC("L user@example.test"), NULL},
        {"plus off: '+' is literal", EXT, "a+b@noplus.test", false, OPEN, ACC("L a+b@noplus.test"),
         NULL},
        {"plus off: no cut", EXT, "a+zz@noplus.test", false, OPEN, REJ(R_UNKNOWN_USER), NULL},
        {"plus char '-'", EXT, "bob-x@dash.test", false, OPEN, ACC("L bob@dash.test"), NULL},
        {"plus char '-', '+' literal", EXT, "bob+x@dash.test", false, OPEN, REJ(R_UNKNOWN_USER),
         NULL},
    };
    RUN(*state, cases);
}

static void test_catch_all(void **state)
{
    static const struct rcase cases[] = {
        {"catch-all", EXT, "nobody@catch.test", false, OPEN, ACC("L catcher@catch.test"), "EL"},
        {"account before catch-all", EXT, "catcher@catch.test", false, OPEN,
         ACC("L catcher@catch.test"), NULL},
        {"catch-all to external", EXT, "nobody@extcatch.test", false, OPEN,
         ACC("R0 sink@remote.test"), "EL"},
        {"catch-all to inactive account", EXT, "nobody@offcatch.test", false, OPEN,
         REJ(R_ACCOUNT_INACTIVE), NULL},
        {"catch-all to unknown in same domain", EXT, "x@loopcatch.test", false, OPEN,
         REJ(R_TOO_MANY_FORWARDS), NULL},
    };
    RUN(*state, cases);
}

static void test_routes(void **state)
{
    static const struct rcase cases[] = {
        {"route all addresses", EXT, "x@routed.test", false, OPEN, ACC("R101 x@routed.test"), "EE"},
        {"route address list", EXT, "a@listed.test", false, OPEN, ACC("R102 a@listed.test"), NULL},
        {"route address list, case", EXT, "A@Listed.TEST", false, OPEN, ACC("R102 A@Listed.TEST"),
         NULL},
        {"not in route list", EXT, "b@listed.test", false, OPEN, REJ(R_NOT_IN_ROUTE), NULL},
        {"not in route list, catch-all", EXT, "b@listedca.test", false, OPEN,
         ACC("L ca@listedca.test"), "EL"},
        {"in route list of a local domain", EXT, "x@listedca.test", false, OPEN,
         ACC("R103 x@listedca.test"), NULL},
        {"local account before route", EXT, "ca@listedca.test", false, OPEN,
         ACC("L ca@listedca.test"), NULL},
        {"local domain, not in route list, no catch-all", EXT, "q@localroute.test", false, OPEN,
         REJ(R_NOT_IN_ROUTE), NULL},
        {"wildcard route, treat recipient as local", EXT, "h@a.b.wild.test", false, OPEN,
         ACC("R104 h@a.b.wild.test"), "EL"},
        {"wildcard does not match the bare domain", EXT, "h@wild.test", false, OPEN,
         ACC("R0 h@wild.test"), "EE"},
        /* treat recipient as local applies on the first hop only */
        {"route local_recipient: external sender, Internet", EXT, "h@x.wild.test", false, INTERNET,
         ACC("R104 h@x.wild.test"), "EL"},
        /* the route's "treat recipient as local" (off here) decides on the first hop */
        {"route matches the domain before domain-alias mapping", EXT, "r@routealias.test", false,
         OPEN, ACC("R108 r@routealias.test"), "EE"},
        {"route of an alias domain, not in list", EXT, "nosuch@routealias.test", false, OPEN,
         REJ(R_NOT_IN_ROUTE), NULL},
        {"account of the primary domain first", EXT, "user@routealias.test", false, OPEN,
         ACC("L user@example.test"), "EL"},
        {"local alias to a routed domain stays local", EXT, "toroute@example.test", false, INTERNET,
         ACC("R101 x@routed.test"), "EL"},
        {"plain route: external sender, Internet", EXT, "x@routed.test", false, INTERNET,
         REJ(R_AUTH_REQUIRED), "EE"},
    };
    RUN(*state, cases);
}

static void test_lists(void **state)
{
    static const struct rcase cases[] = {
        {"public list: dups, inactive, unknown skipped", EXT, "pub@example.test", false, OPEN,
         ACC("L user@example.test, R0 someone@remote.test, R101 x@routed.test"), "EL"},
        {"public list via alias domain", "", "PUB@alias-domain.test", false, OPEN,
         ACC("L user@example.test, R0 someone@remote.test, R101 x@routed.test"), NULL},
        {"members: member", "user@example.test", "memberlist@example.test", false, OPEN,
         ACC("L user@example.test, L friend@example.test"), NULL},
        {"members: sender via domain alias", "USER@alias-domain.test", "memberlist@example.test",
         false, OPEN, ACC("L user@example.test, L friend@example.test"), NULL},
        {"members: member via domain alias", "friend@example.test", "memberlist@example.test",
         false, OPEN, ACC("L user@example.test, L friend@example.test"), NULL},
        {"members: stranger", EXT, "memberlist@example.test", false, OPEN, REJ(R_NOT_AUTHORIZED),
         NULL},
        {"members: stranger authenticated", EXT, "memberlist@example.test", true, OPEN,
         REJ(R_NOT_AUTHORIZED), NULL},
        {"members: null sender", "", "memberlist@example.test", false, OPEN, REJ(R_NOT_AUTHORIZED),
         NULL},
        {"members: via alias", EXT, "tolist@example.test", false, OPEN, REJ(R_NOT_AUTHORIZED),
         NULL},
        {"announce: announcer", "boss@example.test", "announce@example.test", false, OPEN,
         ACC("L user@example.test, L friend@example.test"), NULL},
        {"announce: announcer both mapped", "BOSS@alias-domain.test", "announce@example.test",
         false, OPEN, ACC("L user@example.test, L friend@example.test"), NULL},
        {"announce: member is not announcer", "user@example.test", "announce@example.test", false,
         OPEN, REJ(R_NOT_AUTHORIZED), NULL},
        {"announce: null sender", "", "announce@example.test", false, OPEN, REJ(R_NOT_AUTHORIZED),
         NULL},
        {"announce: null sender, no announcer", "", "noannouncer@example.test", false, OPEN,
         REJ(R_NOT_AUTHORIZED), NULL},
        {"require auth: unauthenticated", EXT, "authlist@example.test", false, OPEN,
         REJ(R_AUTH_REQUIRED), NULL},
        {"require auth: authenticated", EXT, "authlist@example.test", true, OPEN,
         ACC("L user@example.test"), NULL},
        {"inactive list", EXT, "offlist@example.test", false, OPEN, REJ(R_LIST_INACTIVE), NULL},
        {"inactive list, authenticated", EXT, "offlist@example.test", true, OPEN,
         REJ(R_LIST_INACTIVE), NULL},
        {"empty list", EXT, "empty@example.test", false, OPEN, REJ(R_UNKNOWN_USER), NULL},
        {"only dead members", EXT, "deadlist@example.test", false, OPEN, REJ(R_UNKNOWN_USER), NULL},
        /* nested lists: permission errors propagate, others do not */
        {"nested members list, stranger", EXT, "outer-members@example.test", false, OPEN,
         REJ(R_NOT_AUTHORIZED), NULL},
        {"nested members list, member", "user@alias-domain.test", "outer-members@example.test",
         false, OPEN, ACC("L friend@example.test, L user@example.test"), NULL},
        {"nested require-auth list", EXT, "outer-auth@example.test", false, OPEN,
         REJ(R_AUTH_REQUIRED), NULL},
        {"nested require-auth list, authenticated", EXT, "outer-auth@example.test", true, OPEN,
         ACC("L user@example.test"), NULL},
        {"nested list behind an alias", EXT, "outer-alias@example.test", false, OPEN,
         REJ(R_NOT_AUTHORIZED), NULL},
        {"nested inactive list is skipped", EXT, "outer-off@example.test", false, OPEN,
         ACC("L friend@example.test"), NULL},
        {"self-referencing lists terminate", EXT, "self@example.test", false, OPEN,
         ACC("L user@example.test, L friend@example.test"), NULL},
        {"mutually nested lists", EXT, "other@example.test", false, OPEN,
         ACC("L user@example.test, L friend@example.test"), NULL},
    };
    RUN(*state, cases);
}

/* Chains of n addresses: n-1 aliases then an account. Address k is examined at hop k. */
static void test_hop_limit(void **state)
{
    struct dir *d = *state;
    for (int n = 24; n <= 27; n++) {
        char addr[ADDR_MAX], target[ADDR_MAX];
        for (int k = 1; k < n; k++) {
            snprintf(addr, sizeof(addr), "c%d-%d@example.test", n, k);
            snprintf(target, sizeof(target), "c%d-%d@example.test", n, k + 1);
            alias(d, addr, target, true);
        }
        snprintf(addr, sizeof(addr), "c%d-%d@example.test", n, n);
        account(d, addr, true);

        char rcpt[ADDR_MAX], want[ADDR_MAX + 2];
        snprintf(rcpt, sizeof(rcpt), "c%d-1@example.test", n);
        snprintf(want, sizeof(want), "L %s", addr);
        struct rcase c = {"chain", EXT, rcpt, false, OPEN, ACC(want), NULL};
        if (n > POLICY_MAX_HOPS) {
            c.verdict = POLICY_REJECT;
            c.reply = R_TOO_MANY_FORWARDS;
        }
        run_cases(d, &c, 1);
    }
    /* policy_expand_address: hops below 1 count as 1 */
    struct policy_rcpt_result res;
    policy_expand_address(d, "", "c26-1@example.test", 0, &res);
    assert_int_equal(res.reply, R_TOO_MANY_FORWARDS);
    policy_rcpt_result_free(&res);
    policy_expand_address(d, "", "c25-1@example.test", 0, &res);
    assert_int_equal(res.reply, R_250_OK);
    assert_int_equal(res.recipients_count, 1);
    policy_rcpt_result_free(&res);
    policy_expand_address(d, "", "c25-2@example.test", 2, &res);
    assert_int_equal(res.reply, R_250_OK);
    policy_rcpt_result_free(&res);
    policy_expand_address(d, "", "c25-2@example.test", 3, &res);
    assert_int_equal(res.reply, R_TOO_MANY_FORWARDS);
    policy_rcpt_result_free(&res);

    /* catch-all redirections count as hops too: 24 aliases then an unknown address in
     * catch.test -> catch-all address at hop 26 */
    for (int k = 1; k <= 24; k++) {
        char addr[ADDR_MAX], target[ADDR_MAX];
        snprintf(addr, sizeof(addr), "ca-%d@example.test", k);
        if (k < 24)
            snprintf(target, sizeof(target), "ca-%d@example.test", k + 1);
        else
            snprintf(target, sizeof(target), "unknown@catch.test");
        alias(d, addr, target, true);
    }
    static const struct rcase c2[] = {
        {"catch-all at hop 26", EXT, "ca-1@example.test", false, OPEN, REJ(R_TOO_MANY_FORWARDS),
         NULL},
        {"catch-all at hop 25", EXT, "ca-2@example.test", false, OPEN, ACC("L catcher@catch.test"),
         NULL},
    };
    RUN(d, c2);
}

/* The alias loop is found by loop detection, long before the hop limit. */
static void test_loop_detected_early(void **state)
{
    struct dir *d = *state;
    unsigned before = dir_mem_lookups(d);
    static const struct rcase c[] = {
        {"alias loop", EXT, "loop1@example.test", false, OPEN, REJ(R_TOO_MANY_FORWARDS), NULL},
    };
    RUN(d, c);
    unsigned n = dir_mem_lookups(d) - before;
    if (n > 20)
        fail_msg("loop took %u lookups", n);
}

/* A list met first deep in the tree (near the hop limit) and then again near the top must still
 * be walked fully from the top: both for permission checks and for expansion. */
static void test_list_met_deep_then_shallow(void **state)
{
    struct dir *d = *state;
    char addr[ADDR_MAX], target[ADDR_MAX];
    /* e1 -> ... -> e23 -> deepcheck: met at hop 25 from top2, at hop 2 directly */
    for (int k = 1; k <= 23; k++) {
        snprintf(addr, sizeof(addr), "e%d@example.test", k);
        if (k < 23)
            snprintf(target, sizeof(target), "e%d@example.test", k + 1);
        else
            strcpy(target, "deepcheck@example.test");
        alias(d, addr, target, true);
        snprintf(addr, sizeof(addr), "f%d@example.test", k);
        if (k < 23)
            snprintf(target, sizeof(target), "f%d@example.test", k + 1);
        else
            strcpy(target, "deeplist@example.test");
        alias(d, addr, target, true);
    }
    list(d, "deepcheck@example.test", true, DIR_LIST_PUBLIC, NULL, false,
         "memberlist@example.test");
    list(d, "top2@example.test", true, DIR_LIST_PUBLIC, NULL, false,
         "e1@example.test,deepcheck@example.test");
    account(d, "deepuser@example.test", true);
    list(d, "deeplist@example.test", true, DIR_LIST_PUBLIC, NULL, false, "deepuser@example.test");
    list(d, "top3@example.test", true, DIR_LIST_PUBLIC, NULL, false,
         "f1@example.test,deeplist@example.test");
    list(d, "top4@example.test", true, DIR_LIST_PUBLIC, NULL, false, "f1@example.test");
    static const struct rcase c[] = {
        {"deep then shallow: permission", EXT, "top2@example.test", false, OPEN,
         REJ(R_NOT_AUTHORIZED), NULL},
        {"deep then shallow: permission, member", "user@example.test", "top2@example.test", false,
         OPEN, ACC("L user@example.test, L friend@example.test"), NULL},
        {"deep then shallow: expansion", EXT, "top3@example.test", false, OPEN,
         ACC("L deepuser@example.test"), NULL},
        {"deep only: dropped", EXT, "top4@example.test", false, OPEN, REJ(R_UNKNOWN_USER), NULL},
    };
    RUN(d, c);
}

/* ---- §2.3 relay and auth ---- */

static void test_relay_matrix(void **state)
{
    static const struct rcase cases[] = {
        /* Internet, unauthenticated */
        {"I: ext->local", EXT, "user@example.test", false, INTERNET, ACC("L user@example.test"),
         "EL"},
        {"I: null->local", "", "user@example.test", false, INTERNET, ACC("L user@example.test"),
         "EL"},
        {"I: ext->ext (open relay)", EXT, "x@remote.test", false, INTERNET, REJ(R_AUTH_REQUIRED),
         "EE"},
        {"I: local->local (spoofed)", "user@example.test", "friend@example.test", false, INTERNET,
         REJ(R_AUTH_REQUIRED), "LL"},
        {"I: alias-domain sender is local", "nobody@alias-domain.test", "friend@example.test",
         false, INTERNET, REJ(R_AUTH_REQUIRED), "LL"},
        {"I: local->ext", "user@example.test", "x@remote.test", false, INTERNET,
         REJ(R_AUTH_REQUIRED), "LE"},
        {"I: disabled-domain sender is external", "x@disabled.test", "user@example.test", false,
         INTERNET, ACC("L user@example.test"), "EL"},
        {"I: route local_sender -> local", "p@partner.test", "user@example.test", false, INTERNET,
         REJ(R_AUTH_REQUIRED), "LL"},
        {"I: route local_sender, listed", "boss@partlist.test", "x@remote.test", false, INTERNET,
         REJ(R_AUTH_REQUIRED), "LE"},
        {"I: route local_sender, not listed", "eve@partlist.test", "user@example.test", false,
         INTERNET, ACC("L user@example.test"), "EL"},
        {"I: route without local_sender", "x@routed.test", "user@example.test", false, INTERNET,
         ACC("L user@example.test"), "EL"},
        /* Internet, authenticated */
        {"I auth: ext->ext", EXT, "x@remote.test", true, INTERNET, ACC("R0 x@remote.test"), "EE"},
        {"I auth: local->local", "user@example.test", "friend@example.test", true, INTERNET,
         ACC("L friend@example.test"), "LL"},
        {"I auth: local->ext", "user@example.test", "x@remote.test", true, INTERNET,
         ACC("R0 x@remote.test"), "LE"},
        /* My computer */
        {"M: ext->ext", EXT, "x@remote.test", false, MY_COMPUTER, REJ(R_AUTH_REQUIRED), "EE"},
        {"M auth: ext->ext", EXT, "x@remote.test", true, MY_COMPUTER, ACC("R0 x@remote.test"),
         "EE"},
        {"M: local->ext", "user@example.test", "x@remote.test", false, MY_COMPUTER,
         ACC("R0 x@remote.test"), "LE"},
        {"M: local->local", "user@example.test", "friend@example.test", false, MY_COMPUTER,
         ACC("L friend@example.test"), "LL"},
        {"M: ext->local", EXT, "user@example.test", false, MY_COMPUTER, ACC("L user@example.test"),
         "EL"},
        /* "allow deliveries" bits, checked before auth */
        {"no DELIVER_EL", EXT, "user@example.test", false, INTERNET & ~DIR_IPR_DELIVER_EL,
         REJ(R_RELAY_DENIED), "EL"},
        {"no DELIVER_EE, before 530", EXT, "x@remote.test", false, INTERNET & ~DIR_IPR_DELIVER_EE,
         REJ(R_RELAY_DENIED), "EE"},
        {"no DELIVER_EE, authenticated", EXT, "x@remote.test", true, INTERNET & ~DIR_IPR_DELIVER_EE,
         REJ(R_RELAY_DENIED), "EE"},
        {"no DELIVER_LL", "user@example.test", "friend@example.test", true,
         MY_COMPUTER & ~DIR_IPR_DELIVER_LL, REJ(R_RELAY_DENIED), "LL"},
        {"no DELIVER_LE", "user@example.test", "x@remote.test", true,
         MY_COMPUTER & ~DIR_IPR_DELIVER_LE, REJ(R_RELAY_DENIED), "LE"},
        {"AUTH_EL set", EXT, "user@example.test", false, OPEN | DIR_IPR_AUTH_EL,
         REJ(R_AUTH_REQUIRED), "EL"},
        {"AUTH_EL set, authenticated", EXT, "user@example.test", true, OPEN | DIR_IPR_AUTH_EL,
         ACC("L user@example.test"), "EL"},
        {"no flags at all", EXT, "user@example.test", true, 0, REJ(R_RELAY_DENIED), NULL},
        /* the recipient checks answer before the relay check */
        {"unknown user before relay", EXT, "nosuch@example.test", false, 0, REJ(R_UNKNOWN_USER),
         NULL},
        {"inactive before auth", EXT, "off@example.test", false, INTERNET, REJ(R_ACCOUNT_INACTIVE),
         NULL},
        {"list auth before relay", EXT, "authlist@example.test", false, 0, REJ(R_AUTH_REQUIRED),
         NULL},
        {"empty list after relay", EXT, "empty@example.test", false, 0, REJ(R_RELAY_DENIED), NULL},
    };
    RUN(*state, cases);
}

/* The same decisions with the flags of the default ranges looked up by client IP. */
static void test_default_ranges_by_ip(void **state)
{
    struct dir *d = *state;
    struct dir_iprange r = {.priority = 10, .flags = INTERNET};
    strcpy(r.name, "Internet");
    ipaddr_parse("0.0.0.0", &r.from);
    ipaddr_parse("255.255.255.255", &r.to);
    dir_mem_add_iprange(d, &r);
    r = (struct dir_iprange){.priority = 30, .flags = MY_COMPUTER};
    strcpy(r.name, "My computer");
    ipaddr_parse("127.0.0.1", &r.from);
    ipaddr_parse("127.0.0.1", &r.to);
    dir_mem_add_iprange(d, &r);

    static const struct {
        const char *ip, *sender, *rcpt;
        bool auth;
        enum reply_id want;
    } cases[] = {
        {"127.0.0.2", EXT, "user@example.test", false, R_250_OK},
        {"127.0.0.2", EXT, "x@remote.test", false, R_AUTH_REQUIRED},
        {"127.0.0.2", "user@example.test", "friend@example.test", false, R_AUTH_REQUIRED},
        {"127.0.0.2", EXT, "x@remote.test", true, R_250_OK},
        {"127.0.0.1", EXT, "x@remote.test", false, R_AUTH_REQUIRED},
        {"127.0.0.1", EXT, "x@remote.test", true, R_250_OK},
        {"127.0.0.1", "user@example.test", "x@remote.test", false, R_250_OK},
        {"127.0.0.1", "user@example.test", "friend@example.test", false, R_250_OK},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ipaddr ip;
        assert_int_equal(ipaddr_parse(cases[i].ip, &ip), 0);
        struct dir_iprange range;
        assert_int_equal(dir_iprange_match(d, &ip, &range), DIR_OK);
        struct policy_rcpt_request req = {.sender = cases[i].sender,
                                          .rcpt = cases[i].rcpt,
                                          .authenticated = cases[i].auth,
                                          .iprange_flags = range.flags};
        struct policy_rcpt_result res;
        policy_rcpt_check(d, &req, &res);
        if (res.reply != cases[i].want)
            fail_msg("case %zu (%s %s -> %s): got %s", i, cases[i].ip, cases[i].sender,
                     cases[i].rcpt, reply_info(res.reply)->name);
        assert_int_equal(res.verdict, cases[i].want == R_250_OK ? POLICY_ACCEPT : POLICY_REJECT);
        policy_rcpt_result_free(&res);
    }
}

static void test_sender_is_local(void **state)
{
    struct dir *d = *state;
    static const struct {
        const char *sender;
        bool local;
    } cases[] = {
        {"", false},
        {"user@example.test", true},
        {"anyone@EXAMPLE.test", true}, /* the account need not exist */
        {"x@alias-domain.test", true},
        {"x@disabled.test", false},
        {"x@remote.test", false},
        {"p@partner.test", true},
        {"boss@partlist.test", true},
        {"BOSS@partlist.test", true},
        {"eve@partlist.test", false},
        {"x@routed.test", false},
        {"x@a.wild.test", false}, /* treat-recipient-as-local only */
        {"no-at-sign", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool local = !cases[i].local;
        assert_int_equal(policy_sender_is_local(d, cases[i].sender, &local), DIR_OK);
        if (local != cases[i].local)
            fail_msg("%s: local=%d", cases[i].sender, local);
    }
    bool local = true;
    assert_int_equal(policy_sender_is_local(d, NULL, &local), DIR_OK);
    assert_false(local);
}

static void test_max_message_kb(void **state)
{
    struct dir *d = *state;
    static const struct {
        const char *sender;
        unsigned global, want;
    } cases[] = {
        {"user@example.test", 20480, 1000}, /* domain limit lower */
        {"user@alias-domain.test", 20480, 1000},
        {"user@example.test", 0, 1000},  /* global unlimited */
        {"user@example.test", 500, 500}, /* global lower */
        {"bob@dash.test", 20480, 20480}, /* domain limit higher */
        {"bob@dash.test", 0, 30000},
        {"a@noplus.test", 20480, 20480}, /* no domain limit */
        {"a@noplus.test", 0, 0},
        {"x@remote.test", 20480, 20480},
        {"", 20480, 20480},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned kb = 12345;
        assert_int_equal(policy_max_message_kb(d, cases[i].sender, cases[i].global, &kb), DIR_OK);
        if (kb != cases[i].want)
            fail_msg("%s global %u: got %u want %u", cases[i].sender, cases[i].global, kb,
                     cases[i].want);
    }
    unsigned kb = 0;
    dir_mem_fail_next(d, DIR_TEMPFAIL);
    assert_int_equal(policy_max_message_kb(d, "user@example.test", 20480, &kb), DIR_TEMPFAIL);
    assert_int_equal(kb, 20480);
    bool local = true;
    dir_mem_fail_next(d, DIR_PERMFAIL);
    assert_int_equal(policy_sender_is_local(d, "user@example.test", &local), DIR_PERMFAIL);
    assert_false(local);
}

static void test_address_map(void **state)
{
    struct dir *d = *state;
    char out[ADDR_MAX];
    assert_int_equal(policy_address_map(d, "Joe@Alias-Domain.test", out), DIR_OK);
    assert_string_equal(out, "Joe@example.test");
    assert_int_equal(policy_address_map(d, "joe@remote.test", out), DIR_OK);
    assert_string_equal(out, "joe@remote.test");
    assert_int_equal(policy_address_map(d, "", out), DIR_OK);
    assert_string_equal(out, "");
    dir_mem_fail_next(d, DIR_TEMPFAIL);
    assert_int_equal(policy_address_map(d, "joe@alias-domain.test", out), DIR_TEMPFAIL);
    assert_string_equal(out, "joe@alias-domain.test");
}

/* ---- delivery-time forwarding ---- */

static void test_expand_address(void **state)
{
    struct dir *d = *state;
    static const struct {
        const char *sender, *address;
        int hops;
        enum policy_verdict verdict;
        enum reply_id reply;
        const char *expect;
    } cases[] = {
        {"user@example.test", "friend@alias-domain.test", 1, ACC("L friend@example.test")},
        {"user@example.test", "alias@example.test", 2, ACC("L user@example.test")},
        {"user@example.test", "x@remote.test", 2, ACC("R0 x@remote.test")},
        {"user@example.test", "x@routed.test", 2, ACC("R101 x@routed.test")},
        {"user@example.test", "user@example.test", 25, ACC("L user@example.test")},
        {"user@example.test", "user@example.test", 26, REJ(R_TOO_MANY_FORWARDS)},
        {"user@example.test", "alias@example.test", 25, REJ(R_TOO_MANY_FORWARDS)},
        {"user@example.test", "user@example.test", 0, ACC("L user@example.test")},
        {"user@example.test", "nosuch@example.test", 2, REJ(R_UNKNOWN_USER)},
        {"user@example.test", "off@example.test", 2, REJ(R_ACCOUNT_INACTIVE)},
        {"user@example.test", "offlist@example.test", 2, REJ(R_LIST_INACTIVE)},
        {"user@example.test", "x@disabled.test", 2, REJ(R_DOMAIN_DISABLED)},
        {"user@example.test", "b@listed.test", 2, REJ(R_NOT_IN_ROUTE)},
        {"user@example.test", "loop1@example.test", 2, REJ(R_TOO_MANY_FORWARDS)},
        {"user@example.test", "empty@example.test", 2, REJ(R_UNKNOWN_USER)},
        /* no list permission checks at delivery time */
        {"user@example.test", "authlist@example.test", 2, ACC("L user@example.test")},
        {"x@remote.test", "memberlist@example.test", 2,
         ACC("L user@example.test, L friend@example.test")},
        {"", "announce@example.test", 2, ACC("L user@example.test, L friend@example.test")},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct policy_rcpt_result res;
        memset(&res, 0xa5, sizeof(res));
        policy_expand_address(d, cases[i].sender, cases[i].address, cases[i].hops, &res);
        if (res.verdict != cases[i].verdict || res.reply != cases[i].reply)
            fail_msg("%s (hops %d): got %s want %s", cases[i].address, cases[i].hops,
                     reply_info(res.reply)->name, reply_info(cases[i].reply)->name);
        if (cases[i].verdict == POLICY_ACCEPT) {
            char got[1024];
            format_recipients(&res, cases[i].address, got, sizeof(got));
            if (strcmp(got, cases[i].expect) != 0)
                fail_msg("%s: recipients [%s], want [%s]", cases[i].address, got, cases[i].expect);
        } else {
            assert_null(res.recipients);
        }
        policy_rcpt_result_free(&res);
    }
}

/* ---- directory failures ---- */

/* Fail each lookup a check makes, one at a time: every one must answer 451 Temporary lookup
 * failure and hand back no recipients. */
static void test_tempfail_each_lookup(void **state)
{
    struct dir *d = *state;
    static const struct {
        const char *sender, *rcpt;
        bool auth;
        uint32_t flags;
    } cases[] = {
        {EXT, "user@example.test", false, INTERNET},
        {EXT, "nosuch@example.test", false, INTERNET}, /* would be Unknown user */
        {EXT, "user+tag@alias-domain.test", false, INTERNET},
        {EXT, "alias@example.test", false, INTERNET},
        {EXT, "nobody@catch.test", false, INTERNET},
        {EXT, "b@listedca.test", false, INTERNET},
        {EXT, "b@listed.test", false, INTERNET},
        {EXT, "a@listed.test", true, INTERNET},
        {"boss@partlist.test", "x@remote.test", true, INTERNET},
        {"user@alias-domain.test", "outer-members@example.test", false, INTERNET},
        {"boss@example.test", "announce@example.test", false, INTERNET},
        {EXT, "self@example.test", false, INTERNET},
        {EXT, "pub@example.test", false, INTERNET},
        {EXT, "empty@example.test", false, INTERNET},
        {EXT, "outer-auth@example.test", true, INTERNET},
    };
    const enum dir_result failures[] = {DIR_TEMPFAIL, DIR_PERMFAIL};
    unsigned total = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct policy_rcpt_request req = {.sender = cases[i].sender,
                                          .rcpt = cases[i].rcpt,
                                          .authenticated = cases[i].auth,
                                          .iprange_flags = cases[i].flags};
        struct policy_rcpt_result res;
        unsigned before = dir_mem_lookups(d);
        policy_rcpt_check(d, &req, &res);
        unsigned n = dir_mem_lookups(d) - before;
        assert_true(n > 0);
        assert_int_not_equal(res.verdict, POLICY_TEMPFAIL);
        policy_rcpt_result_free(&res);
        for (unsigned k = 0; k < n; k++) {
            for (size_t f = 0; f < 2; f++) {
                dir_mem_fail_at(d, k, failures[f]);
                memset(&res, 0xa5, sizeof(res));
                policy_rcpt_check(d, &req, &res);
                if (res.verdict != POLICY_TEMPFAIL || res.reply != R_TEMP_LOOKUP)
                    fail_msg("%s: failing lookup %u of %u gave %s", cases[i].rcpt, k, n,
                             reply_info(res.reply)->name);
                assert_null(res.recipients);
                assert_int_equal(res.recipients_count, 0);
                policy_rcpt_result_free(&res);
                total++;
            }
        }
        dir_mem_fail_at(d, 0, DIR_OK);
    }
    assert_true(total > 100);

    /* a dead database: every entry point */
    dir_mem_fail_all(d, DIR_TEMPFAIL);
    struct policy_rcpt_request req = {.sender = EXT, .rcpt = "nosuch@example.test"};
    struct policy_rcpt_result res;
    policy_rcpt_check(d, &req, &res);
    assert_int_equal(res.verdict, POLICY_TEMPFAIL);
    assert_int_equal(res.reply, R_TEMP_LOOKUP);
    policy_rcpt_result_free(&res);
    policy_expand_address(d, "user@example.test", "nosuch@example.test", 2, &res);
    assert_int_equal(res.verdict, POLICY_TEMPFAIL);
    assert_int_equal(res.reply, R_TEMP_LOOKUP);
    policy_rcpt_result_free(&res);
    bool local;
    assert_int_equal(policy_sender_is_local(d, "x@remote.test", &local), DIR_TEMPFAIL);
    dir_mem_fail_all(d, DIR_OK);
}

/* Same for delivery-time expansion. */
static void test_tempfail_expand(void **state)
{
    struct dir *d = *state;
    const char *targets[] = {"alias@example.test", "pub@example.test", "memberlist@example.test",
                             "nobody@catch.test", "x@routed.test"};
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        struct policy_rcpt_result res;
        unsigned before = dir_mem_lookups(d);
        policy_expand_address(d, "user@example.test", targets[i], 2, &res);
        assert_int_equal(res.verdict, POLICY_ACCEPT);
        policy_rcpt_result_free(&res);
        unsigned n = dir_mem_lookups(d) - before;
        for (unsigned k = 0; k < n; k++) {
            dir_mem_fail_at(d, k, DIR_TEMPFAIL);
            policy_expand_address(d, "user@example.test", targets[i], 2, &res);
            if (res.verdict != POLICY_TEMPFAIL || res.reply != R_TEMP_LOOKUP)
                fail_msg("%s: failing lookup %u gave %s", targets[i], k,
                         reply_info(res.reply)->name);
            assert_null(res.recipients);
            policy_rcpt_result_free(&res);
        }
    }
}

/* A big list with many self-references stays cheap (no exponential walk). */
static void test_big_nested_lists(void **state)
{
    struct dir *d = *state;
    char members[1024] = "";
    for (int i = 0; i < 8; i++)
        strcat(members, "big@example.test,");
    strcat(members, "user@example.test,big2@example.test");
    list(d, "big@example.test", true, DIR_LIST_PUBLIC, NULL, false, members);
    list(d, "big2@example.test", true, DIR_LIST_PUBLIC, NULL, false,
         "big@example.test,big2@example.test,big@example.test,friend@example.test");
    unsigned before = dir_mem_lookups(d);
    static const struct rcase c[] = {
        {"big self-referencing", EXT, "big@example.test", false, OPEN,
         ACC("L user@example.test, L friend@example.test"), NULL},
    };
    RUN(d, c);
    assert_true(dir_mem_lookups(d) - before < 5000);
}

int main(void)
{
    log_init("test_policy", LOG_LEVEL_ERROR); /* the 451 warnings of the failure tests */
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_accounts_aliases),
        T(test_domain_alias_plus),
        T(test_catch_all),
        T(test_routes),
        T(test_lists),
        T(test_hop_limit),
        T(test_loop_detected_early),
        T(test_list_met_deep_then_shallow),
        T(test_relay_matrix),
        T(test_default_ranges_by_ip),
        T(test_sender_is_local),
        T(test_max_message_kb),
        T(test_address_map),
        T(test_expand_address),
        T(test_tempfail_each_lookup),
        T(test_tempfail_expand),
        T(test_big_nested_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
