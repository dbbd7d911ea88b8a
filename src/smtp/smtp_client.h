/* smtp_client: one outbound SMTP session to one server, for one message and up to 100
 * recipients (RFC 5321 as a client, with ESMTP EHLO, PIPELINING RFC 2920, SIZE RFC 1870,
 * 8BITMIME RFC 6152, STARTTLS RFC 3207, implicit TLS RFC 8314, AUTH PLAIN RFC 4616 / LOGIN
 * RFC 4954; the dialogue of hmailserver-behaviour.md §8.5 and issue 4 item 4).
 *
 * The caller (the queue scheduler) walks a target's address list and calls smtp_client_send()
 * once per server; the result arrives in a callback on the loop thread, never from inside
 * smtp_client_send(). All recipients always get a result:
 *   ok                 accepted by the server after the final "250" (delivered);
 *   !ok && permanent   a 5xx reply decided it: bounce now (a refused AUTH never does: it is
 *                      temporary whatever its code, the administrator fixes credentials);
 *   !ok && !permanent  anything else (4xx, connection trouble, timeouts): retry, possibly on the
 *                      next address of the target.
 * For delivered recipients, text is the reply to the final dot ("250 2.0.0 queued as ...").
 * When a reply decided a recipient, rcpt.code is that reply's code, rcpt.text the reply and
 * rcpt.command the command it answered (bounce: "Remote server (<ip>) issued an error ...
 * sent: <command> ... replied: <text>", queue_bounce_error_remote). When no reply decided it
 * (connect failure, timeout, remote close, over-long reply, TLS handshake), rcpt.code is 0, text
 * and command are empty and res->error holds the one-line description for
 * queue_bounce_error_connection() ("Connection refused", QUEUE_BOUNCE_TEXT_TIMEOUT, ...).
 *
 * Replies (RFC 5321 §4.2): lines "NNN-text" ... "NNN text", terminated by CRLF (a bare LF is
 * tolerated from the server). A reply is shown as its code once, a space, and the text of its
 * lines joined by " / ": "250 first line / second line". A line longer than
 * SMTP_CLIENT_LINE_MAX bytes, or a reply whose lines (with codes and line ends) add up to more
 * than SMTP_CLIENT_REPLY_MAX bytes, ends the session with "Unexpected response from server (too
 * long)."; the input buffer never holds more than a bounded amount.
 *
 * Timeouts (RFC 5321 §4.5.3.2): connect, banner, each command reply, each step of writing the
 * message (data block) and the reply to the final dot, separately configurable. */
#ifndef GANNET_SMTP_SMTP_CLIENT_H
#define GANNET_SMTP_SMTP_CLIENT_H
#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/ipaddr.h"

struct event_base;
struct evbuffer;
struct tls_client;
struct smtp_client;

#define SMTP_CLIENT_MAX_RCPTS 100
#define SMTP_CLIENT_LINE_MAX 512    /* one reply line, without its CRLF */
#define SMTP_CLIENT_REPLY_MAX 10000 /* one whole reply, codes and line ends included */
#define SMTP_CLIENT_PASSWORD_REMOVED "<Password removed>"

/* RFC 5321 §4.5.3.2 defaults, in seconds. */
#define SMTP_CLIENT_TIMEOUT_CONNECT 300
#define SMTP_CLIENT_TIMEOUT_GREETING 300
#define SMTP_CLIENT_TIMEOUT_COMMAND 300
#define SMTP_CLIENT_TIMEOUT_DATA_BLOCK 180
#define SMTP_CLIENT_TIMEOUT_DATA_END 600
/* The reply to QUIT is awaited at most this long (or the command timeout if shorter). */
#define SMTP_CLIENT_TIMEOUT_QUIT 5

/* The connection-level descriptions in res->error (hmailserver-behaviour.md §8.6). */
#define SMTP_CLIENT_ERR_TIMEOUT "There was a timeout while talking to the remote server."
#define SMTP_CLIENT_ERR_CLOSED "Remote server closed connection."
#define SMTP_CLIENT_ERR_TOO_LONG "Unexpected response from server (too long)."
#define SMTP_CLIENT_ERR_INVALID "Unexpected response from server."
/* Local decisions given as a reply (permanent, code 500, like hMailServer). */
#define SMTP_CLIENT_ERR_NO_EHLO "Server does not support EHLO command."
#define SMTP_CLIENT_ERR_NO_STARTTLS "Server does not support STARTTLS."

enum smtp_client_security {
    SMTP_CLIENT_TLS_OPPORTUNISTIC, /* STARTTLS when offered; certificate not required to verify */
    SMTP_CLIENT_TLS_REQUIRED,      /* STARTTLS must be offered and the certificate must verify */
    SMTP_CLIENT_TLS_NONE,          /* never TLS */
    SMTP_CLIENT_TLS_IMPLICIT,      /* TLS from the first byte (port 465); certificate verified */
};

