/* test_smtp_client: the pure parts of the outbound SMTP client (src/smtp/smtp_client.c): the
 * reply reader (RFC 5321 §4.2 syntax, multi-line joining, the 512-byte line and 10,000-byte reply
 * limits), the EHLO keyword parser, and the DATA encoder (dot-stuffing, CR/LF repair, the
 * terminator), each table-driven; the encoder also fed one byte at a time and in every two-piece
 * split. The session itself is exercised against a fake server in test_smtp_client_live.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_client.h"

/* ---- replies ---- */

enum { MORE = SMTP_CLIENT_REPLY_MORE, DONE = SMTP_CLIENT_REPLY_DONE };
enum { TOO_LONG = SMTP_CLIENT_REPLY_TOO_LONG, INVALID = SMTP_CLIENT_REPLY_INVALID };

static const struct {
    const char *lines[4]; /* fed in order until the status is not MORE */
    int status;           /* of the last line fed */
    int code;
    const char *shown; /* smtp_client_reply_format, when DONE */
} reply_cases[] = {
    {{"250 ok"}, DONE, 250, "250 ok"},
    {{"250"}, DONE, 250, "250"},
    {{"250 "}, DONE, 250, "250"},
    {{"220 mx.example.test ESMTP ready"}, DONE, 220, "220 mx.example.test ESMTP ready"},
    {{"250-first", "250 second"}, DONE, 250, "250 first / second"},
    {{"550-5.1.1 a", "550-5.1.1 b", "550 5.1.1 c"}, DONE, 550, "550 5.1.1 a / 5.1.1 b / 5.1.1 c"},
    {{"250-", "250 ok"}, DONE, 250, "250 ok"},    /* empty lines are not shown */
    {{"250-a", "251 b"}, DONE, 250, "250 a / b"}, /* the first code counts */
    {{"354 go ahead"}, DONE, 354, "354 go ahead"},
    {{"421 4.3.2 shutting down"}, DONE, 421, "421 4.3.2 shutting down"},
    {{"250 tab\there\x01"}, DONE, 250, "250 tab?here?"}, /* control characters shown as '?' */
    {{"250-x"}, MORE, 250, NULL},
    {{"25"}, INVALID, 0, NULL},
    {{""}, INVALID, 0, NULL},
    {{"abc def"}, INVALID, 0, NULL},
    {{"250x"}, INVALID, 0, NULL},
    {{"2500"}, INVALID, 0, NULL},
    {{"150 not smtp"}, INVALID, 0, NULL}, /* Reply-code = %x32-35 %x30-35 %x30-39 */
    {{"650 no"}, INVALID, 0, NULL},
    {{"260 no"}, INVALID, 0, NULL},
    {{"25a no"}, INVALID, 0, NULL},
    {{"250-a", "xyz"}, INVALID, 250, NULL},
};

static void test_reply_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
        struct smtp_client_reply r;
        smtp_client_reply_init(&r);
        int st = -1;
        for (size_t k = 0; k < 4 && reply_cases[i].lines[k]; k++) {
            const char *l = reply_cases[i].lines[k];
            st = smtp_client_reply_feed(&r, l, strlen(l));
            if (st != MORE)
                break;
        }
        if (st != reply_cases[i].status || r.code != reply_cases[i].code)
            fail_msg("case %zu (%s): status %d code %d", i, reply_cases[i].lines[0], st, r.code);
        if (reply_cases[i].shown) {
            char out[1024];
            smtp_client_reply_format(&r, out, sizeof(out));
            assert_string_equal(out, reply_cases[i].shown);
        }
        smtp_client_reply_free(&r);
    }
}

