/* smtp_parse: pure parsing of SMTP command lines — the verb, and the MAIL FROM / RCPT TO
 * arguments (hmailserver-behaviour.md §1.2, §1.6, §1.7 steps 3-6, §1.8 steps 3-5; replies.md
 * "MAIL FROM", "RCPT TO"). No I/O, no state, no allocation; any NUL-terminated line of any length
 * is accepted (the connection layer has stripped CR LF), nothing is read past its NUL and the
 * fixed output buffers are never overrun (over-long addresses are INVALID_ADDR, over-long
 * parameters are echoed truncated).
 *
 *   smtp_parse_verb  verb = text before the first SP, ASCII upper-cased; TAB is not a separator
 *   smtp_parse_mail  "MAIL FROM:" path [SP params]
 *   smtp_parse_rcpt  "RCPT TO:" path [SP params]
 *
 * The grammar is hMailServer's, which is looser than RFC 5321 §4.1.1.2-3 / §4.1.2:
 *
 *   mail-line  = "MAIL FROM:" argument          ; prefix case-insensitive, no colon = SYNTAX
 *   rcpt-line  = "RCPT TO:" argument
 *   argument   : the rest of the line, trimmed of SP/HTAB at both ends, then split into
 *                address part and parameter part:
 *                - exactly one DQUOTE in the argument            -> SYNTAX
 *                - two or more DQUOTEs: the parameters start at the first SP after the last
 *                  DQUOTE; otherwise at the first SP (none: there are no parameters)
 *   address    : the text before that SP. If it starts with "<" it must end with ">" (else
 *                SYNTAX); the brackets are stripped and the inside trimmed. Brackets are
 *                optional ("MAIL FROM: a@b" is fine). "<>" or nothing = the null path.
 *                A non-empty address must pass addr_is_valid (else INVALID_ADDR); so do source
 *                routes like <@a,@b:u@d>, which it refuses.
 *   params     = *(1*SP param)                   ; empty tokens (runs of SP) are skipped
 *   param      = keyword ["=" value]             ; keyword matched case-insensitively
 *   MAIL accepts SIZE[=1*DIGIT] (anything else after "=" gives size 0, still "given"; values past
 *   2^64-1 saturate), BODY=7BIT / BODY=8BITMIME, AUTH[=anything]. Any other parameter (and a
 *   BODY with another or no value) is BAD_PARAM, echoed verbatim. RCPT accepts no parameter. */
#include "smtp/smtp_parse.h"

#include <string.h>
#include <strings.h>

#include "lib/str.h"

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static char ascii_upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
}

void smtp_parse_verb(const char *line, char verb[SMTP_VERB_MAX], const char **args_r)
{
    size_t i = 0;
    while (line[i] != '\0' && line[i] != ' ') {
        if (i < SMTP_VERB_MAX - 1)
            verb[i] = ascii_upper(line[i]);
        i++;
    }
    verb[i < SMTP_VERB_MAX - 1 ? i : SMTP_VERB_MAX - 1] = '\0';
    *args_r = line[i] == ' ' ? line + i + 1 : line + i;
}

/* A MAIL/RCPT argument split into spans of the original line. */
struct path_spans {
    const char *addr; /* inside the brackets, trimmed; may be empty */
    size_t addr_len;
    const char *params; /* from the separating SP to the end of the trimmed argument */
    size_t params_len;
};

/* Split "<prefix>argument" (§1.6 steps 1-3). Returns SMTP_PARSE_OK or SMTP_PARSE_SYNTAX. */
static enum smtp_parse_status path_split(const char *line, const char *prefix, struct path_spans *r)
{
    if (!str_istarts(line, prefix))
        return SMTP_PARSE_SYNTAX;
    const char *s = line + strlen(prefix);
    const char *e = s + strlen(s);
    while (s < e && is_blank(*s))
        s++;
    while (e > s && is_blank(e[-1]))
        e--;

    size_t quotes = 0;
    const char *last_quote = NULL;
    for (const char *p = s; p < e; p++) {
        if (*p == '"') {
            quotes++;
            last_quote = p;
        }
    }
    if (quotes == 1)
        return SMTP_PARSE_SYNTAX;
    const char *from = quotes > 0 ? last_quote + 1 : s;
    const char *sp = memchr(from, ' ', (size_t)(e - from));
    const char *addr_end = sp ? sp : e;

    const char *a = s, *ae = addr_end;
    if (a < ae && *a == '<') {
        if (ae - a < 2 || ae[-1] != '>')
            return SMTP_PARSE_SYNTAX;
        a++;
        ae--;
        while (a < ae && is_blank(*a))
            a++;
        while (ae > a && is_blank(ae[-1]))
            ae--;
    }
    r->addr = a;
    r->addr_len = (size_t)(ae - a);
    r->params = addr_end;
    r->params_len = (size_t)(e - addr_end);
    return SMTP_PARSE_OK;
}

