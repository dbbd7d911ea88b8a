/* test_smtp_parse: SMTP command-line parsing (src/smtp/smtp_parse.c; hmailserver-behaviour.md
 * §1.2, §1.6, §1.7, §1.8, §14 items 16-19; replies.md "MAIL FROM", "RCPT TO").
 *
 * Table-driven cases for smtp_parse_verb, smtp_parse_mail and smtp_parse_rcpt; long inputs that
 * would overflow the fixed buffers; and every case fed again as each of its prefixes, each in an
 * exactly-sized heap block (ASan catches reads past the NUL), checking the output invariants. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_parse.h"

#define OK SMTP_PARSE_OK
#define SYNTAX SMTP_PARSE_SYNTAX
#define INVALID SMTP_PARSE_INVALID_ADDR
#define BADPARAM SMTP_PARSE_BAD_PARAM

static const char *status_name(enum smtp_parse_status s)
{
    switch (s) {
    case SMTP_PARSE_OK:
        return "OK";
    case SMTP_PARSE_SYNTAX:
        return "SYNTAX";
    case SMTP_PARSE_INVALID_ADDR:
        return "INVALID_ADDR";
    case SMTP_PARSE_BAD_PARAM:
        return "BAD_PARAM";
    }
    return "?";
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ---- verb ---- */

static const struct {
    const char *line, *verb, *args;
} verb_cases[] = {
    {"MAIL FROM:<a@b>", "MAIL", "FROM:<a@b>"},
    {"quit", "QUIT", ""},
    {"QUITX", "QUITX", ""},
    {"nOoP ", "NOOP", ""},
    {"ehlo mail.example.test", "EHLO", "mail.example.test"},
    {"HELO  x", "HELO", " x"},  /* args are not trimmed */
    {"HELO\tx", "HELO\tX", ""}, /* TAB is not a separator */
    {"", "", ""},
    {" NOOP", "", "NOOP"},
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZ x", "ABCDEFGHIJKLMNO", "x"}, /* truncated to 15 */
    {"ABCDEFGHIJKLMNO", "ABCDEFGHIJKLMNO", ""},
    {"ABCDEFGHIJKLMNOP", "ABCDEFGHIJKLMNO", ""},
    {"\xff\xfe x", "\xff\xfe", "x"}, /* no locale-dependent case mapping */
    {"\xe9hlo x", "\xe9HLO", "x"},
    {"rset \t", "RSET", "\t"},
};

static void test_verb(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(verb_cases) / sizeof(verb_cases[0]); i++) {
        char verb[SMTP_VERB_MAX];
        const char *args = NULL;
        smtp_parse_verb(verb_cases[i].line, verb, &args);
        if (strcmp(verb, verb_cases[i].verb) != 0 || args == NULL ||
            strcmp(args, verb_cases[i].args) != 0)
            fail_msg("verb case %zu: verb \"%s\" args \"%s\"", i, verb, args ? args : "(null)");
    }
    char *huge = repeat('v', 100000);
    char verb[SMTP_VERB_MAX];
    const char *args;
    smtp_parse_verb(huge, verb, &args);
    assert_int_equal(strlen(verb), SMTP_VERB_MAX - 1);
    assert_ptr_equal(args, huge + 100000);
    free(huge);
}

/* ---- MAIL ---- */

struct mail_case {
    const char *line;
    enum smtp_parse_status status;
    const char *address;
    bool size_given;
    uint64_t size;
    bool body_8bit;
    const char *bad_param;
};

