/* headers: Received / Message-ID / date formatting for messages accepted by the SMTP server.
 *
 * Received (RFC 5321 §4.4 "Time-stamp-line", in hMailServer's layout):
 *   Received: from <helo> (<ptr or Unknown> [<ip>])
 *   \tby <hostname> with <ESMTP|ESMTPS|ESMTPA|ESMTPSA> id <queue id>
 *   \t(version=<tls> cipher=<cipher> bits=<n>)          only on TLS sessions
 *   \tfor <rcpt>; <date>       or    \t; <date>        without a single recipient */
#include "mail/headers.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

void headers_date(time_t t, char out[64])
{
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    localtime_r(&t, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(out, 64, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
             off / 60, off % 60);
}

void headers_received(struct buf *out, const struct headers_received *r)
{
    char date[64];
    headers_date(r->when, date);
    const char *helo = r->helo && *r->helo ? r->helo : r->client_ip;
    const char *ptr = r->ptr && *r->ptr ? r->ptr : "Unknown";
    buf_printf(out, "Received: from %s (%s [%s])\r\n\tby %s with %s id %s\r\n", helo, ptr,
               r->client_ip, r->hostname, r->protocol, r->id);
    if (r->tls_info && *r->tls_info)
        buf_printf(out, "\t(%s)\r\n", r->tls_info);
    if (r->for_rcpt)
        buf_printf(out, "\tfor <%s>; %s\r\n", r->for_rcpt, date);
    else
        buf_printf(out, "\t; %s\r\n", date);
}

void headers_message_id(const char *hostname, char *out, size_t size)
{
    uint8_t b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        for (size_t i = 0; i < sizeof(b); i++)
            b[i] = (uint8_t)random();
    }
    snprintf(out, size,
             "<%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X@%s>", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15], hostname);
}
