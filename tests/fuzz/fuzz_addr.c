/* fuzz_addr: libFuzzer target for src/mail/addr.c (addr_is_valid, addr_domain_is_valid,
 * addr_helo_is_valid, addr_split, addr_domain). The input, cut at its first NUL, is one string in
 * an exactly-sized heap block (ASan catches any read past the NUL). Besides crashes it checks the
 * invariants that tie the functions together, aborting when one breaks:
 *   - addr_split and addr_domain agree on the domain (which points into the input);
 *   - a valid address is <= 254 chars, splits into a non-empty local part and a valid domain;
 *   - a valid domain (address rule) is also a valid HELO argument. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what, const char *s)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s (input %zu bytes)\n", what, strlen(s));
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t n = nul ? (size_t)(nul - data) : size;
    char *s = malloc(n + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, n);
    s[n] = '\0';

    char local[ADDR_MAX], domain[ADDR_MAX];
    int r = addr_split(s, local, domain);
    const char *d = addr_domain(s);
    check((d >= s && d <= s + n) || (r != 0 && d[0] == '\0'),
          "addr_domain points into the input, or is \"\" without an @", s);
    if (r == 0)
        check(strcmp(d, domain) == 0, "addr_split and addr_domain agree", s);
    else
        check(local[0] == '\0' && domain[0] == '\0', "failed split leaves empty outputs", s);

    if (addr_is_valid(s)) {
        check(n <= 254, "valid address <= 254 chars", s);
        check(r == 0, "valid address splits", s);
        check(local[0] != '\0', "valid address has a local part", s);
        check(addr_domain_is_valid(domain), "valid address has a valid domain", s);
        check(addr_helo_is_valid(domain), "valid address domain is a valid HELO", s);
    }
    if (addr_domain_is_valid(s)) {
        check(n <= 255, "valid domain <= 255 chars", s);
        check(addr_helo_is_valid(s), "valid domain is a valid HELO", s);
        check(strchr(s, '@') == NULL, "valid domain has no @", s);
    }
    if (addr_helo_is_valid(s))
        check(n > 0 && strchr(s, ' ') == NULL && strchr(s, '@') == NULL,
              "valid HELO is non-empty, without SP or @", s);
    free(s);
    return 0;
}
