/* queue_bounce: non-delivery reports (see queue_bounce.h) — hmailserver-behaviour.md §8.6
 * (per-recipient error texts), §8.7 (when, and the template), §4.5 (quota entry); RFC 3464
 * (message/delivery-status), RFC 6522 (multipart/report), RFC 3463 (status codes), RFC 3834
 * (Auto-Submitted), RFC 2045 §6.7 (quoted-printable), RFC 2047 (encoded words in Subject),
 * RFC 5322 §2.1.1/§2.2.3 (line length, folding).
 *
 *   queue_bounce_wanted              null sender / mailer-daemon / Auto-Submitted / loop counter
 *   queue_bounce_error_*             the §8.6 blocks ("   Error Type: SMTP\r\n" ...)
 *   queue_bounce_status_from_reply   "550 5.1.1 ..." -> "5.1.1"
 *   queue_bounce_build               the message: headers, three MIME parts
 *   queue_bounce_enqueue             resolve the original sender, spool durably, commit
 *
 * The human-readable part reproduces hMailServer's SEND_FAILED_NOTIFICATION byte for byte (signed
 * "Gannet"); it goes out as 7bit when it is plain ASCII with short lines, else quoted-printable,
 * so no line of the bounce exceeds 998 bytes whatever the remote server replied. Failures return
 * -1 with a thread-local message in *err_r; nothing is queued half-way. */
#include "queue/queue_bounce.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "lib/base64.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "mail/headers.h"
#include "mail/reply.h"
#include "policy/policy.h"
#include "queue/queue.h"
#include "queue/queue_spool.h"
#include "store/store.h"

#define LINE_SOFT 78  /* RFC 5322 §2.1.1 "SHOULD" */
#define LINE_HARD 998 /* RFC 5322 §2.1.1 "MUST" (without CRLF) */

static __thread char bounce_err[512];

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* s on one line: CRLF, CR, LF, TAB and other controls become single spaces; outer blanks trimmed.
 * With ascii, bytes >= 0x80 become '?'. malloc'ed. */
static char *flatten(const char *s, bool ascii)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    char *r = xmalloc(n + 1), *o = r;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' && s[i + 1] == '\n')
            continue; /* the LF that follows gives the one space */
        if (c < 0x20 || c == 0x7f)
            *o++ = ' ';
        else if (c >= 0x80 && ascii)
            *o++ = '?';
        else
            *o++ = (char)c;
    }
    *o = '\0';
    char *t = str_trim(r);
    memmove(r, t, strlen(t) + 1);
    return r;
}

/* ---- when ---- */

static char *header_value(const char *hdr, const char *name)
{
    return hdr ? store_header_value(hdr, strlen(hdr), name) : NULL;
}

/* The original's loop counter (0 when absent or not a number; capped). */
static unsigned loop_count(const char *hdr)
{
    char *v = header_value(hdr, QUEUE_BOUNCE_LOOP_HEADER);
    if (!v)
        return 0;
    unsigned n = 0;
    for (const char *p = v; *p >= '0' && *p <= '9'; p++)
        if (n < 1000000)
            n = n * 10 + (unsigned)(*p - '0');
    free(v);
    return n;
}

bool queue_bounce_wanted(const char *sender, const char *header_section)
{
    if (!sender || !*sender)
        return false;
    /* The local part, also when quoted ("mailer-daemon"@x). */
    const char *at = strrchr(sender, '@');
    size_t llen = at ? (size_t)(at - sender) : strlen(sender);
    const char *local = sender;
    if (llen >= 2 && local[0] == '"' && local[llen - 1] == '"') {
        local++;
        llen -= 2;
    }
    if (llen == strlen("mailer-daemon") && str_istarts(local, "mailer-daemon"))
        return false;
    /* RFC 3834 §5: auto-submitted = "no" / "auto-generated" / "auto-replied" / extension, then
     * optional parameters or comments. Anything but "no" (even an empty value) suppresses. */
    char *as = header_value(header_section, "Auto-Submitted");
    if (as) {
        size_t tl = strcspn(as, " \t;(");
        bool no = tl == 2 && str_istarts(as, "no");
        free(as);
        if (!no)
            return false;
    }
    return loop_count(header_section) < QUEUE_BOUNCE_LOOP_LIMIT;
}

