/* addr: syntax of envelope addresses, domains and HELO arguments (hmailserver-behaviour.md §1.6,
 * RFC 5321 §4.1.2, §4.1.3). Pure functions, no allocation, no locale; every input is a
 * NUL-terminated string of any length and any bytes, and nothing is read past its NUL.
 *
 *   addr_is_valid         Gannet's validity rule for envelope addresses (MAIL/RCPT)
 *   addr_domain_is_valid  the domain half of that rule
 *   addr_helo_is_valid    HELO/EHLO argument: tolerant domain name or address literal
 *   addr_split            local part / domain at the last '@' outside quotes
 *   addr_domain           pointer to the domain part
 *
 * The rule implemented by addr_is_valid (a subset of RFC 5321 Mailbox, as hMailServer does it):
 *
 *   address     = local-part "@" domain            ; total length <= 254 octets
 *   local-part  = quoted / unquoted
 *   quoted      = DQUOTE *qchar DQUOTE              ; qchar: any octet but < > @ \ " and CTLs
 *   unquoted    = 1*uchar                           ; uchar: any octet but < > @ \ " SP and CTLs
 *                                                   ; (dots anywhere: "a..b@x" is accepted)
 *   domain      = ipv4-literal / labels             ; length <= 255
 *   ipv4-literal= "[" snum 3("." snum) "]"          ; snum = 1*3DIGIT, value 0-255
 *   labels      = label *126("." label)             ; 1..127 labels
 *   label       = 1*63(ALPHA / DIGIT / "-")         ; not starting with "-", last char alnum
 *
 * CTLs (0x00-0x1F, 0x7F) are refused anywhere: the documented hMailServer rule does not name them,
 * but an address with a TAB or ESC in it can only do harm in logs and headers. Octets >= 0x80 are
 * allowed in the local part (hMailServer accepts them), never in the domain.
 *
 * addr_helo_is_valid (RFC 5321 §4.1.3 and §4.1.1.1, deliberately tolerant):
 *
 *   helo-arg    = helo-domain / "[" ipv4 "]" / "[" "IPv6:" ipv6 "]"   ; "IPv6" case-insensitive
 *   helo-domain = hlabel *("." hlabel) ["."]        ; length <= 255
 *   hlabel      = 1*63(ALPHA / DIGIT / "-" / "_")   ; not starting or ending with "-"
 *   (underscores are tolerated because real hosts use them; replies.md "Greeting and sequence")
 *   ipv4        = as ipv4-literal above; ipv6: whatever inet_pton(AF_INET6) accepts */
#include "mail/addr.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#define ADDR_LEN_MAX 254
#define DOMAIN_LEN_MAX 255
#define LABEL_LEN_MAX 63
#define LABELS_MAX 127

static bool is_alpha(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* A character allowed in a quoted local part (between the quotes). */
static bool is_qchar(unsigned char c)
{
    return !is_ctl(c) && c != '<' && c != '>' && c != '@' && c != '\\' && c != '"';
}

/* A character allowed in an unquoted local part. */
static bool is_uchar(unsigned char c)
{
    return is_qchar(c) && c != ' ';
}

/* "d.d.d.d" in exactly n bytes: four 1-3 digit parts, each 0-255. */
static bool ipv4_span_is_valid(const char *s, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || s[i] != '.')
                return false;
            i++;
        }
        unsigned value = 0;
        size_t digits = 0;
        while (i < n && is_digit((unsigned char)s[i]) && digits < 3) {
            value = value * 10 + (unsigned)(s[i] - '0');
            digits++;
            i++;
        }
        if (digits == 0 || value > 255)
            return false;
    }
    return i == n;
}

