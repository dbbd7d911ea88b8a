/* headers: header fields the server writes — Received (hmailserver-behaviour.md §9, RFC 5321
 * §4.4), Message-ID — and the RFC 5322 date format they use. */
#ifndef GANNET_MAIL_HEADERS_H
#define GANNET_MAIL_HEADERS_H
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "lib/buf.h"

/* "Fri, 4 Sep 2026 21:53:33 +0200" (day not zero-padded), server local time. */
void headers_date(time_t t, char out[64]);

struct headers_received {
    const char *helo;      /* "" when the client sent none: the client IP is used */
    const char *ptr;       /* reverse name, or NULL/"" -> "Unknown" */
    const char *client_ip;
    const char *hostname;  /* ours */
    const char *protocol;  /* ESMTP, ESMTPS, ESMTPA, ESMTPSA */
    const char *tls_info;  /* "version=TLSv1.3 cipher=... bits=256" or NULL */
    const char *id;        /* queue id */
    const char *for_rcpt;  /* the recipient when there is exactly one, else NULL */
    time_t when;
};

/* Append the complete Received field (folded with TAB continuation lines, ending in CRLF). */
void headers_received(struct buf *out, const struct headers_received *r);
/* "<8-4-4-4-12 upper-case hex GUID@hostname>" */
void headers_message_id(const char *hostname, char *out, size_t size);

#endif