/* ---- per-recipient error blocks (§8.6) ---- */

static int block_printf(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int block_printf(char *out, size_t size, const char *fmt, ...)
{
    if (size == 0)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

int queue_bounce_error_remote(const char *ip, const char *sent, const char *reply, char *out,
                              size_t size)
{
    char *fi = flatten(ip, false), *fs = flatten(sent, false), *fr = flatten(reply, false);
    int r = block_printf(out, size,
                         "   Error Type: SMTP\r\n"
                         "   Remote server (%s) issued an error.\r\n"
                         "   Gannet sent: %s\r\n"
                         "   Remote server replied: %s\r\n",
                         fi, fs, fr);
    free(fi);
    free(fs);
    free(fr);
    return r;
}

int queue_bounce_error_connection(const char *description, char *out, size_t size)
{
    char *fd = flatten(description, false);
    int r = block_printf(out, size,
                         "   Error Type: SMTP\r\n"
                         "   Connection to recipients server failed.\r\n"
                         "   Error: %s\r\n",
                         fd);
    free(fd);
    return r;
}

int queue_bounce_error_loop(const char *ip, unsigned port, char *out, size_t size)
{
    char *fi = flatten(ip, false);
    char desc[300];
    /* §8.4's text, then the founding document's wording (replies.md "Bounce texts"). */
    snprintf(desc, sizeof(desc),
             "Could not connect to %.100s on port %u since this would mean connecting to myself. "
             "The mail server software tried to deliver e-mail to the local machine.",
             fi, port);
    free(fi);
    return queue_bounce_error_connection(desc, out, size);
}

static const struct {
    const char *text;
    const char *info;
} additional_info[] = {
    {QUEUE_BOUNCE_TEXT_NO_MX,
     "Please check that you have not misspelled the recipient's email address."},
    {QUEUE_BOUNCE_TEXT_INBOX_FULL, "The recipients inbox is full."},
};

int queue_bounce_error_text(const char *text, char *out, size_t size)
{
    char *ft = flatten(text, false);
    const char *info = NULL;
    for (size_t i = 0; i < sizeof(additional_info) / sizeof(additional_info[0]); i++)
        if (strcmp(ft, additional_info[i].text) == 0)
            info = additional_info[i].info;
    int r = info ? block_printf(out, size,
                                "   Error Type: SMTP\r\n"
                                "   Error Description: %s\r\n"
                                "   Additional information: %s\r\n",
                                ft, info)
                 : block_printf(out, size,
                                "   Error Type: SMTP\r\n"
                                "   Error Description: %s\r\n",
                                ft);
    free(ft);
    return r;
}

int queue_bounce_error_quota(char *out, size_t size)
{
    return queue_bounce_error_text(QUEUE_BOUNCE_TEXT_INBOX_FULL, out, size);
}

/* ---- RFC 3463 status ---- */

/* Length of "class.subject.detail" at s (class 2, 4 or 5; 1-3 digits each), 0 when not one. */
static size_t status_len(const char *s)
{
    if (!s || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return 0;
    size_t i = 2;
    for (int part = 0; part < 2; part++) {
        size_t d = 0;
        while (s[i] >= '0' && s[i] <= '9' && d < 4) {
            i++;
            d++;
        }
        if (d == 0 || d > 3)
            return 0;
        if (part == 0) {
            if (s[i] != '.')
                return 0;
            i++;
        }
    }
    return i;
}

static bool status_is_valid(const char *s)
{
    size_t n = status_len(s);
    return n > 0 && s[n] == '\0';
}

void queue_bounce_status_from_reply(const char *reply, bool permanent, char *out, size_t size)
{
    const char *p = reply;
    if (p && p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' &&
        p[2] <= '9' && (p[3] == ' ' || p[3] == '-')) {
        const char *s = p + 4;
        while (*s == ' ')
            s++;
        size_t n = status_len(s);
        /* RFC 3463 §2: the class must agree with the reply code's first digit. */
        if (n > 0 && s[0] == p[0] &&
            (s[n] == '\0' || s[n] == ' ' || s[n] == '\r' || s[n] == '\n')) {
            snprintf(out, size, "%.*s", (int)n, s);
            return;
        }
    }
    snprintf(out, size, "%s", permanent ? "5.0.0" : "4.0.0");
}

/* ---- writing ---- */

/* Append "name: value\r\n" (value without CR/LF), folded before white space so that lines stay
 * within LINE_SOFT where the value allows and never exceed LINE_HARD (a value with no white space
 * where one is needed is split hard with CRLF SP). Returns -1 when b is full. */
static int field_append(struct buf *b, const char *name, const char *value)
{
    int r = buf_printf(b, "%s: ", name);
    size_t col = strlen(name) + 2;
    const char *p = value;
    size_t len = strlen(p);
    while (r == 0 && col + len > LINE_SOFT) {
        size_t first = 0;
        while (first < len && is_wsp(p[first]))
            first++;
        size_t best = 0;
        for (size_t i = first + 1; i + 1 < len && col + i <= LINE_HARD; i++) {
            if (!is_wsp(p[i]) || is_wsp(p[i + 1]))
                continue;
            if (col + i <= LINE_SOFT) {
                best = i;
            } else {
                if (best == 0)
                    best = i;
                break;
            }
        }
        if (best == 0) {
            if (col + len <= LINE_HARD)
                break;
            best = LINE_HARD - col;
            r |= buf_append(b, p, best);
            r |= buf_append_str(b, "\r\n ");
            col = 1;
        } else {
            r |= buf_append(b, p, best);
            r |= buf_append_str(b, "\r\n");
            col = 0;
        }
        p += best;
        len -= best;
    }
    r |= buf_append(b, p, len);
    r |= buf_append_str(b, "\r\n");
    return r ? -1 : 0;
}

/* "Subject: Message undeliverable: <subject>". A subject with 8-bit bytes goes out as RFC 2047
 * encoded words ("B", utf-8), each at most 75 characters on its own folded line, never splitting
 * a UTF-8 sequence. */
static int subject_append(struct buf *b, const char *subject)
{
    bool eightbit = false;
    for (const char *p = subject; *p; p++)
        if ((unsigned char)*p >= 0x80)
            eightbit = true;
    if (!eightbit) {
        char *v = xasprintf("Message undeliverable: %s", subject);
        int r = field_append(b, "Subject", v);
        free(v);
        return r;
    }
    int r = buf_append_str(b, "Subject: Message undeliverable:");
    size_t len = strlen(subject), pos = 0;
    while (pos < len) {
        size_t end = pos + 45 < len ? pos + 45 : len;
        while (end < len && end > pos + 1 && ((unsigned char)subject[end] & 0xC0) == 0x80)
            end--;
        char enc[64];
        base64_encode((const unsigned char *)subject + pos, end - pos, enc, sizeof(enc));
        r |= buf_printf(b, "%s=?utf-8?B?%s?=", pos == 0 ? " " : "\r\n ", enc);
        pos = end;
    }
    r |= buf_append_str(b, "\r\n");
    return r ? -1 : 0;
}

/* Append s converted to CRLF lines (LF or CRLF in, a lone CR becomes a space), without trailing
 * line breaks, followed by exactly one CRLF; nothing at all for an empty s. */
static int text_block_append(struct buf *b, const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    if (n == 0)
        return 0;
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
            continue;
        if (s[i] == '\n')
            r = buf_append_str(b, "\r\n");
        else if (s[i] == '\r')
            r = buf_append_str(b, " ");
        else
            r = buf_append(b, s + i, 1);
    }
    r |= buf_append_str(b, "\r\n");
    return r ? -1 : 0;
}

/* Does CRLF text need quoted-printable (8-bit or control bytes, lines over LINE_HARD)? */
static bool text_needs_qp(const char *s, size_t n)
{
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' && i + 1 < n && s[i + 1] == '\n') {
            col = 0;
            i++;
            continue;
        }
        if (c >= 0x80 || (c < 0x20 && c != '\t') || c == 0x7f || ++col > LINE_HARD)
            return true;
    }
    return false;
}

