/* smtp_client: the outbound SMTP client session (see smtp_client.h for the contract).
 *
 *   smtp_client_send      start one session (connect, banner, EHLO/HELO, STARTTLS, AUTH, MAIL,
 *                         RCPT..., DATA, QUIT) and report per-recipient results in a callback
 *   smtp_client_cancel    drop a session without its callback (shutdown)
 * The wire formats it reads and writes (replies, EHLO keywords, the dot-stuffed body) are in
 * smtp_client_wire.c.
 *
 * One state machine: sc_enter() changes the state and sends what that state sends (and arms its
 * timer); sc_on_reply() decides what a complete reply means in the current state. Failures never
 * call back from inside a libevent callback: sc_finish() schedules a deferred event that calls
 * the owner and frees the session. Nothing here grows with untrusted input: reply lines are
 * read from an input buffer capped by the read high-water mark and rejected past
 * SMTP_CLIENT_LINE_MAX, whole replies past SMTP_CLIENT_REPLY_MAX; the message is written in
 * chunks as the socket drains. */
#include "smtp/smtp_client.h"

#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/base64.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "net/tls_client.h"

#define SC_READ_HIGH (16 * 1024)          /* input buffered ahead of the parser, at most */
#define SC_BODY_CHUNK (64 * 1024)         /* message bytes encoded per step */
#define SC_BODY_LOW (16 * 1024)           /* encode more once the output drained below this */
#define SC_END_OF_DATA "(end of message)" /* what a reply to the final dot answered */

enum sc_state {
    SC_CONNECT,         /* TCP connect in progress */
    SC_TLS_IMPLICIT,    /* TLS handshake right after connect */
    SC_BANNER,          /* waiting for the greeting */
    SC_EHLO,            /* EHLO sent */
    SC_HELO,            /* HELO sent (EHLO was refused) */
    SC_STARTTLS,        /* STARTTLS sent */
    SC_TLS_HANDSHAKE,   /* 220 to STARTTLS received, handshake running */
    SC_AUTH_PLAIN,      /* AUTH PLAIN <initial response> sent */
    SC_AUTH_LOGIN,      /* AUTH LOGIN sent, expecting 334 */
    SC_AUTH_LOGIN_USER, /* user name sent */
    SC_AUTH_LOGIN_PASS, /* password sent */
    SC_MAIL,            /* MAIL sent (with PIPELINING also every RCPT) */
    SC_RCPT,            /* waiting for the reply to RCPT number rcpt_reply */
    SC_DATA,            /* DATA sent */
    SC_BODY,            /* writing the message; then waiting for the reply to the dot */
    SC_QUIT,            /* QUIT sent */
    SC_DONE,            /* finished; the deferred event calls back and frees */
};

enum sc_rcpt_state { SC_RCPT_OPEN, SC_RCPT_ACCEPTED, SC_RCPT_DECIDED };

struct smtp_client {
    struct event_base *base;
    struct tls_client *tls;
    smtp_client_done_cb *cb;
    void *cb_ctx;
    enum sc_state state;

    int fd;
    struct bufferevent *bev;
    SSL *ssl;
    struct event *timer;    /* the current state's timeout */
    struct event *deferred; /* finish outside libevent callbacks */

    /* the request, copied */
    struct ipaddr ip;
    int port;
    char ipstr[IPADDR_STRLEN];
    char *host_name, *helo_name, *auth_user, *auth_password, *sender, *tag;
    char **rcpts;
    size_t rcpts_count;
    const char *message;
    size_t message_len;
    bool message_8bit;
    enum smtp_client_security security;
    unsigned t_connect, t_greeting, t_command, t_data_block, t_data_end;

    /* the session */
    struct smtp_client_reply reply;
    struct smtp_client_ehlo ehlo;
    bool tls_active;
    bool pipelined;    /* MAIL and every RCPT went out in one write */
    bool mail_failed;  /* MAIL was refused: RCPT replies are read and ignored */
    size_t rcpt_reply; /* the recipient whose RCPT reply comes next */
    size_t accepted;   /* recipients with a positive RCPT reply */
    char mail_cmd[512];
    enum sc_rcpt_state *rstate;
    size_t body_pos;
    bool body_done;
    struct smtp_client_dotstuff ds;
    struct smtp_client_result res;
};

