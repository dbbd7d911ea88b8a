/* conn: one client connection on the event loop — a libevent bufferevent plus Gannet's rules:
 * strict CRLF line reading with hard limits, write backpressure (stop reading while queued output
 * is above a high-water mark), idle timeouts, and close-after-flush. Protocol sessions (smtp,
 * later pop3/imap) sit on top through struct conn_handler.
 *
 * Callbacks never free the conn on their own stack: conn_close() schedules on_closed() from a
 * fresh event, and only there may the owner call conn_free(). */
#ifndef GANNET_NET_CONN_H
#define GANNET_NET_CONN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/ipaddr.h"

struct event_base;
struct evbuffer;
struct bufferevent;
struct conn;

struct conn_handler {
    /* Bytes are waiting in conn_input() (also called again after a pause ends). */
    void (*on_input)(void *ctx);
    /* No progress (conn_touch) for the configured timeout. */
    void (*on_timeout)(void *ctx);
    /* The connection is finished (peer closed, error, or conn_close()); free it now. */
    void (*on_closed)(void *ctx);
    /* The TLS handshake completed (conn_start_tls). May be NULL. */
    void (*on_tls_ready)(void *ctx);
};

enum conn_line_status {
    CONN_LINE_OK = 0,     /* a line (without CRLF) is in *line */
    CONN_LINE_NONE,       /* no complete line yet */
    CONN_LINE_TOO_LONG,   /* a CRLF-terminated line longer than max_len was read and dropped */
    CONN_LINE_EXCESSIVE,  /* hard_max bytes without CRLF: the caller should answer and close */
};

struct conn *conn_new(struct event_base *base, int fd, const struct conn_handler *h, void *ctx);
void conn_free(struct conn **c);

const struct ipaddr *conn_peer_ip(const struct conn *c);
const char *conn_peer_str(const struct conn *c); /* "127.0.0.2" */
int conn_peer_port(const struct conn *c);
int conn_local_port(const struct conn *c);
struct evbuffer *conn_input(struct conn *c);
struct bufferevent *conn_bev(struct conn *c);

/* Idle timeout: on_timeout fires when conn_touch() was not called for this long (the owner
 * decides what progress is: a complete command, DATA bytes). Also the limit for a peer that
 * does not read our output. */
void conn_set_timeout(struct conn *c, unsigned seconds);
void conn_touch(struct conn *c);
void conn_write(struct conn *c, const void *data, size_t len);
/* Stop/resume delivering input (e.g. while a worker job for this session runs). */
void conn_pause(struct conn *c);
void conn_resume(struct conn *c);
bool conn_is_paused(const struct conn *c);
/* True while queued output is above the high-water mark: do not process more input. */
bool conn_output_blocked(const struct conn *c);
/* Finish writing queued output, then close. Further input is ignored. */
void conn_close(struct conn *c);
bool conn_is_closing(const struct conn *c);

/* Switch to TLS (takes ownership of ssl): once queued output (e.g. "220 Ready to start TLS") is
 * written, input received so far is discarded and the server-side handshake starts on the same
 * socket; on_tls_ready fires when it completes, a failed handshake closes the connection. */
struct ssl_st;
void conn_start_tls(struct conn *c, struct ssl_st *ssl);
/* The TLS session once the handshake is done, else NULL. */
struct ssl_st *conn_ssl(const struct conn *c);
/* TLS started (handshake done or in progress). */
bool conn_is_tls(const struct conn *c);

/* Read one line terminated by exactly CRLF (a bare LF or CR never ends a line). */
enum conn_line_status conn_read_line(struct conn *c, size_t max_len, size_t hard_max,
                                     struct buf *line);

#endif
