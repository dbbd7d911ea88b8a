/* conn: client connection over a libevent bufferevent (see conn.h).
 * Limits: input is read up to CONN_READ_HIGH bytes ahead of the session; output above
 * CONN_WRITE_HIGH pauses input processing until it drains below CONN_WRITE_LOW. */
#include "net/conn.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define CONN_READ_HIGH (512 * 1024)
#define CONN_WRITE_HIGH (64 * 1024)
#define CONN_WRITE_LOW (16 * 1024)

struct conn {
    struct event_base *base;
    int fd;
    struct bufferevent *bev;
    SSL *ssl;               /* set once TLS starts */
    SSL *tls_pending;       /* STARTTLS: switch to TLS once the output is flushed */
    bool tls_ready;         /* handshake completed */
    const struct conn_handler *h;
    void *ctx;
    struct ipaddr peer_ip;
    int peer_port;
    int local_port;
    char peer_str[IPADDR_STRLEN];
    bool paused;       /* by the owner */
    bool out_blocked;  /* by backpressure */
    bool closing;
    bool closed_sent;
    struct event *deferred; /* delivers on_closed / resumed input outside callers' stacks */
    struct event *flush;    /* sends c->pending at the end of the loop iteration */
    struct buf pending;     /* plain-text output not yet handed to the socket (conn_flush) */
    struct event *idle;     /* fires when the owner has not called conn_touch() for timeout_s */
    unsigned timeout_s;
    bool deferred_close;
};

static void conn_update_reading(struct conn *c)
{
    if (c->closing || c->paused || c->out_blocked || c->tls_pending)
        bufferevent_disable(c->bev, EV_READ);
    else
        bufferevent_enable(c->bev, EV_READ);
}

static void conn_deferred_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (c->deferred_close) {
        if (!c->closed_sent) {
            c->closed_sent = true;
            c->h->on_closed(c->ctx); /* owner frees the conn here */
        }
        return;
    }
    if (!c->closing && !c->paused && !c->out_blocked &&
        evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        c->h->on_input(c->ctx);
}

static void conn_schedule_close(struct conn *c)
{
    c->closing = true;
    c->deferred_close = true;
    bufferevent_disable(c->bev, EV_READ);
    event_active(c->deferred, EV_TIMEOUT, 0);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (c->closing || c->paused || c->out_blocked || c->tls_pending)
        return;
    c->h->on_input(c->ctx);
}

static void conn_tls_switch(struct conn *c);
static void conn_flush_cb(evutil_socket_t fd, short what, void *arg);

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    size_t out = evbuffer_get_length(bufferevent_get_output(bev));
    if (c->tls_pending && out == 0 && !c->closing) {
        conn_tls_switch(c);
        return;
    }
    if (c->closing) {
        if (out == 0 && !c->deferred_close)
            conn_schedule_close(c);
        return;
    }
    if (c->out_blocked && out <= CONN_WRITE_LOW) {
        c->out_blocked = false;
        conn_update_reading(c);
        event_active(c->deferred, EV_TIMEOUT, 0); /* process input that is already buffered */
    }
}

static void conn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (c->closing)
        conn_schedule_close(c);
    else
        c->h->on_timeout(c->ctx);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (what & BEV_EVENT_TIMEOUT) {
        log_debug("connection from [%s]: peer does not read, dropping it", c->peer_str);
        conn_schedule_close(c); /* output timeout: the peer stopped reading */
        return;
    }
    if ((what & BEV_EVENT_CONNECTED) && c->ssl) {
        c->tls_ready = true;
        if (c->h->on_tls_ready && !c->closing)
            c->h->on_tls_ready(c->ctx);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (c->ssl && !c->tls_ready)
            log_debug("TLS handshake with [%s] failed", c->peer_str);
        if (!c->deferred_close)
            conn_schedule_close(c);
    }
}

