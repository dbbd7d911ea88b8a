/* smtp_client_wire: the wire formats of the outbound SMTP client (smtp_client.h), free of any
 * session state so they can be unit-tested and fuzzed alone:
 *   smtp_client_reply_*     the reply reader (RFC 5321 §4.2: Reply-line = *( Reply-code "-"
 *                           [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF,
 *                           Reply-code = %x32-35 %x30-35 %x30-39)
 *   smtp_client_ehlo_parse  EHLO keywords (RFC 5321 §4.1.1.1 ehlo-line = ehlo-keyword *( SP /
 *                           "=" ehlo-param ); "=" for old AUTH=LOGIN servers)
 *   smtp_client_dotstuff_*  the DATA body on the wire (RFC 5321 §4.5.2 transparency, §2.3.8
 *                           line ends)
 *   smtp_client_has_8bit    whether BODY=8BITMIME is needed */
#include "smtp/smtp_client.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/str.h"
#include "lib/xalloc.h"

/* ---- Replies ---- */

void smtp_client_reply_init(struct smtp_client_reply *r)
{
    r->code = 0;
    r->total = 0;
    buf_init(&r->lines, SMTP_CLIENT_REPLY_MAX);
}

void smtp_client_reply_reset(struct smtp_client_reply *r)
{
    r->code = 0;
    r->total = 0;
    buf_reset(&r->lines);
}

void smtp_client_reply_free(struct smtp_client_reply *r)
{
    buf_free(&r->lines);
}

enum smtp_client_reply_status smtp_client_reply_feed(struct smtp_client_reply *r, const char *line,
                                                     size_t len)
{
    r->total += len + 2;
    if (len > SMTP_CLIENT_LINE_MAX || r->total > SMTP_CLIENT_REPLY_MAX)
        return SMTP_CLIENT_REPLY_TOO_LONG;
    if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
        line[2] < '0' || line[2] > '9')
        return SMTP_CLIENT_REPLY_INVALID;
    if (len > 3 && line[3] != ' ' && line[3] != '-')
        return SMTP_CLIENT_REPLY_INVALID;
    /* Continuation lines should repeat the code (§4.2.1); the first one counts. */
    if (r->code == 0)
        r->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    else
        buf_append(&r->lines, "\n", 1);
    if (len > 4)
        buf_append(&r->lines, line + 4, len - 4);
    return len > 3 && line[3] == '-' ? SMTP_CLIENT_REPLY_MORE : SMTP_CLIENT_REPLY_DONE;
}

void smtp_client_reply_format(const struct smtp_client_reply *r, char *out, size_t size)
{
    if (size == 0)
        return;
    int n = snprintf(out, size, "%03d", r->code);
    size_t o = n > 0 && (size_t)n < size ? (size_t)n : size - 1;
    const char *p = r->lines.data ? r->lines.data : "";
    const char *end = p + r->lines.len;
    bool first = true;
    while (p <= end && o + 1 < size) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (le > p) {
            const char *sep = first ? " " : " / ";
            for (; *sep && o + 1 < size; sep++)
                out[o++] = *sep;
            for (const char *q = p; q < le && o + 1 < size; q++) {
                unsigned char ch = (unsigned char)*q;
                out[o++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
            }
            first = false;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    out[o] = '\0';
}

/* ---- EHLO keywords ---- */

static bool sc_word_is(const char *p, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(p, word, n) == 0;
}

static void sc_ehlo_line(const char *p, size_t n, struct smtp_client_ehlo *e)
{
    size_t k = 0;
    while (k < n && p[k] != ' ' && p[k] != '=')
        k++;
    const char *params = p + k;
    size_t pn = n - k;
    if (sc_word_is(p, k, "PIPELINING")) {
        e->pipelining = true;
    } else if (sc_word_is(p, k, "STARTTLS")) {
        e->starttls = true;
    } else if (sc_word_is(p, k, "8BITMIME")) {
        e->eightbitmime = true;
    } else if (sc_word_is(p, k, "SIZE")) {
        e->size = true;
        unsigned long v = 0;
        size_t i = 0;
        while (i < pn && params[i] == ' ')
            i++;
        for (; i < pn && params[i] >= '0' && params[i] <= '9'; i++)
            v = v > (~0UL - 9) / 10 ? ~0UL : v * 10 + (unsigned long)(params[i] - '0');
        e->size_max = v;
    } else if (sc_word_is(p, k, "AUTH")) {
        e->auth = true;
        size_t i = 0;
        while (i < pn) {
            while (i < pn && (params[i] == ' ' || params[i] == '='))
                i++;
            size_t s = i;
            while (i < pn && params[i] != ' ')
                i++;
            if (sc_word_is(params + s, i - s, "PLAIN"))
                e->auth_plain = true;
            else if (sc_word_is(params + s, i - s, "LOGIN"))
                e->auth_login = true;
        }
    }
}

void smtp_client_ehlo_parse(const struct smtp_client_reply *r, struct smtp_client_ehlo *e_r)
{
    memset(e_r, 0, sizeof(*e_r));
    const char *p = r->lines.data;
    if (!p)
        return;
    const char *end = p + r->lines.len;
    const char *nl = memchr(p, '\n', r->lines.len); /* the first line is the greeting */
    while (nl) {
        p = nl + 1;
        nl = memchr(p, '\n', (size_t)(end - p));
        sc_ehlo_line(p, (size_t)((nl ? nl : end) - p), e_r);
    }
}

/* ---- DATA body ---- */

void smtp_client_dotstuff_init(struct smtp_client_dotstuff *st)
{
    st->bol = true;
    st->cr = false;
}

void smtp_client_dotstuff_feed(struct smtp_client_dotstuff *st, const char *p, size_t n,
                               struct evbuffer *out)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '\n' && st->cr) { /* the LF of a CRLF whose CR already produced the CRLF */
            evbuffer_add(out, p + start, i - start);
            start = i + 1;
            st->cr = false;
            continue;
        }
        st->cr = false;
        if (ch == '\r' || ch == '\n') {
            evbuffer_add(out, p + start, i - start);
            evbuffer_add(out, "\r\n", 2);
            start = i + 1;
            st->bol = true;
            st->cr = ch == '\r';
            continue;
        }
        if (st->bol && ch == '.') {
            evbuffer_add(out, p + start, i - start);
            evbuffer_add(out, ".", 1);
            start = i; /* the original dot follows */
        }
        st->bol = false;
    }
    evbuffer_add(out, p + start, n - start);
}

void smtp_client_dotstuff_finish(struct smtp_client_dotstuff *st, struct evbuffer *out)
{
    if (!st->bol)
        evbuffer_add(out, "\r\n", 2);
    evbuffer_add(out, ".\r\n", 3);
    st->bol = true;
    st->cr = false;
}

bool smtp_client_has_8bit(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80)
            return true;
    return false;
}