static const struct mail_case mail_cases[] = {
    /* §1.6 forms */
    {"MAIL FROM:<a@b.test>", OK, "a@b.test", false, 0, false, ""},
    {"MAIL FROM: <a@b.test>", OK, "a@b.test", false, 0, false, ""},
    {"mail from:a@b.test", OK, "a@b.test", false, 0, false, ""},
    {"MAIL FROM:   a@b.test   ", OK, "a@b.test", false, 0, false, ""},
    {"Mail From:<A@B.TEST>", OK, "A@B.TEST", false, 0, false, ""},
    {"MAIL FROM:\t<a@b.test>\t", OK, "a@b.test", false, 0, false, ""},
    {"MAIL FROM:<\ta@b.test\t>", OK, "a@b.test", false, 0, false, ""}, /* inside trimmed */
    {"MAIL FROM:< a@b.test>", SYNTAX, "", false, 0, false, ""}, /* SP ends the address part */
    {"MAIL FROM: <\"John Smith\"@x.test>", OK, "\"John Smith\"@x.test", false, 0, false, ""},
    {"MAIL FROM:\"a b\"@x.test SIZE=5", OK, "\"a b\"@x.test", true, 5, false, ""},
    {"MAIL FROM:<\"a b\"@x.test> SIZE=5", OK, "\"a b\"@x.test", true, 5, false, ""},
    {"MAIL FROM:<user@[1.2.3.4]>", OK, "user@[1.2.3.4]", false, 0, false, ""},
    /* null sender */
    {"MAIL FROM: <> AUTH=<>", OK, "", false, 0, false, ""},
    {"MAIL FROM:<>", OK, "", false, 0, false, ""},
    {"MAIL FROM:", OK, "", false, 0, false, ""},
    {"MAIL FROM:    ", OK, "", false, 0, false, ""},
    {"MAIL FROM:<\t>", OK, "", false, 0, false, ""},
    {"MAIL FROM:< >", SYNTAX, "", false, 0, false, ""}, /* the SP splits "<" from ">" */
    {"MAIL FROM:<> SIZE=10", OK, "", true, 10, false, ""},
    /* syntax errors (§14 item 16) */
    {"MAIL FROM <a@b>", SYNTAX, "", false, 0, false, ""},
    {"MAIL FROM: <a@b", SYNTAX, "", false, 0, false, ""},
    {"MAIL FROM: \"", SYNTAX, "", false, 0, false, ""},
    {"MAIL FROM: <John Smith@x.test>", SYNTAX, "", false, 0, false, ""},
    {"MAIL FROM:<a@b.test>SIZE=1", SYNTAX, "", false, 0, false, ""},
    {"MAIL FROM:<a@b.test> AUTH=\"x\"", SYNTAX, "", false, 0, false, ""}, /* hMailServer rule */
    {"MAIL FROM:<\"a@b.test>", SYNTAX, "", false, 0, false, ""},
    {"MAIL FROM:<", SYNTAX, "", false, 0, false, ""},
    {"MAIL FROM:<a@b.test> <", BADPARAM, "a@b.test", false, 0, false, "<"},
    {"MAIL FROM", SYNTAX, "", false, 0, false, ""},
    {"MAIL", SYNTAX, "", false, 0, false, ""},
    {"", SYNTAX, "", false, 0, false, ""},
    {"MAIL  FROM:<a@b.test>", SYNTAX, "", false, 0, false, ""},
    {"MAIL TO:<a@b.test>", SYNTAX, "", false, 0, false, ""},
    {"RCPT TO:<a@b.test>", SYNTAX, "", false, 0, false, ""},
    {"MAIL FROM;<a@b.test>", SYNTAX, "", false, 0, false, ""},
    /* invalid addresses (§14 item 18) */
    {"MAIL FROM:<a\\b@x.test>", INVALID, "a\\b@x.test", false, 0, false, ""},
    {"MAIL FROM:<a@-x.test>", INVALID, "a@-x.test", false, 0, false, ""},
    {"MAIL FROM:<a@-x.test> SMTPUTF8", INVALID, "a@-x.test", false, 0, false, "SMTPUTF8"},
    {"MAIL FROM:<a@-x.test> SIZE=7", INVALID, "a@-x.test", true, 7, false, ""},
    {"MAIL FROM:a@b.test>", INVALID, "a@b.test>", false, 0, false, ""},
    {"MAIL FROM:>", INVALID, ">", false, 0, false, ""},
    {"MAIL FROM:<>>", INVALID, ">", false, 0, false, ""},
    {"MAIL FROM:<<a@b.test>>", INVALID, "<a@b.test>", false, 0, false, ""},
    {"MAIL FROM:<@a,@b:user@d.test>", INVALID, "@a,@b:user@d.test", false, 0, false, ""},
    {"MAIL FROM:<user>", INVALID, "user", false, 0, false, ""},
    {"MAIL FROM:<\"a\"b\"@x.test>", INVALID, "\"a\"b\"@x.test", false, 0, false, ""},
    {"MAIL FROM:<a@@b>", INVALID, "a@@b", false, 0, false, ""},
    /* parameters */
    {"MAIL FROM:<a@b.test> SIZE=1000", OK, "a@b.test", true, 1000, false, ""},
    {"MAIL FROM:<a@b.test> size=1000", OK, "a@b.test", true, 1000, false, ""},
    {"MAIL FROM:<a@b.test> SIZE=0", OK, "a@b.test", true, 0, false, ""},
    {"MAIL FROM:<a@b.test> SIZE=abc", OK, "a@b.test", true, 0, false, ""},
    {"MAIL FROM:<a@b.test> SIZE=100abc", OK, "a@b.test", true, 0, false, ""},
    {"MAIL FROM:<a@b.test> SIZE=-5", OK, "a@b.test", true, 0, false, ""},
    {"MAIL FROM:<a@b.test> SIZE=", OK, "a@b.test", true, 0, false, ""},
    {"MAIL FROM:<a@b.test> SIZE", OK, "a@b.test", true, 0, false, ""},
    {"MAIL FROM:<a@b.test> SIZE=20972544", OK, "a@b.test", true, 20972544, false, ""},
    {"MAIL FROM:<a@b.test> SIZE=18446744073709551614", OK, "a@b.test", true, UINT64_MAX - 1, false,
     ""},
    {"MAIL FROM:<a@b.test> SIZE=18446744073709551615", OK, "a@b.test", true, UINT64_MAX, false, ""},
    {"MAIL FROM:<a@b.test> SIZE=18446744073709551616", OK, "a@b.test", true, UINT64_MAX, false, ""},
    {"MAIL FROM:<a@b.test> SIZE=99999999999999999999999999999", OK, "a@b.test", true, UINT64_MAX,
     false, ""},
    {"MAIL FROM:<a@b.test> BODY=8BITMIME", OK, "a@b.test", false, 0, true, ""},
    {"MAIL FROM:<a@b.test> body=8bitmime", OK, "a@b.test", false, 0, true, ""},
    {"MAIL FROM:<a@b.test> BODY=7BIT", OK, "a@b.test", false, 0, false, ""},
    {"MAIL FROM:<a@b.test> BODY=8BITMIME BODY=7BIT", OK, "a@b.test", false, 0, false, ""},
    {"MAIL FROM:<a@b.test> AUTH=<>", OK, "a@b.test", false, 0, false, ""},
    {"MAIL FROM:<a@b.test> AUTH=someone@x.test", OK, "a@b.test", false, 0, false, ""},
    {"MAIL FROM:<a@b.test> Auth", OK, "a@b.test", false, 0, false, ""},
    {"MAIL FROM:<a@b.test> SIZE=10  BODY=8BITMIME   AUTH=<>  ", OK, "a@b.test", true, 10, true, ""},
    {"MAIL FROM:a@b.test SIZE=10 BODY=8BITMIME", OK, "a@b.test", true, 10, true, ""},
    {"MAIL FROM:<a@b.test> BODY=BINARYMIME", BADPARAM, "a@b.test", false, 0, false,
     "BODY=BINARYMIME"},
    {"MAIL FROM:<a@b.test> BODY", BADPARAM, "a@b.test", false, 0, false, "BODY"},
    {"MAIL FROM:<a@b.test> BODY=", BADPARAM, "a@b.test", false, 0, false, "BODY="},
    {"MAIL FROM:<a@b.test> SMTPUTF8", BADPARAM, "a@b.test", false, 0, false, "SMTPUTF8"},
    {"MAIL FROM:<a@b.test> RET=HDRS ENVID=x", BADPARAM, "a@b.test", false, 0, false, "RET=HDRS"},
    {"MAIL FROM:<a@b.test> SIZE=10 SMTPUTF8 RET=FULL", BADPARAM, "a@b.test", true, 10, false,
     "SMTPUTF8"},
    {"MAIL FROM:<a@b.test> SIZEX=1", BADPARAM, "a@b.test", false, 0, false, "SIZEX=1"},
    {"MAIL FROM:<a@b.test> SIZ=1", BADPARAM, "a@b.test", false, 0, false, "SIZ=1"},
    {"MAIL FROM:<a@b.test> AUTHX=1", BADPARAM, "a@b.test", false, 0, false, "AUTHX=1"},
    {"MAIL FROM:<a@b.test> =1", BADPARAM, "a@b.test", false, 0, false, "=1"},
    {"MAIL FROM:<a@b.test> x\ty", BADPARAM, "a@b.test", false, 0, false, "x\ty"},
    {"MAIL FROM:<a@b.test> \xff\xfe", BADPARAM, "a@b.test", false, 0, false, "\xff\xfe"},
    {"MAIL FROM:<> NOTIFY=NEVER", BADPARAM, "", false, 0, false, "NOTIFY=NEVER"},
};