static void test_reply_reset_and_truncate(void **state)
{
    (void)state;
    struct smtp_client_reply r;
    smtp_client_reply_init(&r);
    assert_int_equal(smtp_client_reply_feed(&r, "550-abc", 7), MORE);
    assert_int_equal(smtp_client_reply_feed(&r, "550 defgh", 9), DONE);
    char out[12];
    smtp_client_reply_format(&r, out, sizeof(out));
    assert_string_equal(out, "550 abc / d"); /* truncated to size - 1 */
    char tiny[4];
    smtp_client_reply_format(&r, tiny, sizeof(tiny));
    assert_string_equal(tiny, "550");
    smtp_client_reply_reset(&r);
    assert_int_equal(r.code, 0);
    assert_int_equal(smtp_client_reply_feed(&r, "221 bye", 7), DONE);
    smtp_client_reply_format(&r, out, sizeof(out));
    assert_string_equal(out, "221 bye");
    /* A line given with embedded NUL is kept as bytes and shown as '?'. */
    smtp_client_reply_reset(&r);
    assert_int_equal(smtp_client_reply_feed(&r, "250 a\0b", 7), DONE);
    smtp_client_reply_format(&r, out, sizeof(out));
    assert_string_equal(out, "250 a?b");
    smtp_client_reply_free(&r);
}

static void test_reply_limits(void **state)
{
    (void)state;
    char line[SMTP_CLIENT_LINE_MAX + 2];
    memset(line, 'x', sizeof(line));
    memcpy(line, "250 ", 4);
    struct smtp_client_reply r;
    smtp_client_reply_init(&r);
    /* exactly the maximum line is fine, one byte more is not */
    assert_int_equal(smtp_client_reply_feed(&r, line, SMTP_CLIENT_LINE_MAX), DONE);
    smtp_client_reply_reset(&r);
    assert_int_equal(smtp_client_reply_feed(&r, line, SMTP_CLIENT_LINE_MAX + 1), TOO_LONG);
    smtp_client_reply_reset(&r);

    /* many continuation lines: the total (codes and CRLF included) is capped */
    size_t fed = 0;
    int st = MORE;
    while (st == MORE) {
        st = smtp_client_reply_feed(&r, "250-abcdefghijklmnopqrstuvwxyz", 30);
        fed += 32;
        assert_true(fed <= SMTP_CLIENT_REPLY_MAX + 32);
    }
    assert_int_equal(st, TOO_LONG);
    assert_true(fed > SMTP_CLIENT_REPLY_MAX);
    assert_true(r.lines.len <= SMTP_CLIENT_REPLY_MAX);
    smtp_client_reply_reset(&r);

    /* empty continuation lines still count (a server cannot stream "250-" forever) */
    fed = 0;
    st = MORE;
    while (st == MORE) {
        st = smtp_client_reply_feed(&r, "250-", 4);
        fed++;
        assert_true(fed <= SMTP_CLIENT_REPLY_MAX);
    }
    assert_int_equal(st, TOO_LONG);
    assert_int_equal(fed, SMTP_CLIENT_REPLY_MAX / 6 + 1);

    /* a reply just under the total limit is accepted */
    smtp_client_reply_reset(&r);
    size_t total = 0;
    while (total + 2 * 32 <= SMTP_CLIENT_REPLY_MAX) {
        assert_int_equal(smtp_client_reply_feed(&r, "250-abcdefghijklmnopqrstuvwxyz", 30), MORE);
        total += 32;
    }
    assert_int_equal(smtp_client_reply_feed(&r, "250 abcdefghijklmnopqrstuvwxyz", 30), DONE);
    smtp_client_reply_free(&r);
}

/* ---- EHLO ---- */

static void feed_all(struct smtp_client_reply *r, const char *const *lines)
{
    smtp_client_reply_reset(r);
    for (size_t k = 0; lines[k]; k++)
        smtp_client_reply_feed(r, lines[k], strlen(lines[k]));
}

static const struct {
    const char *lines[8];
    struct smtp_client_ehlo want;
} ehlo_cases[] = {
    {{"250 mx.example.test", NULL}, {0}},
    {{"250-mx.example.test PIPELINING STARTTLS", "250 HELP", NULL}, {0}}, /* greeting ignored */
    {{"250-mx", "250-PIPELINING", "250-SIZE 10240000", "250-8BITMIME", "250-STARTTLS",
      "250 AUTH PLAIN LOGIN", NULL},
     {.pipelining = true,
      .size = true,
      .size_max = 10240000,
      .eightbitmime = true,
      .starttls = true,
      .auth = true,
      .auth_plain = true,
      .auth_login = true}},
    {{"250-mx", "250-pipelining", "250-size", "250 auth=login", NULL},
     {.pipelining = true, .size = true, .auth = true, .auth_login = true}},
    {{"250-mx", "250-AUTH CRAM-MD5 LOGIN", "250 AUTH=PLAIN", NULL},
     {.auth = true, .auth_plain = true, .auth_login = true}},
    {{"250-mx", "250-AUTH CRAM-MD5", "250 SIZE 99999999999999999999999999", NULL},
     {.auth = true, .size = true, .size_max = ~0UL}},
    {{"250-mx", "250-STARTTLSX", "250-XPIPELINING", "250-SIZEX 5", "250 PLAIN", NULL}, {0}},
    {{"250-mx", "250-AUTH PLAINX LOGINX", "250 8BITMIME", NULL},
     {.auth = true, .eightbitmime = true}},
};