/* Copy the address span into out (ADDR_MAX bytes, truncated when longer) and say whether it is a
 * valid address: non-empty, fits, and passes addr_is_valid. */
static bool address_copy(const struct path_spans *ps, char out[ADDR_MAX])
{
    size_t n = ps->addr_len < ADDR_MAX - 1 ? ps->addr_len : ADDR_MAX - 1;
    memcpy(out, ps->addr, n);
    out[n] = '\0';
    return ps->addr_len > 0 && ps->addr_len < ADDR_MAX && addr_is_valid(out);
}

/* Next space-separated token in [*pos, end); false when there is none. */
static bool param_next(const char **pos, const char *end, const char **tok_r, size_t *len_r)
{
    const char *p = *pos;
    while (p < end && *p == ' ')
        p++;
    if (p == end)
        return false;
    const char *t = p;
    while (p < end && *p != ' ')
        p++;
    *tok_r = t;
    *len_r = (size_t)(p - t);
    *pos = p;
    return true;
}

static void param_echo(const char *tok, size_t len, char out[SMTP_PARAM_MAX])
{
    size_t n = len < SMTP_PARAM_MAX - 1 ? len : SMTP_PARAM_MAX - 1;
    memcpy(out, tok, n);
    out[n] = '\0';
}

/* True when the token's keyword (before any '=') is name; *value_r and *vlen_r get the text after
 * '=' (NULL/0 when there is no '='). */
static bool param_is(const char *tok, size_t len, const char *name, const char **value_r,
                     size_t *vlen_r)
{
    const char *eq = memchr(tok, '=', len);
    size_t klen = eq ? (size_t)(eq - tok) : len;
    if (klen != strlen(name) || strncasecmp(tok, name, klen) != 0)
        return false;
    *value_r = eq ? eq + 1 : NULL;
    *vlen_r = eq ? len - klen - 1 : 0;
    return true;
}

static bool span_ieq(const char *s, size_t n, const char *word)
{
    return s != NULL && n == strlen(word) && strncasecmp(s, word, n) == 0;
}

/* SIZE value: all digits -> the number (saturating), anything else -> 0. */
static uint64_t size_value(const char *v, size_t n)
{
    uint64_t size = 0;
    if (v == NULL || n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 0;
        unsigned d = (unsigned)(v[i] - '0');
        if (size > (UINT64_MAX - d) / 10)
            size = UINT64_MAX;
        else
            size = size * 10 + d;
    }
    return size;
}

enum smtp_parse_status smtp_parse_mail(const char *line, struct smtp_mail_args *out)
{
    memset(out, 0, sizeof(*out));
    struct path_spans ps;
    if (path_split(line, "MAIL FROM:", &ps) != SMTP_PARSE_OK)
        return SMTP_PARSE_SYNTAX;
    bool addr_ok = address_copy(&ps, out->address) || ps.addr_len == 0;

    /* Parameters are parsed even when the address is invalid, so every field is filled. */
    const char *pos = ps.params, *end = ps.params + ps.params_len, *tok, *v;
    size_t len, vlen;
    while (param_next(&pos, end, &tok, &len)) {
        bool ok = true;
        if (param_is(tok, len, "SIZE", &v, &vlen)) {
            out->size_given = true;
            out->size = size_value(v, vlen);
        } else if (param_is(tok, len, "BODY", &v, &vlen)) {
            if (span_ieq(v, vlen, "8BITMIME"))
                out->body_8bit = true;
            else if (span_ieq(v, vlen, "7BIT"))
                out->body_8bit = false;
            else
                ok = false;
        } else if (!param_is(tok, len, "AUTH", &v, &vlen)) {
            ok = false;
        }
        if (!ok && out->bad_param[0] == '\0')
            param_echo(tok, len, out->bad_param);
    }
    if (!addr_ok)
        return SMTP_PARSE_INVALID_ADDR;
    return out->bad_param[0] != '\0' ? SMTP_PARSE_BAD_PARAM : SMTP_PARSE_OK;
}

enum smtp_parse_status smtp_parse_rcpt(const char *line, struct smtp_rcpt_args *out)
{
    memset(out, 0, sizeof(*out));
    struct path_spans ps;
    if (path_split(line, "RCPT TO:", &ps) != SMTP_PARSE_OK)
        return SMTP_PARSE_SYNTAX;
    bool addr_ok = address_copy(&ps, out->address);

    const char *pos = ps.params, *end = ps.params + ps.params_len, *tok;
    size_t len;
    if (param_next(&pos, end, &tok, &len)) {
        param_echo(tok, len, out->bad_param);
        return SMTP_PARSE_BAD_PARAM;
    }
    return addr_ok ? SMTP_PARSE_OK : SMTP_PARSE_INVALID_ADDR;
}