static bool check_mail(size_t i, const struct mail_case *c, const char *line)
{
    struct smtp_mail_args m;
    memset(&m, 0x5a, sizeof(m));
    enum smtp_parse_status st = smtp_parse_mail(line, &m);
    if (st != c->status || strcmp(m.address, c->address) != 0 || m.size_given != c->size_given ||
        m.size != c->size || m.body_8bit != c->body_8bit ||
        strcmp(m.bad_param, c->bad_param) != 0) {
        print_error("mail case %zu \"%s\": %s addr \"%s\" size %d/%llu 8bit %d bad \"%s\"\n", i,
                    c->line, status_name(st), m.address, m.size_given, (unsigned long long)m.size,
                    m.body_8bit, m.bad_param);
        return false;
    }
    return true;
}

static void test_mail(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++)
        failures += !check_mail(i, &mail_cases[i], mail_cases[i].line);
    assert_int_equal(failures, 0);
}

/* ---- RCPT ---- */

struct rcpt_case {
    const char *line;
    enum smtp_parse_status status;
    const char *address;
    const char *bad_param;
};

static const struct rcpt_case rcpt_cases[] = {
    {"RCPT TO:<user@example.test>", OK, "user@example.test", ""},
    {"rcpt to: user@example.test ", OK, "user@example.test", ""},
    {"RCPT TO:   <user@example.test>   ", OK, "user@example.test", ""},
    {"RCPT TO:<user@[1.2.3.4]>", OK, "user@[1.2.3.4]", ""},
    {"RCPT TO:<\"John Smith\"@example.test>", OK, "\"John Smith\"@example.test", ""},
    {"RCPT TO:<user+tag@example.test>", OK, "user+tag@example.test", ""},
    {"RCPT TO:<user@localhost>", OK, "user@localhost", ""},
    {"RCPT TO:<user@example.test> NOTIFY=NEVER", BADPARAM, "user@example.test", "NOTIFY=NEVER"},
    {"RCPT TO:<user@example.test> ORCPT=rfc822;x@y NOTIFY=NEVER", BADPARAM, "user@example.test",
     "ORCPT=rfc822;x@y"},
    {"RCPT TO:<user@example.test> SIZE=10", BADPARAM, "user@example.test", "SIZE=10"},
    {"RCPT TO:<> NOTIFY=NEVER", BADPARAM, "", "NOTIFY=NEVER"}, /* parameters come first */
    {"RCPT TO:<a@b..c> X", BADPARAM, "a@b..c", "X"},
    {"RCPT TO:<>", INVALID, "", ""},
    {"RCPT TO:", INVALID, "", ""},
    {"RCPT TO:  ", INVALID, "", ""},
    {"RCPT TO:<a@b..c>", INVALID, "a@b..c", ""},
    {"RCPT TO:<a@@b>", INVALID, "a@@b", ""},
    {"RCPT TO:a@@b", INVALID, "a@@b", ""},
    {"RCPT TO:<a\\b@x.test>", INVALID, "a\\b@x.test", ""},
    {"RCPT TO:<postmaster>", INVALID, "postmaster", ""},
    {"RCPT TO:<@a,@b:user@d.test>", INVALID, "@a,@b:user@d.test", ""},
    {"RCPT TO <a@b>", SYNTAX, "", ""},
    {"RCPT TO:<a@b", SYNTAX, "", ""},
    {"RCPT TO: \"", SYNTAX, "", ""},
    {"RCPT TO:<John Smith@x.test>", SYNTAX, "", ""},
    {"RCPT", SYNTAX, "", ""},
    {"RCPT  TO:<a@b.test>", SYNTAX, "", ""},
    {"MAIL FROM:<a@b.test>", SYNTAX, "", ""},
};