struct conn *conn_new(struct event_base *base, int fd, const struct conn_handler *h, void *ctx)
{
    struct conn *c = xcalloc(1, sizeof(*c));
    c->base = base;
    c->h = h;
    c->ctx = ctx;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        ipaddr_from_sockaddr((struct sockaddr *)&ss, &c->peer_ip, &c->peer_port);
    ipaddr_format(&c->peer_ip, c->peer_str);
    struct ipaddr local;
    sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        ipaddr_from_sockaddr((struct sockaddr *)&ss, &local, &c->local_port);
    c->fd = fd;
    /* Replies are whole lines written when they are ready; do not let Nagle hold one back
     * waiting for the client's delayed ACK (40 ms per pipelined step otherwise). */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->bev = bufferevent_socket_new(base, fd, 0); /* the fd is closed by conn_free */
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_READ_HIGH);
    c->deferred = event_new(base, -1, 0, conn_deferred_cb, c);
    c->flush = event_new(base, -1, 0, conn_flush_cb, c);
    buf_init(&c->pending, 0);
    c->idle = event_new(base, -1, 0, conn_idle_cb, c);
    bufferevent_enable(c->bev, EV_WRITE);
    conn_update_reading(c);
    return c;
}

void conn_free(struct conn **cp)
{
    struct conn *c = *cp;
    if (!c)
        return;
    bufferevent_free(c->bev);
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->tls_pending)
        SSL_free(c->tls_pending);
    close(c->fd);
    event_free(c->deferred);
    event_free(c->flush);
    buf_free(&c->pending);
    event_free(c->idle);
    free(c);
    *cp = NULL;
}

const struct ipaddr *conn_peer_ip(const struct conn *c)
{
    return &c->peer_ip;
}

const char *conn_peer_str(const struct conn *c)
{
    return c->peer_str;
}

int conn_peer_port(const struct conn *c)
{
    return c->peer_port;
}

int conn_local_port(const struct conn *c)
{
    return c->local_port;
}

struct evbuffer *conn_input(struct conn *c)
{
    return bufferevent_get_input(c->bev);
}

struct bufferevent *conn_bev(struct conn *c)
{
    return c->bev;
}

void conn_set_timeout(struct conn *c, unsigned seconds)
{
    c->timeout_s = seconds;
    /* A peer that stops reading our output is dropped after the same time. */
    struct timeval tv = {(time_t)seconds, 0};
    bufferevent_set_timeouts(c->bev, NULL, seconds ? &tv : NULL);
    conn_touch(c);
}

void conn_touch(struct conn *c)
{
    if (c->closing || !c->timeout_s)
        return;
    struct timeval tv = {(time_t)c->timeout_s, 0};
    event_add(c->idle, &tv);
}

/* Backpressure: above CONN_WRITE_HIGH queued bytes, input processing pauses until the output
 * drains below CONN_WRITE_LOW (conn_write_cb). */
static void conn_check_output(struct conn *c)
{
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > CONN_WRITE_HIGH && !c->out_blocked) {
        c->out_blocked = true;
        bufferevent_setwatermark(c->bev, EV_WRITE, CONN_WRITE_LOW, 0);
        conn_update_reading(c);
    }
}

/* Plain text: the replies produced in one loop iteration are gathered in c->pending and sent
 * together by conn_flush at its end, straight to the socket when nothing is queued — one send()
 * per burst instead of arming and disarming the write event (two epoll_ctl calls and another
 * loop iteration) per reply. What the socket does not take goes to the bufferevent as usual. */
static void conn_flush(struct conn *c)
{
    if (c->pending.len == 0)
        return;
    const char *p = c->pending.data;
    size_t len = c->pending.len;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        }
    }
    if (len > 0)
        bufferevent_write(c->bev, p, len); /* errors surface through the event callback */
    if (c->pending.cap > 4096)
        buf_free(&c->pending); /* do not keep a large buffer per idle connection */
    else
        buf_reset(&c->pending);
    conn_check_output(c);
}

static void conn_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_flush(arg);
}

void conn_write(struct conn *c, const void *data, size_t len)
{
    if (c->deferred_close)
        return;
    if (c->ssl) {
        bufferevent_write(c->bev, data, len);
        conn_check_output(c);
        return;
    }
    if (c->pending.len == 0)
        event_active(c->flush, EV_TIMEOUT, 0);
    buf_append(&c->pending, data, len);
    if (c->pending.len > CONN_WRITE_LOW)
        conn_flush(c); /* a large burst: hand it over now so backpressure can see it */
}