/* RFC 2045 §6.7 quoted-printable of CRLF text: hard line breaks kept, encoded lines <= 76. */
static int qp_append(struct buf *b, const char *s, size_t n)
{
    int r = 0;
    size_t col = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' && i + 1 < n && s[i + 1] == '\n') {
            r = buf_append_str(b, "\r\n");
            col = 0;
            i++;
            continue;
        }
        bool at_eol = i + 1 == n || (s[i + 1] == '\r' && i + 2 < n && s[i + 2] == '\n');
        char enc[4];
        size_t el = 1;
        if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_eol))
            enc[0] = (char)c;
        else
            el = (size_t)snprintf(enc, sizeof(enc), "=%02X", c);
        if (col + el > 75) {
            r |= buf_append_str(b, "=\r\n");
            col = 0;
        }
        r |= buf_append(b, enc, el);
        col += el;
    }
    return r ? -1 : 0;
}

/* The original header section as CRLF lines up to its empty line; over-long lines split with
 * CRLF SP. *eightbit_r when any byte is >= 0x80. */
static int headers_copy(struct buf *b, const char *hdr, bool *eightbit_r)
{
    *eightbit_r = false;
    int r = 0;
    const char *p = hdr ? hdr : "";
    while (*p && r == 0) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        size_t ln = n;
        if (ln > 0 && p[ln - 1] == '\r')
            ln--;
        if (ln == 0)
            break; /* the empty line ending the section */
        size_t col = 0;
        for (size_t i = 0; i < ln && r == 0; i++) {
            char c = p[i] == '\r' ? ' ' : p[i];
            if ((unsigned char)c >= 0x80)
                *eightbit_r = true;
            if (col == LINE_HARD) {
                r |= buf_append_str(b, "\r\n ");
                col = 1;
            }
            r |= buf_append(b, &c, 1);
            col++;
        }
        r |= buf_append_str(b, "\r\n");
        p += n + (eol ? 1 : 0);
    }
    return r ? -1 : 0;
}