static bool check_rcpt(size_t i, const struct rcpt_case *c, const char *line)
{
    struct smtp_rcpt_args r;
    memset(&r, 0x5a, sizeof(r));
    enum smtp_parse_status st = smtp_parse_rcpt(line, &r);
    if (st != c->status || strcmp(r.address, c->address) != 0 ||
        strcmp(r.bad_param, c->bad_param) != 0) {
        print_error("rcpt case %zu \"%s\": %s addr \"%s\" bad \"%s\"\n", i, c->line,
                    status_name(st), r.address, r.bad_param);
        return false;
    }
    return true;
}

static void test_rcpt(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++)
        failures += !check_rcpt(i, &rcpt_cases[i], rcpt_cases[i].line);
    assert_int_equal(failures, 0);
}

/* ---- long inputs: the fixed buffers never overflow ---- */

static void test_long_inputs(void **state)
{
    (void)state;
    struct smtp_mail_args m;
    struct smtp_rcpt_args r;
    char line[4096];

    /* 261-char address (§14 item 18) */
    char *local = repeat('l', 261 - strlen("@example.test"));
    char line2[4096];
    snprintf(line, sizeof(line), "RCPT TO:<%s@example.test>", local);
    snprintf(line2, sizeof(line2), "MAIL FROM:<%s@example.test>", local);
    free(local);
    assert_int_equal(smtp_parse_rcpt(line, &r), INVALID);
    assert_int_equal(strlen(r.address), ADDR_MAX - 1); /* copied truncated */
    assert_int_equal(smtp_parse_mail(line2, &m), INVALID);
    assert_int_equal(strlen(m.address), ADDR_MAX - 1);

    /* 254 fine, 255 not, and an address longer than the buffer is truncated, still INVALID */
    static const struct {
        size_t len;
        enum smtp_parse_status st;
    } lens[] = {{254, OK},           {255, INVALID},          {ADDR_MAX - 1, INVALID},
                {ADDR_MAX, INVALID}, {ADDR_MAX + 1, INVALID}, {3000, INVALID}};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        /* "u@" + labels of 50 x's */
        char addr[3100];
        size_t n = lens[i].len, j = 0;
        addr[j++] = 'u';
        addr[j++] = '@';
        while (j < n) {
            addr[j] = ((j - 2) % 51 == 50 && j + 1 < n) ? '.' : 'x';
            j++;
        }
        addr[n] = '\0';
        snprintf(line, sizeof(line), "MAIL FROM:<%s> SIZE=12", addr);
        enum smtp_parse_status st = smtp_parse_mail(line, &m);
        if (st != lens[i].st)
            fail_msg("MAIL with a %zu-char address: %s", n, status_name(st));
        assert_true(strlen(m.address) < ADDR_MAX);
        assert_true(strncmp(m.address, addr, strlen(m.address)) == 0);
        assert_true(m.size_given);
        assert_int_equal(m.size, 12);
        snprintf(line, sizeof(line), "RCPT TO:%s", addr);
        assert_int_equal(smtp_parse_rcpt(line, &r), lens[i].st);
        assert_true(strlen(r.address) < ADDR_MAX);
    }

    /* a parameter longer than the echo buffer is echoed truncated */
    char *param = repeat('P', 2000);
    snprintf(line, sizeof(line), "MAIL FROM:<a@b.test> %s", param);
    assert_int_equal(smtp_parse_mail(line, &m), BADPARAM);
    assert_int_equal(strlen(m.bad_param), SMTP_PARAM_MAX - 1);
    snprintf(line, sizeof(line), "RCPT TO:<a@b.test> %s", param);
    assert_int_equal(smtp_parse_rcpt(line, &r), BADPARAM);
    assert_int_equal(strlen(r.bad_param), SMTP_PARAM_MAX - 1);
    free(param);

    /* a 100 KB line of spaces and of quotes */
    char *huge = repeat(' ', 100000);
    memcpy(huge, "MAIL FROM:", 10);
    assert_int_equal(smtp_parse_mail(huge, &m), OK);
    assert_string_equal(m.address, "");
    memset(huge + 10, '"', 100000 - 10);
    assert_int_equal(smtp_parse_mail(huge, &m), INVALID);
    free(huge);
}

