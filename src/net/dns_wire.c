/* dns_wire: the pure parts of the resolver (dns.h) — the answer section of an RFC 1035 §4.1
 * message, MX ordering (RFC 5321 §5.1, equal preferences shuffled) and null MX (RFC 7505), IP
 * literals, name normalisation. No channel, no cache, no event loop: unit-tested and fuzzed
 * (fuzz_dns_answer) alone. */
#include "net/dns_wire.h"

#include <ares.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "lib/str.h"
#include "lib/xalloc.h"

/* ---------------------------------------------------------------------------------------- */
/* pure helpers */

static uint64_t dns_rand_state;

static uint32_t dns_rand(void)
{
    if (!dns_rand_state) {
        if (getrandom(&dns_rand_state, sizeof(dns_rand_state), GRND_NONBLOCK) !=
            (ssize_t)sizeof(dns_rand_state))
            dns_rand_state = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL;
        dns_rand_state |= 1;
    }
    /* xorshift64* */
    dns_rand_state ^= dns_rand_state >> 12;
    dns_rand_state ^= dns_rand_state << 25;
    dns_rand_state ^= dns_rand_state >> 27;
    return (uint32_t)((dns_rand_state * 0x2545f4914f6cdd1dULL) >> 32);
}

void dns_mx_sort(struct dns_mx *mx, size_t n)
{
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates, so the stable sort randomises ties */
        size_t j = dns_rand() % i;
        struct dns_mx t = mx[i - 1];
        mx[i - 1] = mx[j];
        mx[j] = t;
    }
    for (size_t i = 1; i < n; i++) { /* insertion sort: stable, n is small */
        struct dns_mx t = mx[i];
        size_t j = i;
        while (j > 0 && mx[j - 1].preference > t.preference) {
            mx[j] = mx[j - 1];
            j--;
        }
        mx[j] = t;
    }
}

bool dns_name_is_root(const char *s)
{
    return s[0] == '\0' || strcmp(s, ".") == 0;
}

bool dns_mx_is_null(const struct dns_mx *mx, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!dns_name_is_root(mx[i].host))
            return false;
    return true;
}

int dns_literal_parse(const char *host, struct ipaddr *ip_r)
{
    char tmp[IPADDR_STRLEN];
    size_t len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        const char *s = host + 1;
        size_t n = len - 2;
        bool v6tag = n >= 5 && str_istarts(s, "IPv6:");
        if (v6tag) {
            s += 5;
            n -= 5;
        }
        if (n == 0 || n >= sizeof(tmp))
            return -1;
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        if (ipaddr_parse(tmp, ip_r) < 0)
            return -1;
        /* RFC 5321 §4.1.3: an IPv6 literal carries the tag, an IPv4 literal does not; both
         * spellings without the tag are accepted, a tagged IPv4 address is not. */
        if (v6tag && ip_r->family != AF_INET6)
            return -1;
        return 0;
    }
    if (len == 0 || len >= sizeof(tmp))
        return -1;
    return ipaddr_parse(host, ip_r);
}

/* Lower-case copy without the trailing dot; -1 for an empty, too long or blank-containing name. */
int dns_name_norm(const char *in, char out[DNS_NAME_MAX])
{
    size_t n = strlen(in);
    if (n > 0 && in[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c <= ' ' || c == 0x7f)
            return -1;
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
    }
    out[n] = '\0';
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* message parsing (RFC 1035 §4.1) */

static unsigned dns_rd16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* Expand the name at off into out (no trailing dot); *enclen_r = bytes it takes at off.
 * Returns 0, 1 when the name is valid but does not fit out, -1 when it is malformed. */
static int dns_name_read(const uint8_t *msg, size_t len, size_t off, char out[DNS_NAME_MAX],
                         size_t *enclen_r)
{
    if (off >= len)
        return -1;
    char *s = NULL;
    long enclen = 0;
    if (ares_expand_name(msg + off, msg, (int)len, &s, &enclen) != ARES_SUCCESS)
        return -1;
    int rc = str_copy(out, DNS_NAME_MAX, s) < 0 ? 1 : 0;
    ares_free_string(s);
    if (enclen <= 0 || (size_t)enclen > len - off)
        return -1;
    *enclen_r = (size_t)enclen;
    return rc;
}

int dns_answer_parse(const uint8_t *msg, size_t len, struct dns_rr **rr_r)
{
    *rr_r = NULL;
    if (len < 12 || len > 65535)
        return -1;
    unsigned qdcount = dns_rd16(msg + 4), ancount = dns_rd16(msg + 6);
    size_t off = 12, enclen;
    char name[DNS_NAME_MAX];
    for (unsigned i = 0; i < qdcount; i++) {
        if (dns_name_read(msg, len, off, name, &enclen) < 0 || len - off - enclen < 4)
            return -1;
        off += enclen + 4;
    }
    struct dns_rr *rr = NULL;
    size_t n = 0;
    for (unsigned i = 0; i < ancount; i++) {
        struct dns_rr r;
        memset(&r, 0, sizeof(r));
        int orc = dns_name_read(msg, len, off, r.owner, &enclen);
        if (orc < 0 || len - off - enclen < 10)
            goto bad;
        off += enclen;
        r.type = (uint16_t)dns_rd16(msg + off);
        unsigned cls = dns_rd16(msg + off + 2);
        r.ttl = (uint32_t)dns_rd16(msg + off + 4) << 16 | dns_rd16(msg + off + 6);
        if (r.ttl > INT32_MAX) /* RFC 2181 §8 */
            r.ttl = 0;
        size_t rdlen = dns_rd16(msg + off + 8);
        off += 10;
        if (rdlen > len - off)
            goto bad;
        size_t rd = off;
        off += rdlen;
        if (cls != DNS_CLASS_IN || orc > 0 || n == DNS_MAX_RR)
            continue;
        int nrc = 0;
        switch (r.type) {
        case DNS_T_A:
            if (rdlen != 4)
                goto bad;
            r.ip.family = AF_INET;
            r.ip.b[10] = r.ip.b[11] = 0xff;
            memcpy(r.ip.b + 12, msg + rd, 4);
            break;
        case DNS_T_AAAA:
            if (rdlen != 16)
                goto bad;
            r.ip.family = AF_INET6;
            memcpy(r.ip.b, msg + rd, 16);
            break;
        case DNS_T_MX:
            if (rdlen < 3)
                goto bad;
            r.pref = (uint16_t)dns_rd16(msg + rd);
            nrc = dns_name_read(msg, len, rd + 2, r.data, &enclen);
            if (nrc < 0 || enclen > rdlen - 2)
                goto bad;
            break;
        case DNS_T_CNAME:
        case DNS_T_PTR:
            nrc = dns_name_read(msg, len, rd, r.data, &enclen);
            if (nrc < 0 || enclen > rdlen)
                goto bad;
            break;
        default:
            continue;
        }
        if (nrc > 0) /* target name too long to use */
            continue;
        rr = xrealloc(rr, (n + 1) * sizeof(*rr));
        rr[n++] = r;
    }
    *rr_r = rr;
    return (int)n;
bad:
    free(rr);
    return -1;
}