static const char *sc_state_name(enum sc_state st)
{
    /* clang-format off */
    static const char *const names[] = {
        "CONNECT", "TLS_IMPLICIT", "BANNER", "EHLO", "HELO", "STARTTLS", "TLS_HANDSHAKE",
        "AUTH_PLAIN", "AUTH_LOGIN", "AUTH_LOGIN_USER", "AUTH_LOGIN_PASS", "MAIL", "RCPT", "DATA",
        "BODY", "QUIT", "DONE",
    };
    /* clang-format on */
    return (size_t)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

/* ---- Session plumbing ---- */

static void sc_set_state(struct smtp_client *c, enum sc_state st)
{
    if (c->state != st)
        log_debug("%s: smtp client [%s]:%d: %s -> %s", c->tag, c->ipstr, c->port,
                  sc_state_name(c->state), sc_state_name(st));
    c->state = st;
}

static void sc_arm(struct smtp_client *c, unsigned seconds)
{
    struct timeval tv = {(time_t)seconds, 0};
    event_add(c->timer, &tv);
}

static void sc_finish(struct smtp_client *c)
{
    if (c->state == SC_DONE)
        return;
    sc_set_state(c, SC_DONE);
    event_del(c->timer);
    if (c->bev)
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    event_active(c->deferred, EV_TIMEOUT, 0);
}

static void sc_decide(struct smtp_client *c, size_t i, bool ok, bool permanent, int code,
                      const char *text, const char *command)
{
    struct smtp_client_rcpt_result *r = &c->res.rcpts[i];
    r->ok = ok;
    r->permanent = permanent;
    r->code = code;
    str_copy(r->text, sizeof(r->text), text ? text : "");
    str_copy(r->command, sizeof(r->command), command ? command : "");
    c->rstate[i] = SC_RCPT_DECIDED;
}

/* Every recipient not decided yet fails with the current reply. */
static void sc_fail_open_reply(struct smtp_client *c, const char *command, bool force_temp)
{
    char text[sizeof(c->res.rcpts[0].text)];
    smtp_client_reply_format(&c->reply, text, sizeof(text));
    bool perm = !force_temp && c->reply.code >= 500;
    for (size_t i = 0; i < c->rcpts_count; i++)
        if (c->rstate[i] != SC_RCPT_DECIDED)
            sc_decide(c, i, false, perm, c->reply.code, text, command);
}

/* Every recipient not decided yet fails with a local decision shown as a reply. */
static void sc_fail_open_local(struct smtp_client *c, int code, const char *text)
{
    for (size_t i = 0; i < c->rcpts_count; i++)
        if (c->rstate[i] != SC_RCPT_DECIDED)
            sc_decide(c, i, false, code >= 500, code, text, c->res.last_command);
}

/* A connection-level failure: recipients not decided yet fail temporarily; the session ends
 * without QUIT (the dialogue is out of step or the connection is gone). */
static void sc_fail_conn(struct smtp_client *c, const char *error)
{
    if (c->state == SC_DONE)
        return;
    log_debug("%s: smtp client [%s]:%d: %s in state %s", c->tag, c->ipstr, c->port, error,
              sc_state_name(c->state));
    if (!c->res.error[0])
        str_copy(c->res.error, sizeof(c->res.error), error);
    for (size_t i = 0; i < c->rcpts_count; i++)
        if (c->rstate[i] != SC_RCPT_DECIDED)
            sc_decide(c, i, false, false, 0, "", "");
    sc_finish(c);
}

/* Send one command line; `shown` is what last_command records (secrets removed). */
static void sc_send(struct smtp_client *c, const char *line, const char *shown)
{
    bufferevent_write(c->bev, line, strlen(line));
    bufferevent_write(c->bev, "\r\n", 2);
    str_copy(c->res.last_command, sizeof(c->res.last_command), shown ? shown : line);
}

static void sc_enter(struct smtp_client *c, enum sc_state st);

static void sc_quit(struct smtp_client *c)
{
    sc_enter(c, SC_QUIT);
}

/* ---- Entering states: what each one sends ---- */

static void sc_send_rcpt(struct smtp_client *c, size_t i)
{
    char line[512];
    snprintf(line, sizeof(line), "RCPT TO:<%s>", c->rcpts[i]);
    sc_send(c, line, NULL);
}

static void sc_send_mail(struct smtp_client *c)
{
    char params[64] = "";
    if (c->ehlo.size)
        snprintf(params, sizeof(params), " SIZE=%zu", c->message_len);
    if (c->ehlo.eightbitmime && c->message_8bit)
        strcat(params, " BODY=8BITMIME");
    snprintf(c->mail_cmd, sizeof(c->mail_cmd), "MAIL FROM:<%s>%s", c->sender, params);
    c->pipelined = c->ehlo.pipelining;
    c->mail_failed = false;
    c->rcpt_reply = 0;
    c->accepted = 0;
    sc_send(c, c->mail_cmd, NULL);
    if (c->pipelined) /* RFC 2920 §3.1: MAIL and RCPT may go together; DATA waits (see RCPT) */
        for (size_t i = 0; i < c->rcpts_count; i++)
            sc_send_rcpt(c, i);
}

static void sc_send_auth_plain(struct smtp_client *c)
{
    size_t ul = strlen(c->auth_user), pl = strlen(c->auth_password);
    size_t n = ul + pl + 2;
    unsigned char *raw = xmalloc(n);
    raw[0] = '\0';
    memcpy(raw + 1, c->auth_user, ul);
    raw[1 + ul] = '\0';
    memcpy(raw + 2 + ul, c->auth_password, pl);
    size_t bsz = 4 * ((n + 2) / 3) + 1;
    char *line = xmalloc(bsz + 16);
    memcpy(line, "AUTH PLAIN ", 11);
    base64_encode(raw, n, line + 11, bsz);
    sc_send(c, line, "AUTH PLAIN " SMTP_CLIENT_PASSWORD_REMOVED);
    OPENSSL_cleanse(raw, n);
    OPENSSL_cleanse(line, strlen(line));
    free(raw);
    free(line);
}

static void sc_send_base64(struct smtp_client *c, const char *s, bool secret)
{
    size_t n = strlen(s);
    size_t bsz = 4 * ((n + 2) / 3) + 1;
    char *line = xmalloc(bsz);
    base64_encode((const unsigned char *)s, n, line, bsz);
    sc_send(c, line, secret ? SMTP_CLIENT_PASSWORD_REMOVED : NULL);
    OPENSSL_cleanse(line, strlen(line));
    free(line);
}

static void sc_body_pump(struct smtp_client *c);

static void sc_enter(struct smtp_client *c, enum sc_state st)
{
    char line[600];
    sc_set_state(c, st);
    switch (st) {
    case SC_EHLO:
    case SC_HELO:
        snprintf(line, sizeof(line), "%s %s", st == SC_EHLO ? "EHLO" : "HELO", c->helo_name);
        sc_send(c, line, NULL);
        sc_arm(c, c->t_command);
        break;
    case SC_STARTTLS:
        sc_send(c, "STARTTLS", NULL);
        sc_arm(c, c->t_command);
        break;
    case SC_AUTH_PLAIN:
        sc_send_auth_plain(c);
        sc_arm(c, c->t_command);
        break;
    case SC_AUTH_LOGIN:
        sc_send(c, "AUTH LOGIN", NULL);
        sc_arm(c, c->t_command);
        break;
    case SC_AUTH_LOGIN_USER:
        sc_send_base64(c, c->auth_user, false);
        sc_arm(c, c->t_command);
        break;
    case SC_AUTH_LOGIN_PASS:
        sc_send_base64(c, c->auth_password, true);
        sc_arm(c, c->t_command);
        break;
    case SC_MAIL:
        sc_send_mail(c);
        sc_arm(c, c->t_command);
        break;
    case SC_RCPT: /* without PIPELINING: the next RCPT */
        sc_send_rcpt(c, c->rcpt_reply);
        sc_arm(c, c->t_command);
        break;
    case SC_DATA:
        sc_send(c, "DATA", NULL);
        sc_arm(c, c->t_command);
        break;
    case SC_BODY:
        /* The data-block timeout is the write timeout; the reply timer starts after the dot. */
        event_del(c->timer);
        c->body_pos = 0;
        c->body_done = false;
        smtp_client_dotstuff_init(&c->ds);
        str_copy(c->res.last_command, sizeof(c->res.last_command), SC_END_OF_DATA);
        bufferevent_setwatermark(c->bev, EV_WRITE, SC_BODY_LOW, 0);
        sc_body_pump(c);
        break;
    case SC_QUIT: {
        static const char quit[] = "QUIT\r\n";
        bufferevent_write(c->bev, quit, sizeof(quit) - 1); /* last_command keeps what failed */
        sc_arm(c,
               c->t_command < SMTP_CLIENT_TIMEOUT_QUIT ? c->t_command : SMTP_CLIENT_TIMEOUT_QUIT);
        break;
    }
    case SC_CONNECT:
    case SC_TLS_IMPLICIT:
    case SC_BANNER:
    case SC_TLS_HANDSHAKE:
    case SC_DONE:
        assert(!"state entered without a command");
        break;
    }
}

static void sc_body_pump(struct smtp_client *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    while (!c->body_done && evbuffer_get_length(out) < SC_BODY_CHUNK) {
        size_t n = c->message_len - c->body_pos;
        if (n > SC_BODY_CHUNK)
            n = SC_BODY_CHUNK;
        smtp_client_dotstuff_feed(&c->ds, c->message + c->body_pos, n, out);
        c->body_pos += n;
        if (c->body_pos == c->message_len) {
            smtp_client_dotstuff_finish(&c->ds, out);
            c->body_done = true;
            sc_arm(c, c->t_data_end);
        }
    }
}

/* ---- TLS ---- */

static void sc_read_cb(struct bufferevent *bev, void *arg);
static void sc_write_cb(struct bufferevent *bev, void *arg);
static void sc_event_cb(struct bufferevent *bev, short what, void *arg);

static void sc_bev_setup(struct smtp_client *c)
{
    bufferevent_setcb(c->bev, sc_read_cb, sc_write_cb, sc_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, SC_READ_HIGH);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void sc_tls_start(struct smtp_client *c, enum sc_state st)
{
    bool must_verify = c->security != SMTP_CLIENT_TLS_OPPORTUNISTIC;
    SSL *ssl = tls_client_ssl_new(c->tls, c->host_name, must_verify);
    if (!ssl) {
        sc_fail_conn(c, "TLS setup failed");
        return;
    }
    /* Plain text that arrived after "220" is never read as a reply (RFC 3207 §6). */
    struct evbuffer *in = bufferevent_get_input(c->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_free(c->bev);
    c->ssl = ssl;
    c->bev = bufferevent_openssl_socket_new(c->base, c->fd, ssl, BUFFEREVENT_SSL_CONNECTING, 0);
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    struct timeval tv = {(time_t)c->t_data_block, 0};
    bufferevent_set_timeouts(c->bev, NULL, &tv);
    sc_bev_setup(c);
    sc_set_state(c, st);
    sc_arm(c, c->t_command);
}

static void sc_tls_failed(struct smtp_client *c, struct bufferevent *bev)
{
    char reason[300] = "connection closed";
    unsigned long e;
    bool have = false;
    while ((e = bufferevent_get_openssl_error(bev)) != 0) {
        if (!have && ERR_reason_error_string(e)) {
            snprintf(reason, sizeof(reason), "%s", ERR_reason_error_string(e));
            have = true;
        }
    }
    ERR_clear_error();
    long vr = SSL_get_verify_result(c->ssl);
    if (c->security != SMTP_CLIENT_TLS_OPPORTUNISTIC && vr != X509_V_OK)
        snprintf(reason, sizeof(reason), "certificate verify failed (%s)",
                 X509_verify_cert_error_string(vr));
    char msg[400];
    snprintf(msg, sizeof(msg), "TLS handshake failed: %s", reason);
    if (c->state == SC_TLS_HANDSHAKE && c->security == SMTP_CLIENT_TLS_OPPORTUNISTIC)
        c->res.tls_failed = true;
    sc_fail_conn(c, msg);
}

static void sc_tls_ready(struct smtp_client *c)
{
    c->tls_active = true;
    c->res.tls = true;
    c->res.tls_verified = tls_client_is_verified(c->ssl);
    char desc[160];
    int bits = 0;
    const SSL_CIPHER *ci = SSL_get_current_cipher(c->ssl);
    if (ci)
        SSL_CIPHER_get_bits(ci, &bits);
    snprintf(desc, sizeof(desc), "%s %s %d bits%s", SSL_get_version(c->ssl),
             ci ? SSL_CIPHER_get_name(ci) : "none", bits,
             c->res.tls_verified ? "" : ", certificate not verified");
    log_debug("%s: smtp client [%s]:%d: TLS %s", c->tag, c->ipstr, c->port, desc);
    if (c->state == SC_TLS_IMPLICIT) {
        sc_set_state(c, SC_BANNER);
        sc_arm(c, c->t_greeting);
    } else {
        sc_enter(c, SC_EHLO); /* RFC 3207 §4.2: forget what was learned before TLS */
    }
}

/* ---- Deciding on replies ---- */

static void sc_after_hello(struct smtp_client *c);

static void sc_start_auth_or_mail(struct smtp_client *c)
{
    if (c->auth_user)
        sc_enter(c, c->ehlo.auth_plain ? SC_AUTH_PLAIN : SC_AUTH_LOGIN);
    else
        sc_enter(c, SC_MAIL);
}

static void sc_after_hello(struct smtp_client *c)
{
    bool want_tls =
        c->security == SMTP_CLIENT_TLS_OPPORTUNISTIC || c->security == SMTP_CLIENT_TLS_REQUIRED;
    if (!c->tls_active && want_tls) {
        if (c->ehlo.starttls && c->tls) {
            sc_enter(c, SC_STARTTLS);
            return;
        }
        if (c->security == SMTP_CLIENT_TLS_REQUIRED) {
            sc_fail_open_local(c, 500, SMTP_CLIENT_ERR_NO_STARTTLS);
            sc_quit(c);
            return;
        }
    }
    sc_start_auth_or_mail(c);
}

static void sc_rcpt_reply(struct smtp_client *c)
{
    size_t i = c->rcpt_reply++;
    int code = c->reply.code;
    if (!c->mail_failed) {
        char cmd[512], text[sizeof(c->res.rcpts[0].text)];
        snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>", c->rcpts[i]);
        smtp_client_reply_format(&c->reply, text, sizeof(text));
        if (code / 100 == 2) {
            c->rstate[i] = SC_RCPT_ACCEPTED;
            c->accepted++;
            struct smtp_client_rcpt_result *r = &c->res.rcpts[i];
            r->code = code; /* kept in case DATA decides otherwise */
            str_copy(r->text, sizeof(r->text), text);
            str_copy(r->command, sizeof(r->command), cmd);
        } else {
            sc_decide(c, i, false, code >= 500, code, text, cmd);
        }
    }
    if (c->rcpt_reply < c->rcpts_count) {
        if (c->pipelined)
            sc_arm(c, c->t_command);
        else
            sc_enter(c, SC_RCPT);
        return;
    }
    /* All RCPT replies are in: DATA only if someone was accepted (RFC 2920 would allow DATA in
     * the same group, but then a 354 after all-failed RCPTs forces an empty message). */
    if (!c->mail_failed && c->accepted > 0)
        sc_enter(c, SC_DATA);
    else
        sc_quit(c);
}

static void sc_on_reply(struct smtp_client *c)
{
    int code = c->reply.code;
    int cls = code / 100;
    switch (c->state) {
    case SC_BANNER:
        c->res.connected = true;
        if (cls != 2) {
            sc_fail_open_reply(c, "", false);
            sc_quit(c);
            return;
        }
        sc_enter(c, SC_EHLO);
        return;
    case SC_EHLO:
        if (cls == 2) {
            smtp_client_ehlo_parse(&c->reply, &c->ehlo);
            sc_after_hello(c);
            return;
        }
        if (cls == 5) {
            if (c->security == SMTP_CLIENT_TLS_REQUIRED || c->auth_user) {
                sc_fail_open_local(c, 500, SMTP_CLIENT_ERR_NO_EHLO);
                sc_quit(c);
            } else {
                sc_enter(c, SC_HELO);
            }
            return;
        }
        sc_fail_open_reply(c, c->res.last_command, false);
        sc_quit(c);
        return;
    case SC_HELO:
        if (cls != 2) {
            sc_fail_open_reply(c, c->res.last_command, false);
            sc_quit(c);
            return;
        }
        memset(&c->ehlo, 0, sizeof(c->ehlo));
        sc_after_hello(c); /* REQUIRED/auth never get here: plain continues in clear */
        return;
    case SC_STARTTLS:
        if (code == 220) {
            sc_tls_start(c, SC_TLS_HANDSHAKE);
            return;
        }
        if (c->security == SMTP_CLIENT_TLS_REQUIRED) {
            sc_fail_open_reply(c, c->res.last_command, false);
            sc_quit(c);
            return;
        }
        sc_start_auth_or_mail(c); /* opportunistic: on in clear */
        return;
    case SC_AUTH_PLAIN:
    case SC_AUTH_LOGIN_PASS:
        if (cls == 2) {
            sc_enter(c, SC_MAIL);
            return;
        }
        break;
    case SC_AUTH_LOGIN:
    case SC_AUTH_LOGIN_USER:
        if (code == 334) {
            sc_enter(c, c->state == SC_AUTH_LOGIN ? SC_AUTH_LOGIN_USER : SC_AUTH_LOGIN_PASS);
            return;
        }
        break;
    case SC_MAIL:
        if (cls != 2) {
            sc_fail_open_reply(c, c->mail_cmd, false);
            c->mail_failed = true;
            if (!c->pipelined) {
                sc_quit(c);
                return;
            }
        }
        if (c->pipelined) {
            sc_set_state(c, SC_RCPT); /* the RCPTs are on the wire already */
            sc_arm(c, c->t_command);
        } else {
            sc_enter(c, SC_RCPT);
        }
        return;
    case SC_RCPT:
        sc_rcpt_reply(c);
        return;
    case SC_DATA:
        if (code == 354) {
            sc_enter(c, SC_BODY);
            return;
        }
        sc_fail_open_reply(c, "DATA", false);
        sc_quit(c);
        return;
    case SC_BODY:
        if (!c->body_done) {
            /* A reply while the message is still being written: the dialogue is over. */
            if (cls == 4 || cls == 5) {
                sc_fail_open_reply(c, SC_END_OF_DATA, false);
                sc_finish(c);
            } else {
                sc_fail_conn(c, SMTP_CLIENT_ERR_INVALID);
            }
            return;
        }
        if (cls == 2) {
            char text[sizeof(c->res.rcpts[0].text)];
            smtp_client_reply_format(&c->reply, text, sizeof(text));
            for (size_t i = 0; i < c->rcpts_count; i++)
                if (c->rstate[i] == SC_RCPT_ACCEPTED)
                    sc_decide(c, i, true, false, code, text, SC_END_OF_DATA);
        } else {
            sc_fail_open_reply(c, SC_END_OF_DATA, false);
        }
        sc_quit(c);
        return;
    case SC_QUIT:
        sc_finish(c);
        return;
    case SC_CONNECT:
    case SC_TLS_IMPLICIT:
    case SC_TLS_HANDSHAKE:
    case SC_DONE:
        return;
    }
    /* AUTH refused: every recipient waits for the next try, whatever the code (a wrong
     * password is fixed by the administrator, not by bouncing the mail). */
    sc_fail_open_reply(c, c->res.last_command, true);
    sc_quit(c);
}

static bool sc_reading_replies(enum sc_state st)
{
    return st != SC_CONNECT && st != SC_TLS_IMPLICIT && st != SC_TLS_HANDSHAKE && st != SC_DONE;
}

static void sc_read_cb(struct bufferevent *bev, void *arg)
{
    struct smtp_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char line[SMTP_CLIENT_LINE_MAX + 2];
    while (bev == c->bev && sc_reading_replies(c->state)) {
        struct evbuffer_ptr p = evbuffer_search(in, "\n", 1, NULL);
        size_t avail = evbuffer_get_length(in);
        if (p.pos < 0) {
            if (avail > SMTP_CLIENT_LINE_MAX + 1)
                sc_fail_conn(c, SMTP_CLIENT_ERR_TOO_LONG);
            return;
        }
        size_t n = (size_t)p.pos; /* bytes before the LF */
        if (n > SMTP_CLIENT_LINE_MAX + 1) {
            sc_fail_conn(c, SMTP_CLIENT_ERR_TOO_LONG);
            return;
        }
        evbuffer_remove(in, line, n + 1);
        if (n > 0 && line[n - 1] == '\r')
            n--;
        switch (smtp_client_reply_feed(&c->reply, line, n)) {
        case SMTP_CLIENT_REPLY_MORE:
            break;
        case SMTP_CLIENT_REPLY_DONE:
            sc_on_reply(c);
            smtp_client_reply_reset(&c->reply);
            break;
        case SMTP_CLIENT_REPLY_TOO_LONG:
            sc_fail_conn(c, SMTP_CLIENT_ERR_TOO_LONG);
            return;
        case SMTP_CLIENT_REPLY_INVALID:
            sc_fail_conn(c, SMTP_CLIENT_ERR_INVALID);
            return;
        }
    }
}

static void sc_write_cb(struct bufferevent *bev, void *arg)
{
    struct smtp_client *c = arg;
    if (bev == c->bev && c->state == SC_BODY && !c->body_done)
        sc_body_pump(c);
}

static void sc_connected(struct smtp_client *c)
{
    struct timeval tv = {(time_t)c->t_data_block, 0};
    bufferevent_set_timeouts(c->bev, NULL, &tv); /* a peer that stops reading our output */
    if (c->security == SMTP_CLIENT_TLS_IMPLICIT) {
        sc_tls_start(c, SC_TLS_IMPLICIT);
        return;
    }
    sc_set_state(c, SC_BANNER);
    sc_arm(c, c->t_greeting);
}

static void sc_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct smtp_client *c = arg;
    if (bev != c->bev || c->state == SC_DONE)
        return;
    if (what & BEV_EVENT_CONNECTED) {
        if (c->state == SC_CONNECT)
            sc_connected(c);
        else if (c->state == SC_TLS_IMPLICIT || c->state == SC_TLS_HANDSHAKE)
            sc_tls_ready(c);
        return;
    }
    if (c->state == SC_QUIT) {
        sc_finish(c);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        sc_fail_conn(c, SMTP_CLIENT_ERR_TIMEOUT);
        return;
    }
    if (c->state == SC_CONNECT) {
        int err = EVUTIL_SOCKET_ERROR();
        sc_fail_conn(c, err ? evutil_socket_error_to_string(err) : "Connection failed");
        return;
    }
    if (c->state == SC_TLS_IMPLICIT || c->state == SC_TLS_HANDSHAKE) {
        sc_tls_failed(c, bev);
        return;
    }
    /* A reply that arrived with the close is still read (e.g. "421 ..." then EOF). */
    sc_read_cb(bev, c);
    if (c->state == SC_QUIT || c->state == SC_DONE) {
        sc_finish(c);
        return;
    }
    sc_fail_conn(c, SMTP_CLIENT_ERR_CLOSED);
}

static void sc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct smtp_client *c = arg;
    if (c->state == SC_QUIT)
        sc_finish(c);
    else if (c->state == SC_CONNECT)
        sc_fail_conn(c, "Connection timed out");
    else
        sc_fail_conn(c, SMTP_CLIENT_ERR_TIMEOUT);
}

/* ---- Lifetime ---- */

static void sc_free(struct smtp_client *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    event_free(c->timer);
    event_free(c->deferred);
    smtp_client_reply_free(&c->reply);
    free(c->host_name);
    free(c->helo_name);
    if (c->auth_password) {
        OPENSSL_cleanse(c->auth_password, strlen(c->auth_password));
        free(c->auth_password);
    }
    free(c->auth_user);
    free(c->sender);
    free(c->tag);
    for (size_t i = 0; i < c->rcpts_count; i++)
        free(c->rcpts[i]);
    free(c->rcpts);
    free(c->rstate);
    free(c->res.rcpts);
    free(c);
}

static void sc_deferred_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct smtp_client *c = arg;
    c->cb(c->cb_ctx, &c->res);
    sc_free(c);
}