/* ---- prefixes ---- */

static void check_mail_invariants(const char *line)
{
    struct smtp_mail_args m;
    enum smtp_parse_status st = smtp_parse_mail(line, &m);
    assert_true(strlen(m.address) < ADDR_MAX);
    assert_true(strlen(m.bad_param) < SMTP_PARAM_MAX);
    if (strlen(line) < strlen("MAIL FROM:") && st != SYNTAX)
        fail_msg("short MAIL line \"%s\" not SYNTAX", line);
    switch (st) {
    case SMTP_PARSE_SYNTAX:
        if (m.address[0] || m.bad_param[0] || m.size_given || m.size || m.body_8bit)
            fail_msg("SYNTAX with fields set: \"%s\"", line);
        break;
    case SMTP_PARSE_OK:
        if (m.bad_param[0] || (m.address[0] && !addr_is_valid(m.address)))
            fail_msg("OK with bad fields: \"%s\"", line);
        break;
    case SMTP_PARSE_BAD_PARAM:
        if (!m.bad_param[0] || !strstr(line, m.bad_param) ||
            (m.address[0] && !addr_is_valid(m.address)))
            fail_msg("BAD_PARAM with bad fields: \"%s\"", line);
        break;
    case SMTP_PARSE_INVALID_ADDR:
        if (!m.address[0] || addr_is_valid(m.address))
            fail_msg("INVALID_ADDR with a valid or empty address: \"%s\"", line);
        break;
    }
}

