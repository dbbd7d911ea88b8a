/* test_queue_bounce: bounces (queue_bounce.c) — when a bounce may be sent, the §8.6 error blocks,
 * RFC 3463 status extraction, the exact text of the human-readable part (golden strings for a
 * permanent failure and a final retry), the MIME structure and delivery-status fields, the loop
 * counter, folding/encoding of hostile input (long and 8-bit subjects, huge remote replies), and
 * queuing into a real SQLite database and data directory for a local sender (then delivered into
 * the INBOX) and a remote one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dir/dir_db.h"
#include "dir/dir_sqlite.h"
#include "lib/base64.h"
#include "lib/log.h"
#include "mail/headers.h"
#include "queue/queue.h"
#include "queue/queue_bounce.h"
#include "store/store.h"

#define HOST "mx.example.test"
#define NOW ((time_t)1725479613)

/* An original as the SMTP server stores it: our Received on top, folded Subject, loop counter. */
#define ORIG_HDR                                                                                   \
    "Received: from client.test (Unknown [127.0.0.2])\r\n"                                         \
    "\tby mx.example.test with ESMTPA\r\n"                                                         \
    "\t; Wed, 4 Sep 2024 21:53:33 +0200\r\n"                                                       \
    "From: Alice <a@example.test>\r\n"                                                             \
    "To: x@remote.test\r\n"                                                                        \
    "Subject: Hello\r\n"                                                                           \
    " there\r\n"                                                                                   \
    "Date: Wed, 4 Sep 2024 21:53:30 +0200\r\n"                                                     \
    "X-Gannet-Loop: 2\r\n"                                                                         \
    "\r\n"

/* ---- helpers: a small MIME reader for the checks ---- */

struct part {
    char *hdr; /* part header section (without the empty line) */
    char *body;
};

struct msg {
    char *top; /* top-level header section, with its empty line */
    char boundary[128];
    struct part parts[8];
    size_t nparts;
    bool closed; /* the close delimiter was found */
};

static void msg_free(struct msg *m)
{
    free(m->top);
    for (size_t i = 0; i < m->nparts; i++) {
        free(m->parts[i].hdr);
        free(m->parts[i].body);
    }
    memset(m, 0, sizeof(*m));
}

static char *hval(const char *hdr, const char *name)
{
    return store_header_value(hdr, strlen(hdr), name);
}

static void parse_msg(const char *s, struct msg *m)
{
    memset(m, 0, sizeof(*m));
    const char *he = strstr(s, "\r\n\r\n");
    assert_non_null(he);
    m->top = strndup(s, (size_t)(he - s) + 4);
    const char *b = strstr(m->top, "boundary=\"");
    assert_non_null(b);
    b += strlen("boundary=\"");
    const char *q = strchr(b, '"');
    assert_non_null(q);
    snprintf(m->boundary, sizeof(m->boundary), "%.*s", (int)(q - b), b);
    char delim[160];
    snprintf(delim, sizeof(delim), "\r\n--%s", m->boundary);
    const char *p = strstr(he + 2, delim); /* he + 2: the preamble starts after one CRLF */
    assert_non_null(p);
    for (;;) {
        p += strlen(delim);
        if (strncmp(p, "--\r\n", 4) == 0) {
            m->closed = true;
            assert_string_equal(p + 4, ""); /* nothing after the close delimiter */
            break;
        }
        assert_memory_equal(p, "\r\n", 2);
        p += 2;
        const char *next = strstr(p, delim);
        assert_non_null(next);
        const char *ph = strstr(p, "\r\n\r\n");
        assert_non_null(ph);
        assert_true(ph < next || ph == next);
        assert_true(m->nparts < 8);
        struct part *pt = &m->parts[m->nparts++];
        pt->hdr = strndup(p, (size_t)(ph - p) + 2);
        pt->body = strndup(ph + 4, (size_t)(next - (ph + 4)));
        p = next;
    }
}

/* Every line ends in CRLF (no bare CR or LF) and is at most 998 bytes. */
static void assert_wire_ok(const char *s, size_t n)
{
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r') {
            assert_true(i + 1 < n && s[i + 1] == '\n');
            i++;
            col = 0;
            continue;
        }
        assert_true(s[i] != '\n');
        col++;
        if (col > 998)
            fail_msg("line longer than 998 at offset %zu", i);
    }
    assert_true(n >= 2 && s[n - 2] == '\r' && s[n - 1] == '\n');
}