void conn_pause(struct conn *c)
{
    c->paused = true;
    conn_update_reading(c);
}

void conn_resume(struct conn *c)
{
    if (!c->paused)
        return;
    c->paused = false;
    conn_update_reading(c);
    if (!c->closing)
        event_active(c->deferred, EV_TIMEOUT, 0);
}

bool conn_is_paused(const struct conn *c)
{
    return c->paused;
}

bool conn_output_blocked(const struct conn *c)
{
    return c->out_blocked;
}

void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    conn_flush(c); /* the last replies go before the close */
    c->closing = true;
    bufferevent_disable(c->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        conn_schedule_close(c);
    } else {
        /* Give the peer a few seconds to take our last reply, then drop it. */
        struct timeval tv = {5, 0};
        bufferevent_set_timeouts(c->bev, NULL, &tv);
        event_add(c->idle, &tv);
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    }
}

bool conn_is_closing(const struct conn *c)
{
    return c->closing;
}

enum conn_line_status conn_read_line(struct conn *c, size_t max_len, size_t hard_max,
                                     struct buf *line)
{
    if (c->tls_pending)
        return CONN_LINE_NONE; /* nothing before the handshake counts */
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer_ptr p = evbuffer_search(in, "\r\n", 2, NULL);
    if (p.pos < 0) {
        if (evbuffer_get_length(in) >= hard_max)
            return CONN_LINE_EXCESSIVE;
        return CONN_LINE_NONE;
    }
    size_t n = (size_t)p.pos;
    if (n > max_len) {
        evbuffer_drain(in, n + 2);
        return CONN_LINE_TOO_LONG;
    }
    buf_reset(line);
    char tmp[1024];
    size_t left = n;
    while (left > 0) {
        size_t k = left < sizeof(tmp) ? left : sizeof(tmp);
        evbuffer_remove(in, tmp, k);
        if (buf_append(line, tmp, k) < 0) {
            evbuffer_drain(in, left - k + 2);
            return CONN_LINE_TOO_LONG;
        }
        left -= k;
    }
    evbuffer_drain(in, 2);
    return CONN_LINE_OK;
}

/* ---- TLS ---- */

static void conn_tls_switch(struct conn *c)
{
    SSL *ssl = c->tls_pending;
    c->tls_pending = NULL;
    /* Whatever the client sent after STARTTLS is discarded, never executed after the handshake
     * (RFC 3207 §6: it could have been injected by an attacker in the clear). */
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t junk = evbuffer_get_length(in);
    if (junk)
        log_debug("connection from [%s]: discarding %zu byte(s) sent before the TLS handshake",
                  c->peer_str, junk);
    bufferevent_free(c->bev);
    c->ssl = ssl;
    c->bev = bufferevent_openssl_socket_new(c->base, c->fd, ssl, BUFFEREVENT_SSL_ACCEPTING, 0);
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_READ_HIGH);
    if (c->timeout_s) {
        struct timeval tv = {(time_t)c->timeout_s, 0};
        bufferevent_set_timeouts(c->bev, NULL, &tv);
    }
    bufferevent_enable(c->bev, EV_WRITE);
    conn_update_reading(c);
}

void conn_start_tls(struct conn *c, SSL *ssl)
{
    conn_flush(c); /* the 220 goes out in plain text first */
    c->tls_pending = ssl;
    bufferevent_disable(c->bev, EV_READ);
    /* Bytes pipelined after STARTTLS are never executed (RFC 3207 §6). */
    struct evbuffer *in = bufferevent_get_input(c->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_tls_switch(c);
    /* else: conn_write_cb switches once the last plain-text reply is on the wire */
}

SSL *conn_ssl(const struct conn *c)
{
    return c->tls_ready ? c->ssl : NULL;
}

bool conn_is_tls(const struct conn *c)
{
    return c->ssl != NULL || c->tls_pending != NULL;
}