/* DSN "type; value": prepend default_type when the caller gave no type. ASCII, one line. */
static char *dsn_typed(const char *value, const char *default_type)
{
    char *v = flatten(value, true);
    if (strchr(v, ';'))
        return v;
    char *t = xasprintf("%s; %s", default_type, v);
    free(v);
    return t;
}

/* The date of the topmost Received field (after its last ';'), when it looks like one. */
static char *arrival_date(const char *hdr)
{
    char *rv = header_value(hdr, "Received");
    if (!rv)
        return NULL;
    char *semi = strrchr(rv, ';');
    char *d = NULL;
    if (semi) {
        char *t = str_trim(semi + 1);
        bool ok = *t && strlen(t) < 80 && strpbrk(t, "0123456789");
        for (char *q = t; ok && *q; q++)
            if ((unsigned char)*q >= 0x80)
                ok = false;
        if (ok)
            d = xstrdup(t);
    }
    free(rv);
    return d;
}

static void boundary_new(char out[48])
{
    unsigned char rnd[12];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        for (size_t i = 0; i < sizeof(rnd); i++)
            rnd[i] = (unsigned char)random();
    int n = snprintf(out, 48, "=_Gannet_");
    for (size_t i = 0; i < sizeof(rnd); i++)
        n += snprintf(out + n, 48 - (size_t)n, "%02X", rnd[i]);
}

static bool contains(const struct buf *b, const char *s)
{
    return b->len > 0 && memmem(b->data, b->len, s, strlen(s)) != NULL;
}

/* Part 1: hMailServer's SEND_FAILED_NOTIFICATION with the macros filled in. */
static int text_part(struct buf *t, const char *sent, const char *subject,
                     const struct queue_bounce_rcpt *rcpts, size_t count, unsigned tries)
{
    int r = buf_printf(t,
                       "Your message did not reach some or all of the intended recipients.\r\n"
                       "\r\n"
                       "   Sent: %s\r\n"
                       "   Subject: %s\r\n"
                       "\r\n"
                       "The following recipient(s) could not be reached:\r\n"
                       "\r\n",
                       sent, subject);
    /* Permanent-failure entries: "<address>\r\n<error text>\r\n". */
    for (size_t i = 0; i < count; i++) {
        if (!rcpts[i].permanent)
            continue;
        char *a = flatten(rcpts[i].address, false);
        r |= buf_printf(t, "%s\r\n", a);
        r |= text_block_append(t, rcpts[i].error);
        r |= buf_append_str(t, "\r\n");
        free(a);
    }
    /* Final-retry entry: "<a1>\r\n<e1>[\r\n<a2>\r\n<e2>...]\r\nTried <n> time(s)\r\n\r\n". */
    bool first = true;
    for (size_t i = 0; i < count; i++) {
        if (rcpts[i].permanent)
            continue;
        char *a = flatten(rcpts[i].address, false);
        r |= buf_printf(t, "%s%s\r\n", first ? "" : "\r\n", a);
        r |= text_block_append(t, rcpts[i].error);
        free(a);
        first = false;
    }
    if (!first)
        r |= buf_printf(t, "\r\nTried %u time(s)\r\n\r\n", tries);
    r |= buf_append_str(t, "\r\n\r\nGannet\r\n");
    return r ? -1 : 0;
}