static void test_ehlo_table(void **state)
{
    (void)state;
    struct smtp_client_reply r;
    smtp_client_reply_init(&r);
    for (size_t i = 0; i < sizeof(ehlo_cases) / sizeof(ehlo_cases[0]); i++) {
        feed_all(&r, ehlo_cases[i].lines);
        struct smtp_client_ehlo e;
        memset(&e, 0xff, sizeof(e));
        smtp_client_ehlo_parse(&r, &e);
        const struct smtp_client_ehlo *w = &ehlo_cases[i].want;
        if (e.pipelining != w->pipelining || e.starttls != w->starttls || e.size != w->size ||
            e.eightbitmime != w->eightbitmime || e.auth != w->auth ||
            e.auth_plain != w->auth_plain || e.auth_login != w->auth_login ||
            e.size_max != w->size_max)
            fail_msg("ehlo case %zu: p%d t%d s%d(%lu) 8%d a%d ap%d al%d", i, e.pipelining,
                     e.starttls, e.size, e.size_max, e.eightbitmime, e.auth, e.auth_plain,
                     e.auth_login);
    }
    smtp_client_reply_free(&r);
}

/* ---- DATA encoding ---- */

static const struct {
    const char *in;
    const char *wire;
} dot_cases[] = {
    {"", ".\r\n"},
    {"a\r\n", "a\r\n.\r\n"},
    {"a", "a\r\n.\r\n"}, /* CRLF added only when missing */
    {".\r\n", "..\r\n.\r\n"},
    {".", "..\r\n.\r\n"},
    {"a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
    {"..x\r\n", "...x\r\n.\r\n"},
    {"x.\r\n.y", "x.\r\n..y\r\n.\r\n"}, /* only leading dots */
    {"bare\nlf\n", "bare\r\nlf\r\n.\r\n"},
    {"bare\rcr\r", "bare\r\ncr\r\n.\r\n"},
    {"\r\r\n\n", "\r\n\r\n\r\n.\r\n"}, /* CR, CRLF, LF: three line ends */
    {"\n.a", "\r\n..a\r\n.\r\n"},
    {"\r.a", "\r\n..a\r\n.\r\n"},
    {"S: x\r\n\r\n.line\r\n..two\r\nbare\nlf\rcr\r\n.",
     "S: x\r\n\r\n..line\r\n...two\r\nbare\r\nlf\r\ncr\r\n..\r\n.\r\n"},
    {"8bit \xc3\xa9\r\n", "8bit \xc3\xa9\r\n.\r\n"},
};

static char *drain(struct evbuffer *b, size_t *len_r)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    assert_non_null(s);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    *len_r = n;
    return s;
}

static void check_wire(const char *in, size_t in_len, const char *want, size_t split, bool bytewise)
{
    struct evbuffer *b = evbuffer_new();
    struct smtp_client_dotstuff st;
    smtp_client_dotstuff_init(&st);
    if (bytewise) {
        for (size_t k = 0; k < in_len; k++)
            smtp_client_dotstuff_feed(&st, in + k, 1, b);
    } else {
        smtp_client_dotstuff_feed(&st, in, split, b);
        smtp_client_dotstuff_feed(&st, in + split, in_len - split, b);
    }
    smtp_client_dotstuff_finish(&st, b);
    size_t n;
    char *got = drain(b, &n);
    if (n != strlen(want) || memcmp(got, want, n) != 0)
        fail_msg("input \"%s\" (split %zu, bytewise %d): got \"%s\"", in, split, bytewise, got);
    free(got);
    evbuffer_free(b);
}