void smtp_client_cancel(struct smtp_client **cp)
{
    if (!*cp)
        return;
    sc_free(*cp);
    *cp = NULL;
}

/* An address or name we put on a command line: no line ends, no NUL, sane length. */
static bool sc_text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    return n <= max && strpbrk(s, "\r\n") == NULL;
}

static unsigned sc_or(unsigned v, unsigned def)
{
    return v ? v : def;
}

static const char *sc_start(struct smtp_client *c)
{
    if (!sc_text_ok(c->sender, 400) || !sc_text_ok(c->helo_name, 255) || !c->helo_name[0])
        return "Invalid envelope sender or HELO name.";
    for (size_t i = 0; i < c->rcpts_count; i++)
        if (!sc_text_ok(c->rcpts[i], 400))
            return "Invalid envelope recipient.";
    if (c->security != SMTP_CLIENT_TLS_NONE && c->security != SMTP_CLIENT_TLS_OPPORTUNISTIC &&
        !c->tls)
        return "TLS is not available.";
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl;
    if (c->ip.family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)c->port);
        memcpy(&s4->sin_addr, c->ip.b + 12, 4);
        sl = sizeof(*s4);
    } else if (c->ip.family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)c->port);
        memcpy(&s6->sin6_addr, c->ip.b, 16);
        sl = sizeof(*s6);
    } else {
        return "Invalid address family.";
    }
    c->fd = socket(c->ip.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return strerror(errno);
    int one = 1; /* each command is written whole; never wait for the server's delayed ACK */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->bev = bufferevent_socket_new(c->base, c->fd, 0); /* sc_free closes the fd */
    sc_bev_setup(c);
    sc_arm(c, c->t_connect);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, (int)sl) < 0)
        return strerror(errno ? errno : ECONNREFUSED);
    return NULL;
}