/* The domain rule in exactly n bytes (the span contains no NUL). */
static bool domain_span_is_valid(const char *d, size_t n)
{
    if (n == 0 || n > DOMAIN_LEN_MAX)
        return false;
    if (d[0] == '[')
        return n >= 2 && d[n - 1] == ']' && ipv4_span_is_valid(d + 1, n - 2);

    size_t labels = 0;
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (i < n && d[i] != '.') {
            unsigned char c = (unsigned char)d[i];
            if (!is_alpha(c) && !is_digit(c) && c != '-')
                return false;
            i++;
        }
        size_t len = i - start;
        if (len == 0 || len > LABEL_LEN_MAX)
            return false;
        if (d[start] == '-' || d[i - 1] == '-')
            return false;
        if (++labels > LABELS_MAX)
            return false;
        if (i == n)
            return true;
        i++; /* the dot; a trailing dot leaves an empty label, refused above */
    }
}

bool addr_domain_is_valid(const char *domain)
{
    size_t n = strnlen(domain, DOMAIN_LEN_MAX + 1);
    return domain_span_is_valid(domain, n);
}

bool addr_is_valid(const char *address)
{
    size_t n = strnlen(address, ADDR_LEN_MAX + 1);
    if (n == 0 || n > ADDR_LEN_MAX)
        return false;

    size_t i;
    if (address[0] == '"') {
        for (i = 1; i < n && address[i] != '"'; i++)
            if (!is_qchar((unsigned char)address[i]))
                return false;
        if (i == n)
            return false; /* no closing quote */
        i++;              /* past the closing quote */
    } else {
        for (i = 0; i < n && address[i] != '@'; i++)
            if (!is_uchar((unsigned char)address[i]))
                return false;
        if (i == 0)
            return false; /* empty local part */
    }
    if (i >= n || address[i] != '@')
        return false;
    i++;
    return domain_span_is_valid(address + i, n - i);
}

bool addr_helo_is_valid(const char *arg)
{
    size_t n = strnlen(arg, DOMAIN_LEN_MAX + 2);
    if (n == 0)
        return false;

    if (arg[0] == '[') {
        if (n < 2 || arg[n - 1] != ']')
            return false;
        const char *in = arg + 1;
        size_t len = n - 2;
        static const char tag[] = "IPv6:";
        size_t taglen = sizeof(tag) - 1;
        if (len >= taglen && strncasecmp(in, tag, taglen) == 0) {
            char v6[INET6_ADDRSTRLEN + 1];
            struct in6_addr a6;
            len -= taglen;
            if (len == 0 || len >= sizeof(v6))
                return false;
            memcpy(v6, in + taglen, len);
            v6[len] = '\0';
            return inet_pton(AF_INET6, v6, &a6) == 1;
        }
        return ipv4_span_is_valid(in, len);
    }

    if (arg[n - 1] == '.')
        n--; /* one trailing dot (a root-terminated name) is fine */
    if (n == 0 || n > DOMAIN_LEN_MAX)
        return false;
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (i < n && arg[i] != '.') {
            unsigned char c = (unsigned char)arg[i];
            if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_')
                return false;
            i++;
        }
        if (i == start || i - start > LABEL_LEN_MAX)
            return false;
        if (arg[start] == '-' || arg[i - 1] == '-')
            return false;
        if (i == n)
            return true;
        i++;
    }
}

/* Index of the last '@' outside double quotes, or -1. */
static long last_at(const char *address)
{
    long at = -1;
    bool quoted = false;
    for (long i = 0; address[i] != '\0'; i++) {
        if (address[i] == '"')
            quoted = !quoted;
        else if (address[i] == '@' && !quoted)
            at = i;
    }
    return at;
}

int addr_split(const char *address, char *local_out, char *domain_out)
{
    local_out[0] = '\0';
    domain_out[0] = '\0';
    long at = last_at(address);
    if (at < 0)
        return -1;
    size_t local_len = (size_t)at;
    const char *domain = address + at + 1;
    size_t domain_len = strlen(domain);
    if (local_len >= ADDR_MAX || domain_len >= ADDR_MAX)
        return -1;
    memcpy(local_out, address, local_len);
    local_out[local_len] = '\0';
    memcpy(domain_out, domain, domain_len + 1);
    return 0;
}

const char *addr_domain(const char *address)
{
    long at = last_at(address);
    return at < 0 ? "" : address + at + 1;
}
