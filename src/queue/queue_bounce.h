/* queue_bounce: non-delivery reports (hmailserver-behaviour.md §8.6, §8.7, §4.5; replies.md
 * "Bounce texts"; RFC 3464 delivery status notifications inside an RFC 6522 multipart/report).
 *
 *   queue_bounce_wanted        may a bounce be sent for this message at all?
 *   queue_bounce_error_*       the per-recipient error blocks of §8.6 (each line indented by three
 *                              spaces, CRLF line ends, no leading address line)
 *   queue_bounce_status_from_reply  RFC 3463 status code for the delivery-status part
 *   queue_bounce_build         the complete bounce message
 *   queue_bounce_enqueue       queue it durably for the original sender (null envelope sender)
 *
 * Everything here is synchronous and thread-safe (the scheduler and local delivery call it from
 * worker threads); error strings are thread-local. The original's header section is read with
 * store_blob_header_section() (store/store.h) with max QUEUE_BOUNCE_HEADER_MAX. */
#ifndef GANNET_QUEUE_BOUNCE_H
#define GANNET_QUEUE_BOUNCE_H
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dir/dir.h"
#include "lib/buf.h"

/* How much of the original's header section callers read for a bounce. */
#define QUEUE_BOUNCE_HEADER_MAX (64 * 1024)
/* No bounce once the original's X-Gannet-Loop header has reached this value (§8.7 rulelooplimit).
 */
#define QUEUE_BOUNCE_LOOP_LIMIT 5
/* The loop counter header, incremented in every bounce. */
#define QUEUE_BOUNCE_LOOP_HEADER "X-Gannet-Loop"
/* A comfortable size for the error block buffers (a remote reply may be up to 10 000 chars). */
#define QUEUE_BOUNCE_ERROR_MAX 12288

/* Descriptions for queue_bounce_error_text() (§8.3 step 6, §4.5, §8.6). The first and the quota
 * text get their "Additional information" line automatically. */
#define QUEUE_BOUNCE_TEXT_NO_MX "No mail servers appear to exists for the recipient's address."
#define QUEUE_BOUNCE_TEXT_RELAY_NOT_FOUND                                                          \
    "The host specified as SMTP relay server could not be found. Please contact your server "      \
    "administrator."
#define QUEUE_BOUNCE_TEXT_DNS_FAILED                                                               \
    "Unable to find the recipient's email server. The DNS query has failed."
#define QUEUE_BOUNCE_TEXT_INBOX_FULL "Inbox is full"
/* Descriptions for queue_bounce_error_connection() (§8.6). */
#define QUEUE_BOUNCE_TEXT_TIMEOUT "There was a timeout while talking to the remote server."
#define QUEUE_BOUNCE_TEXT_REMOTE_CLOSED "Remote server closed connection."

struct queue_bounce_rcpt {
    const char *address;    /* the failed recipient as the sender addressed it */
    const char *error;      /* a block from queue_bounce_error_*(); NULL = none */
    const char *status;     /* RFC 3463 "5.1.1"; NULL = derived from diagnostic (else 5.0.0 /
                               4.0.0 by `permanent`) */
    const char *remote_mta; /* "dns; mx.example.test" or NULL */
    const char *diagnostic; /* "smtp; 550 No such user" or NULL */
    bool permanent;         /* false: retries exhausted ("Tried <n> time(s)") */
};

/* False for the null sender, a sender whose local part is mailer-daemon (any case), an original
 * with an Auto-Submitted header whose value is not "no", or with X-Gannet-Loop >= 5.
 * header_section is the original's header section (NUL-terminated; NULL = none). */
bool queue_bounce_wanted(const char *sender, const char *header_section);

/* The error blocks. Each returns 0, or -1 when out was too small (out then holds a truncated,
 * still NUL-terminated block). CR/LF inside the arguments become spaces.
 *   remote:     "   Error Type: SMTP\r\n   Remote server (<ip>) issued an error.\r\n
 *                "   Gannet sent: <sent>\r\n   Remote server replied: <reply>\r\n"
 *               (sent: the last command, with any password already replaced by the caller with
 *               "<Password removed>")
 *   connection: "   Error Type: SMTP\r\n   Connection to recipients server failed.\r\n
 *                "   Error: <description>\r\n"
 *   loop:       connection failure with "Could not connect to <ip> on port <port> since this
 *               would mean connecting to myself." (§8.4)
 *   text:       "   Error Type: SMTP\r\n   Error Description: <text>\r\n" plus
 *               "   Additional information: ...\r\n" for QUEUE_BOUNCE_TEXT_NO_MX and _INBOX_FULL
 *   quota:      text(QUEUE_BOUNCE_TEXT_INBOX_FULL) (§4.5) */
int queue_bounce_error_remote(const char *ip, const char *sent, const char *reply, char *out,
                              size_t size);
int queue_bounce_error_connection(const char *description, char *out, size_t size);
int queue_bounce_error_loop(const char *ip, unsigned port, char *out, size_t size);
int queue_bounce_error_text(const char *text, char *out, size_t size);
int queue_bounce_error_quota(char *out, size_t size);

/* The RFC 3463 status carried by an SMTP reply ("550 5.1.1 No such user" -> "5.1.1"; also after
 * "550-"), else "5.0.0" when permanent, "4.0.0" when not. reply may be NULL. out >= 16 bytes. */
void queue_bounce_status_from_reply(const char *reply, bool permanent, char *out, size_t size);

/* Build the whole bounce (CRLF line ends, every line <= 998 bytes), appended to out:
 * multipart/report; report-type=delivery-status with
 *   1. text/plain; charset=utf-8: the §8.7 template signed "Gannet" (7bit, or quoted-printable
 *      when the text is not plain ASCII or has an over-long line);
 *   2. message/delivery-status: Reporting-MTA: dns; <hostname>, Arrival-Date (the date of the
 *      original's topmost Received header, when it has one), then per recipient
 *      Final-Recipient, Action: failed, Status, Remote-MTA, Diagnostic-Code;
 *   3. text/rfc822-headers: the original header section.
 * Headers: From: Mail Delivery System <mailer-daemon@hostname>, To: <sender>,
 * Subject: Message undeliverable: <original subject>, Date (now), Message-ID <GUID@hostname>,
 * MIME-Version, Content-Type, Auto-Submitted: auto-generated, X-Gannet-Loop: <original + 1>.
 * Permanent recipients are listed one by one; the others are grouped and followed by
 * "Tried <tries> time(s)". Returns 0, or -1 (bad arguments; out full: out left as it was). */
int queue_bounce_build(const char *hostname, const char *sender, const char *header_section,
                       const struct queue_bounce_rcpt *rcpts, size_t count, unsigned tries,
                       time_t now, struct buf *out, const char **err_r);

/* Queue the bounce: envelope sender "" and one recipient, the original sender, resolved with
 * policy_expand_address() (a local sender -> 'local' rows, delivered into the INBOX by
 * queue_deliver_message(), which the caller triggers; a remote one -> a 'remote' row left
 * 'queued' for the scheduler). Written durably through queue_spool_open/write/commit.
 * Returns 0 and *message_id_r, or -1 (directory failure, sender that cannot receive mail,
 * spool or database failure: nothing is left behind). */
int queue_bounce_enqueue(sqlite3 *db, struct dir *d, const char *data_dir, const char *sender,
                         const struct buf *bounce, int64_t *message_id_r, const char **err_r);

#endif