/* Part 2: RFC 3464 §2.2 per-message fields, then §2.3 per-recipient field groups. */
static int dsn_part(struct buf *d, const char *hostname, const char *hdr,
                    const struct queue_bounce_rcpt *rcpts, size_t count)
{
    char *host = flatten(hostname, true);
    char *rm = xasprintf("dns; %s", host);
    int r = field_append(d, "Reporting-MTA", rm);
    free(rm);
    free(host);
    char *arrival = arrival_date(hdr);
    if (arrival)
        r |= field_append(d, "Arrival-Date", arrival);
    free(arrival);
    for (size_t i = 0; i < count && r == 0; i++) {
        const struct queue_bounce_rcpt *rc = &rcpts[i];
        r |= buf_append_str(d, "\r\n");
        char *fr = dsn_typed(rc->address, "rfc822");
        r |= field_append(d, "Final-Recipient", fr);
        free(fr);
        r |= field_append(d, "Action", "failed");
        char status[16];
        if (rc->status && status_is_valid(rc->status)) {
            snprintf(status, sizeof(status), "%s", rc->status);
        } else {
            const char *reply = rc->diagnostic;
            const char *semi = reply ? strchr(reply, ';') : NULL;
            if (semi)
                for (reply = semi + 1; *reply == ' '; reply++)
                    ;
            queue_bounce_status_from_reply(reply, rc->permanent, status, sizeof(status));
        }
        r |= field_append(d, "Status", status);
        if (rc->remote_mta && *rc->remote_mta) {
            char *v = dsn_typed(rc->remote_mta, "dns");
            r |= field_append(d, "Remote-MTA", v);
            free(v);
        }
        if (rc->diagnostic && *rc->diagnostic) {
            char *v = dsn_typed(rc->diagnostic, "smtp");
            r |= field_append(d, "Diagnostic-Code", v);
            free(v);
        }
    }
    return r ? -1 : 0;
}