struct smtp_client *smtp_client_send(struct event_base *base, struct tls_client *tls,
                                     const struct smtp_client_request *req, smtp_client_done_cb *cb,
                                     void *ctx)
{
    assert(req->rcpts_count >= 1 && req->rcpts_count <= SMTP_CLIENT_MAX_RCPTS);
    struct smtp_client *c = xcalloc(1, sizeof(*c));
    c->base = base;
    c->tls = tls;
    c->cb = cb;
    c->cb_ctx = ctx;
    c->state = SC_CONNECT;
    c->fd = -1;
    c->ip = req->ip;
    c->port = req->port ? req->port : 25;
    ipaddr_format(&c->ip, c->ipstr);
    c->host_name = xstrdup(req->host_name && req->host_name[0] ? req->host_name : c->ipstr);
    c->helo_name = xstrdup(req->helo_name ? req->helo_name : "");
    if (req->auth_user && req->auth_password) {
        c->auth_user = xstrdup(req->auth_user);
        c->auth_password = xstrdup(req->auth_password);
    }
    c->sender = xstrdup(req->sender ? req->sender : "");
    c->tag = xstrdup(req->log_tag ? req->log_tag : "outbound");
    c->rcpts_count = req->rcpts_count;
    c->rcpts = xcalloc(c->rcpts_count, sizeof(*c->rcpts));
    for (size_t i = 0; i < c->rcpts_count; i++)
        c->rcpts[i] = xstrdup(req->rcpts[i] ? req->rcpts[i] : "");
    c->rstate = xcalloc(c->rcpts_count, sizeof(*c->rstate));
    c->message = req->message ? req->message : "";
    c->message_len = req->message ? req->message_len : 0;
    c->message_8bit = smtp_client_has_8bit(c->message, c->message_len);
    c->security = req->security;
    c->t_connect = sc_or(req->timeout_connect_s, SMTP_CLIENT_TIMEOUT_CONNECT);
    c->t_greeting = sc_or(req->timeout_greeting_s, SMTP_CLIENT_TIMEOUT_GREETING);
    c->t_command = sc_or(req->timeout_command_s, SMTP_CLIENT_TIMEOUT_COMMAND);
    c->t_data_block = sc_or(req->timeout_data_block_s, SMTP_CLIENT_TIMEOUT_DATA_BLOCK);
    c->t_data_end = sc_or(req->timeout_data_end_s, SMTP_CLIENT_TIMEOUT_DATA_END);
    c->res.rcpts = xcalloc(c->rcpts_count, sizeof(*c->res.rcpts));
    c->res.rcpts_count = c->rcpts_count;
    smtp_client_reply_init(&c->reply);
    c->timer = event_new(base, -1, 0, sc_timer_cb, c);
    c->deferred = event_new(base, -1, 0, sc_deferred_cb, c);
    const char *err = sc_start(c);
    if (err) {
        bool invalid = strncmp(err, "Invalid", 7) == 0;
        sc_fail_conn(c, err);
        if (invalid) /* our own bad input will not get better by retrying */
            for (size_t i = 0; i < c->rcpts_count; i++)
                c->res.rcpts[i].permanent = true;
    }
    return c;
}