static void build_ok(const char *sender, const char *hdr, const struct queue_bounce_rcpt *r,
                     size_t n, unsigned tries, struct buf *out, struct msg *m)
{
    const char *err = NULL;
    buf_init(out, 0);
    if (queue_bounce_build(HOST, sender, hdr, r, n, tries, NOW, out, &err) != 0)
        fail_msg("build: %s", err ? err : "?");
    assert_wire_ok(out->data, out->len);
    parse_msg(out->data, m);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decode quoted-printable (soft breaks removed); malloc'ed. */
static char *qp_decode(const char *s)
{
    char *r = malloc(strlen(s) + 1), *o = r;
    while (*s) {
        if (s[0] == '=' && s[1] == '\r' && s[2] == '\n') {
            s += 3;
        } else if (s[0] == '=') {
            assert_true(hexval(s[1]) >= 0 && hexval(s[2]) >= 0);
            *o++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 3;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return r;
}

/* ---- queue_bounce_wanted ---- */

static void test_wanted(void **state)
{
    (void)state;
    static const struct {
        const char *sender;
        const char *hdr;
        bool want;
    } cases[] = {
        {NULL, NULL, false},
        {"", "Subject: x\r\n\r\n", false},
        {"a@example.test", NULL, true},
        {"a@example.test", "Subject: x\r\n\r\n", true},
        {"mailer-daemon@remote.test", NULL, false},
        {"MAILER-DAEMON@remote.test", NULL, false},
        {"Mailer-Daemon@remote.test", NULL, false},
        {"\"mailer-daemon\"@remote.test", NULL, false},
        {"mailer-daemon", NULL, false},
        {"mailer-daemons@remote.test", NULL, true},
        {"xmailer-daemon@remote.test", NULL, true},
        {"a@mailer-daemon.test", NULL, true},
        {"a@x.test", "Auto-Submitted: no\r\n\r\n", true},
        {"a@x.test", "auto-submitted: NO\r\n\r\n", true},
        {"a@x.test", "Auto-Submitted: no (not automatic)\r\n\r\n", true},
        {"a@x.test", "Auto-Submitted: no; x=y\r\n\r\n", true},
        {"a@x.test", "Auto-Submitted: auto-generated\r\n\r\n", false},
        {"a@x.test", "Auto-Submitted: auto-replied\r\n\r\n", false},
        {"a@x.test", "Auto-Submitted: auto-notified; owner-email=x@y\r\n\r\n", false},
        {"a@x.test", "Auto-Submitted: nope\r\n\r\n", false},
        {"a@x.test", "Auto-Submitted:\r\n\r\n", false},
        {"a@x.test", "Subject: a\r\nAuto-Submitted:\r\n auto-replied\r\n\r\n", false},
        {"a@x.test", "Subject: a\nAuto-Submitted: auto-replied\n\n", false},
        /* a header-like line in the body does not count */
        {"a@x.test", "Subject: a\r\n\r\nAuto-Submitted: auto-generated\r\n", true},
        {"a@x.test", "X-Gannet-Loop: 4\r\n\r\n", true},
        {"a@x.test", "X-Gannet-Loop: 5\r\n\r\n", false},
        {"a@x.test", "x-gannet-loop: 17\r\n\r\n", false},
        {"a@x.test", "X-Gannet-Loop: 99999999999999999999999\r\n\r\n", false},
        {"a@x.test", "X-Gannet-Loop: junk\r\n\r\n", true},
        {"a@x.test", "X-Gannet-Loop-Other: 9\r\n\r\n", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = queue_bounce_wanted(cases[i].sender, cases[i].hdr);
        if (got != cases[i].want)
            fail_msg("case %zu (%s / %s): got %d", i, cases[i].sender ? cases[i].sender : "NULL",
                     cases[i].hdr ? cases[i].hdr : "NULL", got);
    }
}

/* ---- error blocks and status ---- */

static void test_error_blocks(void **state)
{
    (void)state;
    char out[QUEUE_BOUNCE_ERROR_MAX];
    assert_int_equal(queue_bounce_error_remote("127.0.0.5", "RCPT TO:<x@y.test>",
                                               "550 No such user", out, sizeof(out)),
                     0);
    assert_string_equal(out, "   Error Type: SMTP\r\n"
                             "   Remote server (127.0.0.5) issued an error.\r\n"
                             "   Gannet sent: RCPT TO:<x@y.test>\r\n"
                             "   Remote server replied: 550 No such user\r\n");
    /* A multi-line reply stays on one line. */
    assert_int_equal(
        queue_bounce_error_remote("::1", "DATA", "554-first\r\n554 second\r\n", out, sizeof(out)),
        0);
    assert_non_null(strstr(out, "   Remote server replied: 554-first 554 second\r\n"));

    assert_int_equal(queue_bounce_error_connection(QUEUE_BOUNCE_TEXT_TIMEOUT, out, sizeof(out)), 0);
    assert_string_equal(out,
                        "   Error Type: SMTP\r\n"
                        "   Connection to recipients server failed.\r\n"
                        "   Error: There was a timeout while talking to the remote server.\r\n");
    assert_int_equal(queue_bounce_error_loop("127.0.0.1", 25, out, sizeof(out)), 0);
    assert_string_equal(out, "   Error Type: SMTP\r\n"
                             "   Connection to recipients server failed.\r\n"
                             "   Error: Could not connect to 127.0.0.1 on port 25 since this "
                             "would mean connecting to myself. The mail server software tried "
                             "to deliver e-mail to the local machine.\r\n");

    assert_int_equal(queue_bounce_error_text(QUEUE_BOUNCE_TEXT_NO_MX, out, sizeof(out)), 0);
    assert_string_equal(out, "   Error Type: SMTP\r\n"
                             "   Error Description: No mail servers appear to exists for the "
                             "recipient's address.\r\n"
                             "   Additional information: Please check that you have not "
                             "misspelled the recipient's email address.\r\n");
    assert_int_equal(queue_bounce_error_text(QUEUE_BOUNCE_TEXT_DNS_FAILED, out, sizeof(out)), 0);
    assert_string_equal(out, "   Error Type: SMTP\r\n"
                             "   Error Description: Unable to find the recipient's email "
                             "server. The DNS query has failed.\r\n");
    /* §4.5 quota entry. */
    assert_int_equal(queue_bounce_error_quota(out, sizeof(out)), 0);
    assert_string_equal(out, "   Error Type: SMTP\r\n"
                             "   Error Description: Inbox is full\r\n"
                             "   Additional information: The recipients inbox is full.\r\n");

    /* Too small: -1, still terminated. */
    char small[24];
    assert_int_equal(queue_bounce_error_quota(small, sizeof(small)), -1);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_int_equal(queue_bounce_error_text("x", small, 0), -1);
}

static void test_status(void **state)
{
    (void)state;
    static const struct {
        const char *reply;
        bool permanent;
        const char *status;
    } cases[] = {
        {"550 5.1.1 No such user", true, "5.1.1"},
        {"550-5.7.1 Rejected\r\n550 5.7.1 Rejected", true, "5.7.1"},
        {"552 5.3.4", true, "5.3.4"},
        {"451 4.7.1 Greylisted", false, "4.7.1"},
        {"550 No such user", true, "5.0.0"},
        {"451 Try later", false, "4.0.0"},
        {"550 4.1.1 class does not match", true, "5.0.0"},
        {"550 5.1 incomplete", true, "5.0.0"},
        {"550 5.1.1234 too long", true, "5.0.0"},
        {"550 5.1.1x glued", true, "5.0.0"},
        {"550 6.1.1 bad class", true, "5.0.0"},
        {"550 512.1.1", true, "5.0.0"},
        {"5505.1.1", true, "5.0.0"},
        {"", false, "4.0.0"},
        {NULL, true, "5.0.0"},
        {"250 2.0.0 Ok", true, "2.0.0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[16];
        queue_bounce_status_from_reply(cases[i].reply, cases[i].permanent, out, sizeof(out));
        if (strcmp(out, cases[i].status) != 0)
            fail_msg("case %zu (%s): got %s", i, cases[i].reply ? cases[i].reply : "NULL", out);
    }
}

/* ---- the message ---- */

static void test_permanent(void **state)
{
    (void)state;
    char err[QUEUE_BOUNCE_ERROR_MAX];
    queue_bounce_error_remote("127.0.0.5", "RCPT TO:<x@remote.test>", "550 5.1.1 No such user", err,
                              sizeof(err));
    const struct queue_bounce_rcpt r[] = {{
        .address = "x@remote.test",
        .error = err,
        .remote_mta = "dns; mx.remote.test",
        .diagnostic = "smtp; 550 5.1.1 No such user",
        .permanent = true,
    }};
    struct buf out;
    struct msg m;
    build_ok("a@example.test", ORIG_HDR, r, 1, 1, &out, &m);

    /* Top-level header section. */
    char date[64];
    headers_date(NOW, date);
    char *expect_top = NULL;
    assert_true(asprintf(&expect_top,
                         "From: Mail Delivery System <mailer-daemon@" HOST ">\r\n"
                         "To: a@example.test\r\n"
                         "Subject: Message undeliverable: Hello there\r\n"
                         "Date: %s\r\n"
                         "Message-ID: %%s\r\n"
                         "MIME-Version: 1.0\r\n"
                         "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                         "\tboundary=\"%s\"\r\n"
                         "Auto-Submitted: auto-generated\r\n"
                         "X-Gannet-Loop: 3\r\n"
                         "\r\n",
                         date, m.boundary) > 0);
    char *msgid = hval(m.top, "Message-ID");
    assert_non_null(msgid);
    assert_true(msgid[0] == '<' && strlen(msgid) == 1 + 36 + 1 + strlen(HOST) + 1);
    assert_true(strcmp(msgid + 37, "@" HOST ">") == 0);
    char *expect_top2 = NULL;
    assert_true(asprintf(&expect_top2, expect_top, msgid) > 0);
    assert_string_equal(m.top, expect_top2);
    free(expect_top);
    free(expect_top2);
    free(msgid);
    assert_true(strncmp(m.boundary, "=_Gannet_", 9) == 0);

    assert_true(m.closed);
    assert_int_equal(m.nparts, 3);
    assert_string_equal(m.parts[0].hdr, "Content-Type: text/plain; charset=utf-8\r\n"
                                        "Content-Transfer-Encoding: 7bit\r\n");
    assert_string_equal(m.parts[0].body,
                        "Your message did not reach some or all of the intended recipients.\r\n"
                        "\r\n"
                        "   Sent: Wed, 4 Sep 2024 21:53:30 +0200\r\n"
                        "   Subject: Hello there\r\n"
                        "\r\n"
                        "The following recipient(s) could not be reached:\r\n"
                        "\r\n"
                        "x@remote.test\r\n"
                        "   Error Type: SMTP\r\n"
                        "   Remote server (127.0.0.5) issued an error.\r\n"
                        "   Gannet sent: RCPT TO:<x@remote.test>\r\n"
                        "   Remote server replied: 550 5.1.1 No such user\r\n"
                        "\r\n"
                        "\r\n"
                        "\r\n"
                        "Gannet\r\n");

    assert_string_equal(m.parts[1].hdr, "Content-Type: message/delivery-status\r\n");
    assert_string_equal(m.parts[1].body, "Reporting-MTA: dns; " HOST "\r\n"
                                         "Arrival-Date: Wed, 4 Sep 2024 21:53:33 +0200\r\n"
                                         "\r\n"
                                         "Final-Recipient: rfc822; x@remote.test\r\n"
                                         "Action: failed\r\n"
                                         "Status: 5.1.1\r\n"
                                         "Remote-MTA: dns; mx.remote.test\r\n"
                                         "Diagnostic-Code: smtp; 550 5.1.1 No such user\r\n");

    assert_string_equal(m.parts[2].hdr, "Content-Type: text/rfc822-headers\r\n"
                                        "Content-Transfer-Encoding: 7bit\r\n");
    /* The original header section, without its empty line. */
    assert_int_equal(strlen(m.parts[2].body), strlen(ORIG_HDR) - 2);
    assert_memory_equal(m.parts[2].body, ORIG_HDR, strlen(ORIG_HDR) - 2);
    msg_free(&m);
    buf_free(&out);
}

static void test_final_retry(void **state)
{
    (void)state;
    char e1[QUEUE_BOUNCE_ERROR_MAX], e2[QUEUE_BOUNCE_ERROR_MAX];
    queue_bounce_error_connection(QUEUE_BOUNCE_TEXT_TIMEOUT, e1, sizeof(e1));
    queue_bounce_error_text(QUEUE_BOUNCE_TEXT_NO_MX, e2, sizeof(e2));
    const struct queue_bounce_rcpt r[] = {
        {.address = "b@remote.test",
         .error = e1,
         .status = "4.4.2",
         .remote_mta = "mx.remote.test", /* type added */
         .diagnostic = NULL,
         .permanent = false},
        {.address = "c@other.test", .error = e2, .status = "bogus", .permanent = false},
    };
    struct buf out;
    struct msg m;
    build_ok("a@example.test", "Subject: Report\r\nDate: Mon, 2 Sep 2024 08:00:00 +0000\r\n\r\n", r,
             2, 5, &out, &m);
    assert_int_equal(m.nparts, 3);
    assert_string_equal(m.parts[0].body,
                        "Your message did not reach some or all of the intended recipients.\r\n"
                        "\r\n"
                        "   Sent: Mon, 2 Sep 2024 08:00:00 +0000\r\n"
                        "   Subject: Report\r\n"
                        "\r\n"
                        "The following recipient(s) could not be reached:\r\n"
                        "\r\n"
                        "b@remote.test\r\n"
                        "   Error Type: SMTP\r\n"
                        "   Connection to recipients server failed.\r\n"
                        "   Error: There was a timeout while talking to the remote server.\r\n"
                        "\r\n"
                        "c@other.test\r\n"
                        "   Error Type: SMTP\r\n"
                        "   Error Description: No mail servers appear to exists for the "
                        "recipient's address.\r\n"
                        "   Additional information: Please check that you have not misspelled "
                        "the recipient's email address.\r\n"
                        "\r\n"
                        "Tried 5 time(s)\r\n"
                        "\r\n"
                        "\r\n"
                        "\r\n"
                        "Gannet\r\n");
    /* No Received header: no Arrival-Date; invalid status replaced; no diagnostic: 4.0.0. */
    assert_string_equal(m.parts[1].body, "Reporting-MTA: dns; " HOST "\r\n"
                                         "\r\n"
                                         "Final-Recipient: rfc822; b@remote.test\r\n"
                                         "Action: failed\r\n"
                                         "Status: 4.4.2\r\n"
                                         "Remote-MTA: dns; mx.remote.test\r\n"
                                         "\r\n"
                                         "Final-Recipient: rfc822; c@other.test\r\n"
                                         "Action: failed\r\n"
                                         "Status: 4.0.0\r\n");
    char *loop = hval(m.top, "X-Gannet-Loop");
    assert_string_equal(loop, "1");
    free(loop);
    msg_free(&m);
    buf_free(&out);
}

/* Permanent entries first, then the final-retry group; quota entry as §4.5. Errors with bare LF
 * or extra trailing blank lines are normalised. */
static void test_mixed_and_quota(void **state)
{
    (void)state;
    char q[256];
    queue_bounce_error_quota(q, sizeof(q));
    const struct queue_bounce_rcpt r[] = {
        {.address = "t@remote.test",
         .error = "   Error Type: SMTP\n   Error Description: Something\n\n\n",
         .permanent = false},
        {.address = "full@example.test", .error = q, .status = "5.2.2", .permanent = true},
        {.address = "n@remote.test", .error = NULL, .permanent = true},
    };
    struct buf out;
    struct msg m;
    build_ok("s@remote.test", NULL, r, 3, 3, &out, &m);
    assert_string_equal(m.parts[0].body,
                        "Your message did not reach some or all of the intended recipients.\r\n"
                        "\r\n"
                        "   Sent: \r\n"
                        "   Subject: \r\n"
                        "\r\n"
                        "The following recipient(s) could not be reached:\r\n"
                        "\r\n"
                        "full@example.test\r\n"
                        "   Error Type: SMTP\r\n"
                        "   Error Description: Inbox is full\r\n"
                        "   Additional information: The recipients inbox is full.\r\n"
                        "\r\n"
                        "n@remote.test\r\n"
                        "\r\n"
                        "t@remote.test\r\n"
                        "   Error Type: SMTP\r\n"
                        "   Error Description: Something\r\n"
                        "\r\n"
                        "Tried 3 time(s)\r\n"
                        "\r\n"
                        "\r\n"
                        "\r\n"
                        "Gannet\r\n");
    /* The delivery-status part keeps the caller's order. */
    const char *ds = m.parts[1].body;
    const char *a = strstr(ds, "Final-Recipient: rfc822; t@remote.test\r\n");
    const char *b = strstr(ds, "Final-Recipient: rfc822; full@example.test\r\n");
    const char *c = strstr(ds, "Final-Recipient: rfc822; n@remote.test\r\n");
    assert_true(a && b && c && a < b && b < c);
    assert_non_null(strstr(ds, "Status: 5.2.2\r\n"));
    assert_non_null(strstr(ds, "Status: 5.0.0\r\n"));
    assert_non_null(strstr(ds, "Status: 4.0.0\r\n"));
    /* No original header section: the subject is empty, the headers part too. */
    char *subj = hval(m.top, "Subject");
    assert_string_equal(subj, "Message undeliverable:");
    free(subj);
    assert_string_equal(m.parts[2].body, "");
    msg_free(&m);
    buf_free(&out);
}

static void test_loop_counter(void **state)
{
    (void)state;
    static const struct {
        const char *hdr;
        const char *loop;
    } cases[] = {
        {NULL, "1"},
        {"Subject: x\r\n\r\n", "1"},
        {"X-Gannet-Loop: 0\r\n\r\n", "1"},
        {"X-Gannet-Loop: 4\r\n\r\n", "5"},
        {"x-gannet-loop:   2  \r\n\r\n", "3"},
        {"X-Gannet-Loop: junk\r\n\r\n", "1"},
    };
    const struct queue_bounce_rcpt r[] = {{.address = "x@remote.test", .permanent = true}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf out;
        struct msg m;
        build_ok("a@example.test", cases[i].hdr, r, 1, 1, &out, &m);
        char *v = hval(m.top, "X-Gannet-Loop");
        assert_non_null(v);
        if (strcmp(v, cases[i].loop) != 0)
            fail_msg("case %zu: got %s", i, v);
        free(v);
        /* The bounce itself is never bounced. */
        assert_false(queue_bounce_wanted("", out.data));
        assert_false(queue_bounce_wanted("a@example.test", out.data));
        msg_free(&m);
        buf_free(&out);
    }
}

/* Long subjects are folded (and unfold to the original), 8-bit subjects become encoded words,
 * 8-bit text goes quoted-printable, huge remote replies never make a line over 998. */
static void test_hostile_input(void **state)
{
    (void)state;
    const struct queue_bounce_rcpt r1[] = {{.address = "x@remote.test", .permanent = true}};

    /* 1. A 3000-byte subject of words. */
    char subject[3100] = "";
    while (strlen(subject) < 3000)
        strcat(subject, "word ");
    subject[strlen(subject) - 1] = '\0';
    char *hdr = NULL;
    assert_true(asprintf(&hdr, "Subject: %s\r\n\r\n", subject) > 0);
    struct buf out;
    struct msg m;
    build_ok("a@example.test", hdr, r1, 1, 1, &out, &m);
    char *v = hval(m.top, "Subject");
    char *expect = NULL;
    assert_true(asprintf(&expect, "Message undeliverable: %s", subject) > 0);
    assert_string_equal(v, expect);
    free(v);
    free(expect);
    /* folded near 78 columns */
    const char *s = strstr(m.top, "Subject: ");
    assert_true(strstr(s, "\r\n") - s <= 78);
    /* The text part is not folded: its over-long line makes it quoted-printable. */
    assert_non_null(strstr(m.parts[0].hdr, "Content-Transfer-Encoding: quoted-printable\r\n"));
    char *text = qp_decode(m.parts[0].body);
    assert_non_null(strstr(text, subject));
    free(text);
    msg_free(&m);
    buf_free(&out);
    free(hdr);

    /* 2. One 2500-byte word: split hard, lines <= 998 (checked by build_ok). */
    char word[2600];
    memset(word, 'a', 2500);
    word[2500] = '\0';
    assert_true(asprintf(&hdr, "Subject: %s\r\nX-Long: %s\r\n\r\n", word, word) > 0);
    build_ok("a@example.test", hdr, r1, 1, 1, &out, &m);
    /* The text part carries the long subject line: quoted-printable. */
    assert_non_null(strstr(m.parts[0].hdr, "Content-Transfer-Encoding: quoted-printable\r\n"));
    text = qp_decode(m.parts[0].body);
    assert_non_null(strstr(text, word));
    free(text);
    /* The long header line of the original is split too. */
    assert_non_null(strstr(m.parts[2].body, "X-Long: aaaa"));
    msg_free(&m);
    buf_free(&out);
    free(hdr);

    /* 3. An 8-bit subject. */
    const char *utf8 = "Gr\xc3\xbc\xc3\x9f"
                       "e aus K\xc3\xb6ln \xe2\x80\x94 a subject long enough to need two words";
    assert_true(
        asprintf(&hdr, "Subject: %s\r\nFrom: J\xc3\xbcrgen <j@example.test>\r\n\r\n", utf8) > 0);
    build_ok("a@example.test", hdr, r1, 1, 1, &out, &m);
    for (const char *p = m.top; *p; p++)
        assert_true((unsigned char)*p < 0x80);
    v = hval(m.top, "Subject");
    const char *prefix = "Message undeliverable: ";
    assert_true(strncmp(v, prefix, strlen(prefix)) == 0);
    /* decode the encoded words and compare */
    char decoded[512] = "";
    size_t dl = 0;
    char *save = NULL;
    int words = 0;
    for (char *w = strtok_r(v + strlen(prefix), " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        size_t wl = strlen(w);
        assert_true(strncmp(w, "=?utf-8?B?", 10) == 0 && wl <= 75);
        assert_string_equal(w + wl - 2, "?=");
        w[wl - 2] = '\0';
        unsigned char d[128];
        long n = base64_decode(w + 10, d, sizeof(d));
        assert_true(n > 0);
        /* every word is valid UTF-8 on its own: it never ends inside a sequence */
        assert_true((d[n - 1] & 0x80) == 0 || (d[n - 1] & 0xC0) == 0x80);
        memcpy(decoded + dl, d, (size_t)n);
        dl += (size_t)n;
        words++;
    }
    decoded[dl] = '\0';
    assert_true(words >= 2);
    assert_string_equal(decoded, utf8);
    free(v);
    assert_non_null(strstr(m.parts[0].hdr, "Content-Transfer-Encoding: quoted-printable\r\n"));
    assert_non_null(strstr(m.parts[0].body, "   Subject: Gr=C3=BC=C3=9Fe aus K=C3=B6ln"));
    text = qp_decode(m.parts[0].body);
    char *line = NULL;
    assert_true(asprintf(&line, "   Subject: %s\r\n", utf8) > 0);
    assert_non_null(strstr(text, line));
    free(line);
    free(text);
    /* the header part holds 8-bit bytes as they were */
    assert_non_null(strstr(m.parts[2].hdr, "Content-Transfer-Encoding: 8bit\r\n"));
    assert_non_null(strstr(m.parts[2].body, "From: J\xc3\xbcrgen <j@example.test>\r\n"));
    msg_free(&m);
    buf_free(&out);
    free(hdr);

    /* 4. A 9000-byte remote reply with 8-bit and control bytes. */
    char *reply = malloc(9100);
    strcpy(reply, "550 5.7.1 ");
    for (size_t i = strlen(reply); i < 9000; i++)
        reply[i] = (char)(i % 97 == 0 ? ' ' : i % 101 == 0 ? '\xe9' : 'r');
    reply[9000] = '\0';
    char *err = malloc(QUEUE_BOUNCE_ERROR_MAX);
    assert_int_equal(
        queue_bounce_error_remote("127.0.0.5", "DATA", reply, err, QUEUE_BOUNCE_ERROR_MAX), 0);
    char *diag = NULL;
    assert_true(asprintf(&diag, "smtp; %s", reply) > 0);
    const struct queue_bounce_rcpt r2[] = {
        {.address = "x@remote.test", .error = err, .diagnostic = diag, .permanent = true}};
    build_ok("a@example.test", "Subject: s\r\n\r\n", r2, 1, 1, &out, &m);
    text = qp_decode(m.parts[0].body);
    assert_non_null(strstr(text, reply));
    free(text);
    /* QP lines are at most 76 */
    for (const char *p = m.parts[0].body, *e; (e = strstr(p, "\r\n")); p = e + 2)
        assert_true(e - p <= 76);
    /* the delivery-status part is 7-bit, its long field folded but intact */
    for (const char *p = m.parts[1].body; *p; p++)
        assert_true((unsigned char)*p < 0x80);
    assert_non_null(strstr(m.parts[1].body, "Status: 5.7.1\r\n"));
    const char *dc = strstr(m.parts[1].body, "Diagnostic-Code: ");
    assert_non_null(dc);
    v = hval(dc, "Diagnostic-Code");
    assert_true(strncmp(v, "smtp; 550 5.7.1 rrr", 19) == 0);
    assert_int_equal(strlen(v), strlen(diag));
    assert_null(strchr(v, '\xe9'));
    free(v);
    msg_free(&m);
    buf_free(&out);
    free(diag);
    free(err);
    free(reply);
}

static void test_build_errors(void **state)
{
    (void)state;
    const struct queue_bounce_rcpt r[] = {{.address = "x@remote.test", .permanent = true}};
    const struct queue_bounce_rcpt bad[] = {{.address = "", .permanent = true}};
    struct buf out;
    const char *err = NULL;
    buf_init(&out, 0);
    assert_int_equal(queue_bounce_build(HOST, "a@x.test", NULL, r, 0, 1, NOW, &out, &err), -1);
    assert_non_null(err);
    err = NULL;
    assert_int_equal(queue_bounce_build(HOST, "", NULL, r, 1, 1, NOW, &out, &err), -1);
    assert_non_null(err);
    err = NULL;
    assert_int_equal(queue_bounce_build("", "a@x.test", NULL, r, 1, 1, NOW, &out, &err), -1);
    assert_non_null(err);
    err = NULL;
    assert_int_equal(queue_bounce_build(HOST, "a@x.test", NULL, bad, 1, 1, NOW, &out, &err), -1);
    assert_non_null(err);
    assert_int_equal(out.len, 0);
    buf_free(&out);

    /* A bounded buffer that is too small: -1 and the buffer as it was. */
    buf_init(&out, 600);
    buf_append_str(&out, "keep");
    err = NULL;
    assert_int_equal(queue_bounce_build(HOST, "a@x.test", ORIG_HDR, r, 1, 1, NOW, &out, &err), -1);
    assert_non_null(err);
    assert_string_equal(out.data, "keep");
    buf_free(&out);

    /* Appends after existing content. */
    buf_init(&out, 0);
    buf_append_str(&out, "X-Prefix: 1\r\n");
    assert_int_equal(queue_bounce_build(HOST, "a@x.test", ORIG_HDR, r, 1, 1, NOW, &out, &err), 0);
    assert_true(strncmp(out.data, "X-Prefix: 1\r\nFrom: Mail Delivery System", 39) == 0);
    buf_free(&out);
}

/* ---- queuing ---- */

struct fx {
    char dir[64];
    sqlite3 *db;
    struct dir *dir_api;
};

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *emsg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &emsg) != SQLITE_OK)
        fail_msg("%s: %s", sql, emsg ? emsg : "?");
}

static int64_t query_int(sqlite3 *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_free(sql);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static char *query_text(sqlite3 *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_free(sql);
    char *r = NULL;
    if (sqlite3_step(st) == SQLITE_ROW)
        r = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return r;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/gannet-bounce-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    const char *err = NULL;
    assert_int_equal(queue_dirs_create(f->dir, &err), 0);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/gannet.db", f->dir);
    f->db = dir_db_open(path, true, &err);
    assert_non_null(f->db);
    assert_int_equal(dir_db_migrate(f->db, &err), 0);
    exec_ok(f->db, "INSERT INTO domain (name) VALUES ('example.test')");
    exec_ok(f->db, "INSERT INTO account (domain_id, address, enabled, quota_mb, forward, keep_copy)"
                   " VALUES (1, 'a@example.test', 1, 0, '', 0)");
    f->dir_api = dir_sqlite_new(f->db);
    assert_non_null(f->dir_api);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    dir_close(&f->dir_api);
    dir_db_close(&f->db);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void make_bounce(const char *sender, struct buf *out)
{
    char err[QUEUE_BOUNCE_ERROR_MAX];
    queue_bounce_error_remote("127.0.0.5", "RCPT TO:<x@remote.test>", "550 No such user", err,
                              sizeof(err));
    const struct queue_bounce_rcpt r[] = {{.address = "x@remote.test",
                                           .error = err,
                                           .diagnostic = "smtp; 550 No such user",
                                           .permanent = true}};
    const char *e = NULL;
    buf_init(out, 0);
    assert_int_equal(queue_bounce_build(HOST, sender, ORIG_HDR, r, 1, 1, NOW, out, &e), 0);
}

static size_t files_in(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void test_enqueue_local(void **state)
{
    struct fx *f = *state;
    struct buf b;
    make_bounce("A@Example.Test", &b);
    int64_t id = 0;
    const char *err = NULL;
    if (queue_bounce_enqueue(f->db, f->dir_api, f->dir, "A@Example.Test", &b, &id, &err) != 0)
        fail_msg("enqueue: %s", err);
    assert_true(id > 0);
    char *sender = query_text(f->db, "SELECT sender FROM message WHERE id = %lld", (long long)id);
    assert_string_equal(sender, "");
    free(sender);
    assert_int_equal(
        query_int(f->db, "SELECT COUNT(*) FROM queue_rcpt WHERE message_id = %lld", (long long)id),
        1);
    char *kind = query_text(f->db, "SELECT kind || ' ' || state || ' ' || address FROM queue_rcpt");
    assert_string_equal(kind, "local queued a@example.test");
    free(kind);
    assert_int_equal(query_int(f->db, "SELECT size FROM blob"), (int64_t)b.len);

    struct queue_deliver_env env = {.data_dir = f->dir, .add_delivered_to = false};
    assert_int_equal(queue_deliver_message(f->db, f->dir_api, &env, id, &err), 0);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM message"), 0);

    int64_t acct = query_int(f->db, "SELECT id FROM account WHERE address = 'a@example.test'");
    struct buf got;
    buf_init(&got, 0);
    assert_int_equal(store_message_read(f->db, f->dir, acct, "INBOX", 1, &got, &err), 0);
    const char *rp = "Return-Path: <>\r\n";
    assert_int_equal(got.len, strlen(rp) + b.len);
    assert_memory_equal(got.data, rp, strlen(rp));
    assert_memory_equal(got.data + strlen(rp), b.data, b.len);
    char *subj = hval(got.data, "Subject");
    assert_string_equal(subj, "Message undeliverable: Hello there");
    free(subj);
    buf_free(&got);
    buf_free(&b);
}

static void test_enqueue_remote(void **state)
{
    struct fx *f = *state;
    struct buf b;
    make_bounce("s@remote.test", &b);
    int64_t id = 0;
    const char *err = NULL;
    if (queue_bounce_enqueue(f->db, f->dir_api, f->dir, "s@remote.test", &b, &id, &err) != 0)
        fail_msg("enqueue: %s", err);
    char *row = query_text(f->db,
                           "SELECT kind || ' ' || state || ' ' || address || ' ' || original"
                           " || ' ' || attempts FROM queue_rcpt WHERE message_id = %lld",
                           (long long)id);
    assert_string_equal(row, "remote queued s@remote.test s@remote.test 0");
    free(row);
    char *sender = query_text(f->db, "SELECT sender FROM message WHERE id = %lld", (long long)id);
    assert_string_equal(sender, "");
    free(sender);
    /* The blob holds the bounce byte for byte. */
    char *blob = query_text(f->db, "SELECT blob_id FROM message WHERE id = %lld", (long long)id);
    char path[PATH_MAX];
    queue_blob_path(f->dir, blob, path);
    free(blob);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *data = malloc(b.len + 16);
    size_t n = fread(data, 1, b.len + 16, fp);
    fclose(fp);
    assert_int_equal(n, b.len);
    assert_memory_equal(data, b.data, b.len);
    free(data);

    /* Local delivery leaves the remote recipient queued for the scheduler. */
    struct queue_deliver_env env = {.data_dir = f->dir, .add_delivered_to = false};
    assert_int_equal(queue_deliver_message(f->db, f->dir_api, &env, id, &err), 0);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM queue_rcpt WHERE state = 'queued'"), 1);
    buf_free(&b);
}

static void test_enqueue_fails_cleanly(void **state)
{
    struct fx *f = *state;
    struct buf b;
    make_bounce("nobody@example.test", &b);
    int64_t id = 0;
    const char *err = NULL;
    /* A local sender that does not exist cannot get the bounce. */
    assert_int_equal(
        queue_bounce_enqueue(f->db, f->dir_api, f->dir, "nobody@example.test", &b, &id, &err), -1);
    assert_non_null(err);
    assert_non_null(strstr(err, "Unknown user"));
    err = NULL;
    assert_int_equal(queue_bounce_enqueue(f->db, f->dir_api, f->dir, "", &b, &id, &err), -1);
    assert_non_null(err);

    /* A data dir without spool directories: spool failure, nothing left. */
    char bad[PATH_MAX];
    snprintf(bad, sizeof(bad), "%s/missing", f->dir);
    err = NULL;
    assert_int_equal(queue_bounce_enqueue(f->db, f->dir_api, bad, "s@remote.test", &b, &id, &err),
                     -1);
    assert_non_null(err);

    /* A database failure (no message table): the blob file is removed again. */
    exec_ok(f->db, "ALTER TABLE message RENAME TO message_gone");
    err = NULL;
    assert_int_equal(
        queue_bounce_enqueue(f->db, f->dir_api, f->dir, "s@remote.test", &b, &id, &err), -1);
    assert_non_null(err);
    exec_ok(f->db, "ALTER TABLE message_gone RENAME TO message");

    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM message"), 0);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM blob"), 0);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/spool/tmp", f->dir);
    assert_int_equal(files_in(path), 0);
    snprintf(path, sizeof(path), "%s/blobs", f->dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char sub[PATH_MAX + 300];
        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
        assert_int_equal(files_in(sub), 0);
    }
    closedir(d);
    buf_free(&b);
}

int main(void)
{
    log_init("test_queue_bounce", getenv("GANNET_TEST_LOG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wanted),
        cmocka_unit_test(test_error_blocks),
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_permanent),
        cmocka_unit_test(test_final_retry),
        cmocka_unit_test(test_mixed_and_quota),
        cmocka_unit_test(test_loop_counter),
        cmocka_unit_test(test_hostile_input),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test_setup_teardown(test_enqueue_local, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enqueue_remote, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enqueue_fails_cleanly, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