struct smtp_client_request {
    struct ipaddr ip;      /* the one server to talk to */
    int port;              /* 0 = 25 */
    const char *host_name; /* the server's name, for the certificate check and SNI; NULL = the IP */
    const char *helo_name; /* our host name for EHLO/HELO */
    enum smtp_client_security security;
    const char *auth_user, *auth_password; /* NULL = no AUTH */
    const char *sender;                    /* "" = null sender */
    const char *const *rcpts;              /* 1 .. SMTP_CLIENT_MAX_RCPTS addresses */
    size_t rcpts_count;
    /* The whole message with CRLF line ends (bare CR/LF are repaired on the wire). Not copied:
     * it must stay valid until the callback (or smtp_client_cancel). */
    const char *message;
    size_t message_len;
    /* Seconds; 0 = the RFC 5321 default above. */
    unsigned timeout_connect_s, timeout_greeting_s, timeout_command_s, timeout_data_block_s,
        timeout_data_end_s;
    const char *log_tag; /* prefix for log lines (e.g. the queue message id); NULL = none */
};

struct smtp_client_rcpt_result {
    int code;          /* the deciding reply's code; 0 = see smtp_client_result.error */
    bool ok;           /* delivered */
    bool permanent;    /* a 5xx decided it: bounce, do not retry */
    char command[512]; /* the command that reply answered ("RCPT TO:<a@b>", "DATA", ...) */
    char text[1024];   /* the reply, "550 5.1.1 No such user / second line" (truncated) */
};

struct smtp_client_result {
    bool connected;         /* a session was established (banner received) */
    bool tls;               /* the session used TLS (handshake completed) */
    bool tls_verified;      /* ... and the peer certificate and name verified */
    bool tls_failed;        /* opportunistic STARTTLS handshake failed: retry this server once
                               with SMTP_CLIENT_TLS_NONE */
    char last_command[512]; /* the last command sent (not QUIT); AUTH secrets replaced by
                               SMTP_CLIENT_PASSWORD_REMOVED */
    char error[1024];       /* one-line connection-level description, "" when none */
    struct smtp_client_rcpt_result *rcpts; /* rcpts_count entries, in request order */
    size_t rcpts_count;
};

/* res (and everything it points to) is valid only during the call; the client is freed after. */
typedef void smtp_client_done_cb(void *ctx, const struct smtp_client_result *res);

/* Start the session. The request's strings are copied (except message). tls may be NULL (then
 * STARTTLS is never used, and REQUIRED/IMPLICIT fail). Returns a handle that stays valid until
 * the callback has been called. */
struct smtp_client *smtp_client_send(struct event_base *base, struct tls_client *tls,
                                     const struct smtp_client_request *req, smtp_client_done_cb *cb,
                                     void *ctx);
/* Abandon a session (server shutdown): the socket is closed, the callback is never called. */
void smtp_client_cancel(struct smtp_client **c);

/* ---- Pure helpers (exposed for unit tests) ---- */

/* A reply being read line by line. */
struct smtp_client_reply {
    int code;         /* 0 until the first line */
    size_t total;     /* raw bytes counted against SMTP_CLIENT_REPLY_MAX */
    struct buf lines; /* the text after "NNN-"/"NNN " of each line, '\n'-separated */
};
enum smtp_client_reply_status {
    SMTP_CLIENT_REPLY_MORE,     /* a continuation line: feed the next one */
    SMTP_CLIENT_REPLY_DONE,     /* the last line: code and lines are complete */
    SMTP_CLIENT_REPLY_TOO_LONG, /* a line or the whole reply is over its limit */
    SMTP_CLIENT_REPLY_INVALID,  /* not "NNN", "NNN text" or "NNN-text" (RFC 5321 §4.2 ABNF) */
};
void smtp_client_reply_init(struct smtp_client_reply *r);
void smtp_client_reply_reset(struct smtp_client_reply *r);
void smtp_client_reply_free(struct smtp_client_reply *r);
/* Feed one line without its line end; the line end is counted in the total as two bytes. */
enum smtp_client_reply_status smtp_client_reply_feed(struct smtp_client_reply *r, const char *line,
                                                     size_t len);
/* "250 first / second" into out (control characters shown as '?', truncated to size - 1). */
void smtp_client_reply_format(const struct smtp_client_reply *r, char *out, size_t size);

/* What an EHLO reply advertises (RFC 5321 §4.1.1.1: the lines after the first are
 * "keyword [params]"). */
struct smtp_client_ehlo {
    bool pipelining, starttls, size, eightbitmime, auth, auth_plain, auth_login;
    unsigned long size_max; /* SIZE parameter, 0 = none given */
};
void smtp_client_ehlo_parse(const struct smtp_client_reply *r, struct smtp_client_ehlo *e_r);

/* The DATA body on the wire: leading dots doubled (RFC 5321 §4.5.2), every CR, LF and CRLF made
 * one CRLF, then the terminator, with a CRLF before it unless the message already ends with a
 * line end. Streaming: feed any number of chunks, then finish. */
struct smtp_client_dotstuff {
    bool bol; /* at the start of a line */
    bool cr;  /* the last byte fed was CR (its CRLF already written) */
};
void smtp_client_dotstuff_init(struct smtp_client_dotstuff *st);
void smtp_client_dotstuff_feed(struct smtp_client_dotstuff *st, const char *p, size_t n,
                               struct evbuffer *out);
void smtp_client_dotstuff_finish(struct smtp_client_dotstuff *st, struct evbuffer *out);
/* The message has bytes >= 0x80 (BODY=8BITMIME is then declared when the server offers it). */
bool smtp_client_has_8bit(const char *p, size_t n);

#endif
