/* fuzz_dns_answer: libFuzzer target for the DNS answer parser (dns_answer_parse in src/net/dns.c,
 * RFC 1035 §4.1 with name compression). The input is one response message. Besides memory errors
 * it checks that every record returned has a NUL-terminated owner and data within their buffers,
 * and that the count is bounded (64). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exactly-sized copy so ASan sees any read past the message. */
    uint8_t *msg = malloc(size ? size : 1);
    if (size)
        memcpy(msg, data, size);
    struct dns_rr *rr = NULL;
    int n = dns_answer_parse(msg, size, &rr);
    if (n > 64 || (n > 0 && !rr)) {
        fprintf(stderr, "bad record count %d\n", n);
        abort();
    }
    for (int i = 0; i < n; i++)
        if (!memchr(rr[i].owner, '\0', sizeof(rr[i].owner)) ||
            !memchr(rr[i].data, '\0', sizeof(rr[i].data)))
            abort();
    free(rr);
    free(msg);
    return 0;
}