static void check_rcpt_invariants(const char *line)
{
    struct smtp_rcpt_args r;
    enum smtp_parse_status st = smtp_parse_rcpt(line, &r);
    assert_true(strlen(r.address) < ADDR_MAX);
    assert_true(strlen(r.bad_param) < SMTP_PARAM_MAX);
    if (strlen(line) < strlen("RCPT TO:") && st != SYNTAX)
        fail_msg("short RCPT line \"%s\" not SYNTAX", line);
    if ((st == OK) != (addr_is_valid(r.address) && st != BADPARAM && st != SYNTAX))
        fail_msg("RCPT status/address disagree: \"%s\"", line);
    if ((st == BADPARAM) != (r.bad_param[0] != '\0'))
        fail_msg("RCPT BAD_PARAM/bad_param disagree: \"%s\"", line);
    if (st == BADPARAM && !strstr(line, r.bad_param))
        fail_msg("RCPT bad_param not verbatim: \"%s\"", line);
}

static void check_verb_invariants(const char *line)
{
    char verb[SMTP_VERB_MAX];
    const char *args;
    smtp_parse_verb(line, verb, &args);
    size_t n = strlen(line);
    assert_true(strlen(verb) < SMTP_VERB_MAX);
    assert_true(args >= line && args <= line + n);
    assert_null(strchr(verb, ' '));
    for (const char *p = verb; *p; p++)
        assert_false(*p >= 'a' && *p <= 'z');
}

/* Feed every prefix of s in an exactly-sized heap block. */
static void feed_prefixes(const char *s)
{
    size_t n = strlen(s);
    for (size_t k = 0; k <= n; k++) {
        char *p = malloc(k + 1);
        assert_non_null(p);
        memcpy(p, s, k);
        p[k] = '\0';
        check_verb_invariants(p);
        check_mail_invariants(p);
        check_rcpt_invariants(p);
        free(p);
    }
}

static void test_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(verb_cases) / sizeof(verb_cases[0]); i++)
        feed_prefixes(verb_cases[i].line);
    for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++)
        feed_prefixes(mail_cases[i].line);
    for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++)
        feed_prefixes(rcpt_cases[i].line);

    /* each full case again from an exactly-sized block, with its expected result */
    int failures = 0;
    for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
        char *p = strdup(mail_cases[i].line);
        assert_non_null(p);
        failures += !check_mail(i, &mail_cases[i], p);
        free(p);
    }
    for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
        char *p = strdup(rcpt_cases[i].line);
        assert_non_null(p);
        failures += !check_rcpt(i, &rcpt_cases[i], p);
        free(p);
    }
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verb),     cmocka_unit_test(test_mail),
        cmocka_unit_test(test_rcpt),     cmocka_unit_test(test_long_inputs),
        cmocka_unit_test(test_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