int queue_bounce_build(const char *hostname, const char *sender, const char *header_section,
                       const struct queue_bounce_rcpt *rcpts, size_t count, unsigned tries,
                       time_t now, struct buf *out, const char **err_r)
{
    if (!hostname || !*hostname || !sender || !*sender || count == 0 || !rcpts) {
        *err_r = "bounce: no hostname, sender or recipients";
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        if (!rcpts[i].address || !*rcpts[i].address) {
            *err_r = "bounce: a recipient without an address";
            return -1;
        }
    }
    char *subject = header_value(header_section, "Subject");
    char *sent = header_value(header_section, "Date");
    struct buf text, dsn, hdrs;
    buf_init(&text, 0);
    buf_init(&dsn, 0);
    buf_init(&hdrs, 0);
    bool hdr8 = false;
    int r = text_part(&text, sent ? sent : "", subject ? subject : "", rcpts, count, tries);
    r |= dsn_part(&dsn, hostname, header_section, rcpts, count);
    r |= headers_copy(&hdrs, header_section, &hdr8);

    bool qp = text_needs_qp(text.data, text.len);
    char boundary[48];
    do
        boundary_new(boundary);
    while (contains(&text, boundary) || contains(&dsn, boundary) || contains(&hdrs, boundary));

    char date[64], msgid[320];
    headers_date(now, date);
    headers_message_id(hostname, msgid, sizeof(msgid));
    size_t start = out->len;
    r |= buf_printf(out, "From: Mail Delivery System <mailer-daemon@%s>\r\n", hostname);
    char *to = flatten(sender, false);
    r |= field_append(out, "To", to);
    free(to);
    r |= subject_append(out, subject ? subject : "");
    r |= buf_printf(out, "Date: %s\r\n", date);
    r |= buf_printf(out, "Message-ID: %s\r\n", msgid);
    r |= buf_append_str(out, "MIME-Version: 1.0\r\n");
    r |= buf_printf(out,
                    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                    "\tboundary=\"%s\"\r\n",
                    boundary);
    r |= buf_append_str(out, "Auto-Submitted: auto-generated\r\n");
    r |= buf_printf(out, "%s: %u\r\n", QUEUE_BOUNCE_LOOP_HEADER, loop_count(header_section) + 1);
    r |= buf_append_str(out, "\r\nThis is a MIME-formatted delivery status notification.\r\n");
    /* Each part's content ends with CRLF; the CRLF before "--boundary" belongs to the
     * delimiter (RFC 2046 §5.1.1), so it is written in addition. */
    r |= buf_printf(out,
                    "\r\n--%s\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: %s\r\n\r\n",
                    boundary, qp ? "quoted-printable" : "7bit");
    r |= qp ? qp_append(out, text.data, text.len) : buf_append(out, text.data, text.len);
    r |= buf_printf(out,
                    "\r\n--%s\r\n"
                    "Content-Type: message/delivery-status\r\n\r\n",
                    boundary);
    r |= buf_append(out, dsn.data, dsn.len);
    r |= buf_printf(out,
                    "\r\n--%s\r\n"
                    "Content-Type: text/rfc822-headers\r\n"
                    "Content-Transfer-Encoding: %s\r\n\r\n",
                    boundary, hdr8 ? "8bit" : "7bit");
    r |= buf_append(out, hdrs.data, hdrs.len);
    r |= buf_printf(out, "\r\n--%s--\r\n", boundary);

    free(subject);
    free(sent);
    buf_free(&text);
    buf_free(&dsn);
    buf_free(&hdrs);
    if (r) {
        if (out->data) {
            out->len = start;
            out->data[start] = '\0';
        }
        *err_r = "bounce: message too large for the buffer";
        return -1;
    }
    return 0;
}

/* ---- queuing ---- */

int queue_bounce_enqueue(sqlite3 *db, struct dir *d, const char *data_dir, const char *sender,
                         const struct buf *bounce, int64_t *message_id_r, const char **err_r)
{
    if (!sender || !*sender) {
        *err_r = "bounce: the null sender cannot receive a bounce";
        return -1;
    }
    struct policy_rcpt_result res;
    policy_expand_address(d, "", sender, 1, &res);
    if (res.verdict == POLICY_TEMPFAIL) {
        snprintf(bounce_err, sizeof(bounce_err), "bounce to <%s>: temporary lookup failure",
                 sender);
        goto fail;
    }
    if (res.verdict != POLICY_ACCEPT || res.recipients_count == 0) {
        char why[256] = "no recipients";
        if (res.verdict != POLICY_ACCEPT)
            reply_format(res.reply, NULL, why, sizeof(why));
        snprintf(bounce_err, sizeof(bounce_err), "bounce to <%s> not possible: %s", sender, why);
        goto fail;
    }
    struct queue_spool_file f;
    memset(&f, 0, sizeof(f));
    f.fd = -1;
    queue_id_new(f.id);
    const char *e = NULL;
    if (queue_spool_open(data_dir, &f, &e) < 0 ||
        queue_spool_write(&f, bounce->data, bounce->len, &e) < 0) {
        queue_spool_abort(&f);
        snprintf(bounce_err, sizeof(bounce_err), "bounce to <%s>: %s", sender, e);
        goto fail;
    }
    struct queue_envelope env = {
        .sender = "",
        .rcpts = res.recipients,
        .rcpts_count = res.recipients_count,
        .client_ip = "",
        .helo = "",
        .auth_user = "",
        .received_at = time(NULL),
    };
    if (queue_spool_commit(db, data_dir, &f, &env, message_id_r, &e) != QUEUE_COMMIT_OK) {
        snprintf(bounce_err, sizeof(bounce_err), "bounce to <%s>: %s", sender, e);
        goto fail;
    }
    log_info("%s: bounce to <%s> queued (%zu recipient%s, %zu bytes)", f.id, sender,
             res.recipients_count, res.recipients_count == 1 ? "" : "s", bounce->len);
    policy_rcpt_result_free(&res);
    return 0;
fail:
    policy_rcpt_result_free(&res);
    *err_r = bounce_err;
    return -1;
}