static void test_dotstuff_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(dot_cases) / sizeof(dot_cases[0]); i++) {
        size_t n = strlen(dot_cases[i].in);
        check_wire(dot_cases[i].in, n, dot_cases[i].wire, n, false);
        check_wire(dot_cases[i].in, n, dot_cases[i].wire, 0, true);
        for (size_t s = 0; s <= n; s++)
            check_wire(dot_cases[i].in, n, dot_cases[i].wire, s, false);
    }
}

/* The wire form never has a bare CR or LF and never an unstuffed leading dot, whatever the
 * input: random inputs over the alphabet {'.', '\r', '\n', 'a', 0x80}. */
static void test_dotstuff_invariants(void **state)
{
    (void)state;
    static const char alphabet[] = {'.', '\r', '\n', 'a', (char)0x80};
    unsigned seed = 12345;
    for (int round = 0; round < 2000; round++) {
        char in[40];
        size_t n = (size_t)(round % 40);
        for (size_t k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            in[k] = alphabet[(seed >> 16) % sizeof(alphabet)];
        }
        struct evbuffer *b = evbuffer_new();
        struct smtp_client_dotstuff st;
        smtp_client_dotstuff_init(&st);
        smtp_client_dotstuff_feed(&st, in, n, b);
        smtp_client_dotstuff_finish(&st, b);
        size_t wl;
        char *w = drain(b, &wl);
        assert_true(wl >= 3 && memcmp(w + wl - 3, ".\r\n", 3) == 0);
        assert_true(wl == 3 || (wl >= 5 && memcmp(w + wl - 5, "\r\n.\r\n", 5) == 0));
        size_t body = wl - 3; /* up to the terminator's dot */
        for (size_t k = 0; k < wl; k++) {
            if (w[k] == '\r')
                assert_true(k + 1 < wl && w[k + 1] == '\n');
            if (w[k] == '\n')
                assert_true(k > 0 && w[k - 1] == '\r');
            /* a line (before the terminator) starting with '.' starts with ".." */
            if (k < body && (k == 0 || w[k - 1] == '\n') && w[k] == '.')
                assert_true(k + 1 < body && w[k + 1] == '.');
        }
        /* Undoing the transparency gives the input with normalised line ends. */
        char norm[128];
        size_t nl = 0;
        for (size_t k = 0; k < n; k++) {
            if (in[k] == '\r') {
                norm[nl++] = '\r';
                norm[nl++] = '\n';
                if (k + 1 < n && in[k + 1] == '\n')
                    k++;
            } else if (in[k] == '\n') {
                norm[nl++] = '\r';
                norm[nl++] = '\n';
            } else {
                norm[nl++] = in[k];
            }
        }
        if (nl > 0 && norm[nl - 1] != '\n') {
            norm[nl++] = '\r';
            norm[nl++] = '\n';
        }
        char back[128];
        size_t bl = 0;
        bool bol = true;
        for (size_t k = 0; k < body; k++) {
            if (bol && w[k] == '.') {
                bol = false;
                continue; /* drop the stuffed dot */
            }
            back[bl++] = w[k];
            bol = w[k] == '\n';
        }
        assert_int_equal(bl, nl);
        assert_memory_equal(back, norm, nl);
        free(w);
        evbuffer_free(b);
    }
}

static void test_has_8bit(void **state)
{
    (void)state;
    assert_false(smtp_client_has_8bit("", 0));
    assert_false(smtp_client_has_8bit("plain ascii\r\n\x7f", 14));
    assert_true(smtp_client_has_8bit("caf\xc3\xa9", 5));
    assert_true(smtp_client_has_8bit("\x80", 1));
    assert_false(smtp_client_has_8bit("\x80", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_table),    cmocka_unit_test(test_reply_reset_and_truncate),
        cmocka_unit_test(test_reply_limits),   cmocka_unit_test(test_ehlo_table),
        cmocka_unit_test(test_dotstuff_table), cmocka_unit_test(test_dotstuff_invariants),
        cmocka_unit_test(test_has_8bit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
