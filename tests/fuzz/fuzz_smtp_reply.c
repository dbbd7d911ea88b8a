/* fuzz_smtp_reply: libFuzzer target for the outbound client's reply parser
 * (smtp_client_reply_feed / smtp_client_reply_format, RFC 5321 §4.2 reply lines). The input is
 * split at LF into lines fed in order, as a hostile server would send them; the parser must stay
 * within its limits (SMTP_CLIENT_LINE_MAX per line, SMTP_CLIENT_REPLY_MAX per reply), and the
 * formatted reply must be a NUL-terminated string of printable bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_client_reply r;
    smtp_client_reply_init(&r);
    size_t pos = 0;
    while (pos < size) {
        const uint8_t *lf = memchr(data + pos, '\n', size - pos);
        size_t len = lf ? (size_t)(lf - (data + pos)) : size - pos;
        char *line = malloc(len ? len : 1); /* exactly sized: reads past it are caught */
        memcpy(line, data + pos, len);
        enum smtp_client_reply_status st = smtp_client_reply_feed(&r, line, len);
        free(line);
        if (r.lines.len > SMTP_CLIENT_REPLY_MAX + SMTP_CLIENT_LINE_MAX)
            abort(); /* the buffer grew past its bound */
        if (st == SMTP_CLIENT_REPLY_DONE) {
            char out[2048];
            smtp_client_reply_format(&r, out, sizeof(out));
            if (!memchr(out, '\0', sizeof(out)))
                abort();
            smtp_client_reply_reset(&r);
        } else if (st != SMTP_CLIENT_REPLY_MORE) {
            smtp_client_reply_reset(&r);
        }
        pos += len + 1;
    }
    smtp_client_reply_free(&r);
    return 0;
}
