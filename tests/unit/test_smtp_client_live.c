/* test_smtp_client_live: the outbound SMTP client (src/smtp/smtp_client.c) run for real on an
 * event loop against a scripted fake SMTP server in the same loop (a listener on 127.0.0.1 port
 * 0, sessions on src/net/conn.c, TLS from src/net/tls.c with a throwaway certificate made by
 * tls_cert_create_selfsigned). Each case checks the commands the server received (the
 * transcript), the exact DATA bytes, and the per-recipient results: PIPELINING (the server
 * answers MAIL only once MAIL and every RCPT are buffered, so a client that does not pipeline
 * times out), EHLO -> HELO fallback, refused EHLO with AUTH, per-recipient 550, 451 on MAIL,
 * no DATA without an accepted RCPT, dot-stuffing and line-end repair on the wire, over-long and
 * endless replies, timeouts, remote close, STARTTLS (opportunistic, required, unverifiable,
 * wrong name, missing, failed handshake + clear retry), implicit TLS, AUTH PLAIN / LOGIN / refused,
 * refused connections, IPv6, invalid requests and cancel. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "net/conn.h"
#include "net/tls.h"
#include "net/tls_cert.h"
#include "net/tls_client.h"
#include "smtp/smtp_client.h"

/* ---- fixtures: certificate and TLS contexts, shared by all cases ---- */

static char g_dir[64];
static char g_cert[PATH_MAX], g_key[PATH_MAX];
static struct tls_server *g_tls_server;
static struct tls_client *g_tls_trusting; /* trusts the throwaway certificate */
static struct tls_client *g_tls_system;   /* the system store: cannot verify it */

static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[PATH_MAX];
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* as gannet serve does: a peer's close is an error, not a kill */
    log_init("test_smtp_client_live", getenv("TEST_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
    snprintf(g_dir, sizeof(g_dir), "/tmp/gannet-test-client-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_cert, sizeof(g_cert), "%s/cert.pem", g_dir);
    snprintf(g_key, sizeof(g_key), "%s/key.pem", g_dir);
    const char *err = NULL;
    if (tls_cert_create_selfsigned(g_cert, g_key, "localhost", 2, &err) < 0) {
        fprintf(stderr, "cert: %s\n", err);
        return -1;
    }
    g_tls_server = tls_server_new(g_cert, g_key, &err);
    g_tls_trusting = g_tls_server ? tls_client_new(g_cert, true, &err) : NULL;
    g_tls_system = g_tls_trusting ? tls_client_new(NULL, true, &err) : NULL;
    if (!g_tls_system) {
        fprintf(stderr, "tls: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tls_server_free(&g_tls_server);
    tls_client_free(&g_tls_trusting);
    tls_client_free(&g_tls_system);
    rm_rf(g_dir);
    return 0;
}

/* ---- the fake server ---- */

/* A command is answered by the first step whose prefix matches (the case's own steps, then the
 * defaults). `when`: 0 always, 1 only before TLS, 2 only over TLS. Replies starting with '!'
 * are actions. */
struct step {
    const char *prefix;
    const char *reply;
    int when;
};

#define A_NONE "!NONE"     /* never answer */
#define A_CLOSE "!CLOSE"   /* close the connection */
#define A_TLS "!TLS"       /* 220, then the server-side handshake */
#define A_TLSBAD "!TLSBAD" /* 220, then garbage instead of a handshake, then close */
#define A_LONG "!LONG"     /* an endless reply line */
#define A_MANY "!MANY"     /* a reply of endless continuation lines */

static const struct step default_steps[] = {
    {"EHLO", "250-fake.test\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n", 0},
    {"HELO", "250 fake.test\r\n", 0},
    {"MAIL", "250 2.1.0 ok\r\n", 0},
    {"RCPT", "250 2.1.5 ok\r\n", 0},
    {"DATA", "354 go ahead\r\n", 0},
    {"QUIT", "221 2.0.0 bye\r\n", 0},
    {NULL, NULL, 0},
};

struct fake {
    struct event_base *base;
    struct evconnlistener *lst;
    struct event *tick;
    int port;
    /* script */
    const char *banner; /* NULL = never greet */
    const struct step *steps;
    const char *data_reply; /* after the final dot; NULL = "250 2.0.0 queued" */
    bool implicit_tls;
    size_t hold_mail; /* > 0: answer MAIL only once this many lines are buffered */
    /* observed */
    struct conn *conn;
    int conns;    /* open server connections */
    int accepted; /* connections accepted */
    bool in_data;
    struct buf transcript; /* command lines, "--tls--" when TLS started */
    struct buf data;       /* raw DATA bytes, terminator included */
    size_t max_batch;      /* most complete command lines seen buffered at once */
    size_t mail_batch;     /* lines buffered when MAIL was answered */
};

static const char *fake_lookup(struct fake *f, const char *line)
{
    bool tls = conn_is_tls(f->conn);
    const struct step *lists[2] = {f->steps, default_steps};
    for (int l = 0; l < 2; l++) {
        for (const struct step *s = lists[l]; s && s->prefix; s++) {
            if (s->when == 1 && tls)
                continue;
            if (s->when == 2 && !tls)
                continue;
            if (strncmp(line, s->prefix, strlen(s->prefix)) == 0)
                return s->reply;
        }
    }
    return "500 5.5.1 unrecognized\r\n";
}

static void fake_send(struct fake *f, const char *s)
{
    conn_write(f->conn, s, strlen(s));
}

static void fake_act(struct fake *f, const char *reply)
{
    if (strcmp(reply, A_NONE) == 0)
        return;
    if (strcmp(reply, A_CLOSE) == 0) {
        conn_close(f->conn);
        return;
    }
    if (strcmp(reply, A_TLS) == 0) {
        fake_send(f, "220 2.0.0 ready for TLS\r\n");
        conn_start_tls(f->conn, tls_server_ssl_new(g_tls_server));
        return;
    }
    if (strcmp(reply, A_TLSBAD) == 0) {
        fake_send(f, "220 2.0.0 ready for TLS\r\nthis is not a TLS server hello\r\n");
        conn_close(f->conn);
        return;
    }
    if (strcmp(reply, A_LONG) == 0) {
        /* One megabyte without a line end: a client that buffers it all never notices. */
        char *big = malloc(1024 * 1024);
        assert_non_null(big);
        memset(big, 'x', 1024 * 1024);
        memcpy(big, "250-", 4);
        conn_write(f->conn, big, 1024 * 1024);
        free(big);
        return;
    }
    if (strcmp(reply, A_MANY) == 0) {
        struct evbuffer *b = evbuffer_new();
        for (int i = 0; i < 20000; i++)
            evbuffer_add(b, "250-x\r\n", 7);
        size_t n = evbuffer_get_length(b);
        conn_write(f->conn, evbuffer_pullup(b, -1), n);
        evbuffer_free(b);
        return;
    }
    fake_send(f, reply);
    if (strncmp(reply, "354", 3) == 0)
        f->in_data = true;
}

static bool data_complete(const struct buf *d)
{
    return (d->len == 3 && memcmp(d->data, ".\r\n", 3) == 0) ||
           (d->len >= 5 && memcmp(d->data + d->len - 5, "\r\n.\r\n", 5) == 0);
}

static size_t count_lines(struct evbuffer *in)
{
    size_t n = 0;
    struct evbuffer_ptr p = evbuffer_search(in, "\r\n", 2, NULL);
    while (p.pos >= 0) {
        n++;
        evbuffer_ptr_set(in, &p, 2, EVBUFFER_PTR_ADD);
        p = evbuffer_search(in, "\r\n", 2, &p);
    }
    return n;
}

static void fake_on_input(void *ctx)
{
    struct fake *f = ctx;
    struct evbuffer *in = conn_input(f->conn);
    struct buf line;
    buf_init(&line, 0);
    while (!conn_is_closing(f->conn)) {
        if (f->in_data) {
            size_t n = evbuffer_get_length(in);
            if (n == 0)
                break;
            char *tmp = malloc(n);
            assert_non_null(tmp);
            evbuffer_remove(in, tmp, n);
            buf_append(&f->data, tmp, n);
            free(tmp);
            if (!data_complete(&f->data))
                break;
            f->in_data = false;
            fake_act(f, f->data_reply ? f->data_reply : "250 2.0.0 queued as 1\r\n");
            continue;
        }
        size_t lines = count_lines(in);
        if (lines > f->max_batch)
            f->max_batch = lines;
        if (f->hold_mail && evbuffer_get_length(in) >= 4) {
            char head[4];
            evbuffer_copyout(in, head, 4);
            if (memcmp(head, "MAIL", 4) == 0) {
                if (lines < f->hold_mail)
                    break; /* wait for the rest of the pipelined group */
                f->mail_batch = lines;
            }
        }
        if (conn_read_line(f->conn, 16384, 65536, &line) != CONN_LINE_OK)
            break;
        buf_append(&f->transcript, line.data, line.len);
        buf_append(&f->transcript, "\n", 1);
        fake_act(f, fake_lookup(f, line.data));
    }
    buf_free(&line);
}

static void fake_on_timeout(void *ctx)
{
    struct fake *f = ctx;
    conn_close(f->conn);
}

static void fake_on_closed(void *ctx)
{
    struct fake *f = ctx;
    conn_free(&f->conn);
    f->conns--;
}

static void fake_on_tls_ready(void *ctx)
{
    struct fake *f = ctx;
    buf_append_str(&f->transcript, "--tls--\n");
    if (f->implicit_tls && f->banner)
        fake_send(f, f->banner);
}

static const struct conn_handler fake_handler = {
    .on_input = fake_on_input,
    .on_timeout = fake_on_timeout,
    .on_closed = fake_on_closed,
    .on_tls_ready = fake_on_tls_ready,
};

static void fake_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                        int salen, void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    struct fake *f = arg;
    assert_null(f->conn); /* one session at a time */
    f->conns++;
    f->accepted++;
    f->in_data = false;
    f->conn = conn_new(f->base, fd, &fake_handler, f);
    if (f->implicit_tls)
        conn_start_tls(f->conn, tls_server_ssl_new(g_tls_server));
    else if (f->banner)
        fake_send(f, f->banner);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* A fake server listening on 127.0.0.1 (v6 = false) or ::1; NULL when ::1 is not available. */
static struct fake *fake_new_at(bool v6)
{
    struct fake *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->base = event_base_new();
    f->banner = "220 fake.test ESMTP\r\n";
    buf_init(&f->transcript, 0);
    buf_init(&f->data, 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl;
    if (v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_addr = in6addr_loopback;
        sl = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof(*s4);
    }
    f->lst =
        evconnlistener_new_bind(f->base, fake_accept, f, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                16, (struct sockaddr *)&ss, (int)sl);
    if (!f->lst && v6) {
        event_base_free(f->base);
        free(f);
        return NULL;
    }
    assert_non_null(f->lst);
    struct sockaddr_storage bound;
    socklen_t bl = sizeof(bound);
    getsockname(evconnlistener_get_fd(f->lst), (struct sockaddr *)&bound, &bl);
    f->port = ntohs(v6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                       : ((struct sockaddr_in *)&bound)->sin_port);
    f->tick = event_new(f->base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 50000};
    event_add(f->tick, &tv);
    return f;
}

static struct fake *fake_new(void)
{
    return fake_new_at(false);
}

static void fake_free(struct fake *f)
{
    assert_null(f->conn);
    if (f->lst)
        evconnlistener_free(f->lst);
    event_free(f->tick);
    event_base_free(f->base);
    buf_free(&f->transcript);
    buf_free(&f->data);
    free(f);
}

/* ---- running the client ---- */

#define MAX_RCPTS 4

struct outcome {
    bool done;
    int calls;
    struct smtp_client_result res;
    struct smtp_client_rcpt_result rcpts[MAX_RCPTS];
    double seconds; /* from send to callback */
};

static double now_s(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static double g_started;

static void on_done(void *ctx, const struct smtp_client_result *res)
{
    struct outcome *o = ctx;
    o->calls++;
    o->done = true;
    o->seconds = now_s() - g_started;
    o->res = *res;
    assert_true(res->rcpts_count <= MAX_RCPTS);
    memcpy(o->rcpts, res->rcpts, res->rcpts_count * sizeof(res->rcpts[0]));
    o->res.rcpts = o->rcpts;
}

static const char *const two_rcpts[] = {"r1@b.test", "r2@b.test"};

static struct smtp_client_request base_req(struct fake *f)
{
    struct smtp_client_request r;
    memset(&r, 0, sizeof(r));
    ipaddr_parse("127.0.0.1", &r.ip);
    r.port = f->port;
    r.host_name = "localhost";
    r.helo_name = "client.test";
    r.security = SMTP_CLIENT_TLS_NONE;
    r.sender = "s@a.test";
    r.rcpts = two_rcpts;
    r.rcpts_count = 2;
    r.message = "Subject: hi\r\n\r\nHello\r\n";
    r.message_len = strlen(r.message);
    r.timeout_connect_s = r.timeout_greeting_s = r.timeout_command_s = 5;
    r.timeout_data_block_s = r.timeout_data_end_s = 5;
    r.log_tag = "test";
    return r;
}

/* Run the loop until the client called back and the server side is closed. */
static void run(struct fake *f, struct tls_client *tls, const struct smtp_client_request *req,
                struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    g_started = now_s();
    smtp_client_send(f->base, tls, req, on_done, o);
    assert_false(o->done); /* never called back from inside smtp_client_send */
    while (!o->done || f->conns > 0) {
        event_base_loop(f->base, EVLOOP_ONCE);
        if (now_s() - g_started > 20)
            fail_msg("no result after 20 s (done %d, server connections %d)", o->done, f->conns);
    }
    assert_int_equal(o->calls, 1);
}

static void assert_rcpt(const struct outcome *o, size_t i, bool ok, bool permanent, int code,
                        const char *text, const char *command)
{
    const struct smtp_client_rcpt_result *r = &o->res.rcpts[i];
    if (r->ok != ok || r->permanent != permanent || r->code != code)
        fail_msg("rcpt %zu: ok %d permanent %d code %d text \"%s\" (error \"%s\")", i, r->ok,
                 r->permanent, r->code, r->text, o->res.error);
    assert_string_equal(r->text, text);
    assert_string_equal(r->command, command);
}

static const char hello_wire[] = "Subject: hi\r\n\r\nHello\r\n.\r\n";

/* ---- cases ---- */

static void test_happy_pipelining(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    f->hold_mail = 3; /* MAIL + 2 RCPT must arrive together */
    struct smtp_client_request req = base_req(f);
    struct outcome o;
    run(f, NULL, &req, &o);
    assert_string_equal(f->transcript.data, "EHLO client.test\n"
                                            "MAIL FROM:<s@a.test> SIZE=22\n"
                                            "RCPT TO:<r1@b.test>\n"
                                            "RCPT TO:<r2@b.test>\n"
                                            "DATA\n"
                                            "QUIT\n");
    assert_int_equal(f->mail_batch, 3); /* DATA was not part of the group */
    assert_string_equal(f->data.data, hello_wire);
    assert_true(o.res.connected);
    assert_false(o.res.tls);
    assert_string_equal(o.res.error, "");
    assert_int_equal(o.res.rcpts_count, 2);
    assert_rcpt(&o, 0, true, false, 250, "250 2.0.0 queued as 1", "(end of message)");
    assert_rcpt(&o, 1, true, false, 250, "250 2.0.0 queued as 1", "(end of message)");
    fake_free(f);
}

static void test_no_pipelining_8bit_null_sender(void **state)
{
    (void)state;
    static const struct step steps[] = {
        {"EHLO", "250-fake.test\r\n250-8BITMIME\r\n250 HELP\r\n", 0},
        {NULL, NULL, 0},
    };
    struct fake *f = fake_new();
    f->steps = steps;
    struct smtp_client_request req = base_req(f);
    req.sender = "";
    req.message = "Subject: caf\xc3\xa9\r\n\r\nbody\r\n";
    req.message_len = strlen(req.message);
    struct outcome o;
    run(f, NULL, &req, &o);
    assert_string_equal(f->transcript.data, "EHLO client.test\n"
                                            "MAIL FROM:<> BODY=8BITMIME\n"
                                            "RCPT TO:<r1@b.test>\n"
                                            "RCPT TO:<r2@b.test>\n"
                                            "DATA\n"
                                            "QUIT\n");
    assert_int_equal(f->max_batch, 1); /* one command at a time */
    assert_rcpt(&o, 0, true, false, 250, "250 2.0.0 queued as 1", "(end of message)");
    assert_rcpt(&o, 1, true, false, 250, "250 2.0.0 queued as 1", "(end of message)");
    fake_free(f);
}

static void test_ehlo_refused_helo_fallback(void **state)
{
    (void)state;
    static const struct step steps[] = {
        {"EHLO", "502 5.5.1 what is EHLO\r\n", 0},
        {NULL, NULL, 0},
    };
    struct fake *f = fake_new();
    f->steps = steps;
    struct smtp_client_request req = base_req(f);
    req.security = SMTP_CLIENT_TLS_OPPORTUNISTIC; /* falls back: nothing to upgrade */
    struct outcome o;
    run(f, g_tls_system, &req, &o);
    assert_string_equal(f->transcript.data, "EHLO client.test\n"
                                            "HELO client.test\n"
                                            "MAIL FROM:<s@a.test>\n"
                                            "RCPT TO:<r1@b.test>\n"
                                            "RCPT TO:<r2@b.test>\n"
                                            "DATA\n"
                                            "QUIT\n");
    assert_int_equal(f->max_batch, 1);
    assert_true(o.res.rcpts[0].ok && o.res.rcpts[1].ok);
    fake_free(f);
}

static void test_ehlo_refused_with_auth_or_required(void **state)
{
    (void)state;
    static const struct step steps[] = {
        {"EHLO", "500 5.5.1 unknown\r\n", 0},
        {NULL, NULL, 0},
    };
    for (int round = 0; round < 2; round++) {
        struct fake *f = fake_new();
        f->steps = steps;
        struct smtp_client_request req = base_req(f);
        if (round == 0) {
            req.auth_user = "user";
            req.auth_password = "secret";
        } else {
            req.security = SMTP_CLIENT_TLS_REQUIRED;
        }
        struct outcome o;
        run(f, g_tls_trusting, &req, &o);
        assert_string_equal(f->transcript.data, "EHLO client.test\nQUIT\n");
        for (size_t i = 0; i < 2; i++)
            assert_rcpt(&o, i, false, true, 500, "Server does not support EHLO command.",
                        "EHLO client.test");
        assert_string_equal(o.res.error, "");
        fake_free(f);
    }
}

static void test_rcpt_550_partial(void **state)
{
    (void)state;
    static const struct step steps[] = {
        {"RCPT TO:<bad@", "550 5.1.1 <bad@b.test>: no such user\r\n", 0},
        {NULL, NULL, 0},
    };
    static const char *const rcpts[] = {"r1@b.test", "bad@b.test", "r3@b.test"};
    struct fake *f = fake_new();
    f->steps = steps;
    f->hold_mail = 4;
    struct smtp_client_request req = base_req(f);
    req.rcpts = rcpts;
    req.rcpts_count = 3;
    struct outcome o;
    run(f, NULL, &req, &o);
    assert_string_equal(f->transcript.data, "EHLO client.test\n"
                                            "MAIL FROM:<s@a.test> SIZE=22\n"
                                            "RCPT TO:<r1@b.test>\n"
                                            "RCPT TO:<bad@b.test>\n"
                                            "RCPT TO:<r3@b.test>\n"
                                            "DATA\n"
                                            "QUIT\n");
    assert_string_equal(f->data.data, hello_wire);
    assert_rcpt(&o, 0, true, false, 250, "250 2.0.0 queued as 1", "(end of message)");
    assert_rcpt(&o, 1, false, true, 550, "550 5.1.1 <bad@b.test>: no such user",
                "RCPT TO:<bad@b.test>");
    assert_rcpt(&o, 2, true, false, 250, "250 2.0.0 queued as 1", "(end of message)");
    fake_free(f);
}

static void test_no_rcpt_accepted_no_data(void **state)
{
    (void)state;
    static const struct step steps[] = {
        {"RCPT TO:<r1@", "550-5.1.1 gone\r\n550 5.1.1 really\r\n", 0},
        {"RCPT TO:<r2@", "450 4.2.1 try later\r\n", 0},
        {NULL, NULL, 0},
    };
    for (int pipelining = 0; pipelining < 2; pipelining++) {
        static const struct step plain[] = {
            {"RCPT TO:<r1@", "550-5.1.1 gone\r\n550 5.1.1 really\r\n", 0},
            {"RCPT TO:<r2@", "450 4.2.1 try later\r\n", 0},
            {"EHLO", "250 fake.test\r\n", 0},
            {NULL, NULL, 0},
        };
        struct fake *f = fake_new();
        f->steps = pipelining ? steps : plain;
        struct smtp_client_request req = base_req(f);
        struct outcome o;
        run(f, NULL, &req, &o);
        assert_string_equal(f->transcript.data, pipelining ? "EHLO client.test\n"
                                                             "MAIL FROM:<s@a.test> SIZE=22\n"
                                                             "RCPT TO:<r1@b.test>\n"
                                                             "RCPT TO:<r2@b.test>\n"
                                                             "QUIT\n"
                                                           : "EHLO client.test\n"
                                                             "MAIL FROM:<s@a.test>\n"
                                                             "RCPT TO:<r1@b.test>\n"
                                                             "RCPT TO:<r2@b.test>\n"
                                                             "QUIT\n");
        assert_int_equal(f->data.len, 0);
        assert_rcpt(&o, 0, false, true, 550, "550 5.1.1 gone / 5.1.1 really",
                    "RCPT TO:<r1@b.test>");
        assert_rcpt(&o, 1, false, false, 450, "450 4.2.1 try later", "RCPT TO:<r2@b.test>");
        fake_free(f);
    }
}

static void test_mail_451(void **state)
{
    (void)state;
    static const struct step piped[] = {
        {"MAIL", "451 4.3.0 local problem\r\n", 0},
        {"RCPT", "503 5.5.1 need MAIL first\r\n", 0},
        {NULL, NULL, 0},
    };
    static const struct step plain[] = {
        {"MAIL", "451 4.3.0 local problem\r\n", 0},
        {"EHLO", "250 fake.test\r\n", 0},
        {NULL, NULL, 0},
    };
    for (int pipelining = 0; pipelining < 2; pipelining++) {
        struct fake *f = fake_new();
        f->steps = pipelining ? piped : plain;
        struct smtp_client_request req = base_req(f);
        struct outcome o;
        run(f, NULL, &req, &o);
        assert_string_equal(f->transcript.data, pipelining ? "EHLO client.test\n"
                                                             "MAIL FROM:<s@a.test> SIZE=22\n"
                                                             "RCPT TO:<r1@b.test>\n"
                                                             "RCPT TO:<r2@b.test>\n"
                                                             "QUIT\n"
                                                           : "EHLO client.test\n"
                                                             "MAIL FROM:<s@a.test>\n"
                                                             "QUIT\n");
        const char *cmd = pipelining ? "MAIL FROM:<s@a.test> SIZE=22" : "MAIL FROM:<s@a.test>";
        for (size_t i = 0; i < 2; i++)
            assert_rcpt(&o, i, false, false, 451, "451 4.3.0 local problem", cmd);
        fake_free(f);
    }
}

static void test_banner_554(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    f->banner = "554-5.7.1 go away\r\n554 5.7.1 you are not welcome\r\n";
    struct smtp_client_request req = base_req(f);
    struct outcome o;
    run(f, NULL, &req, &o);
    assert_string_equal(f->transcript.data, "QUIT\n");
    assert_true(o.res.connected);
    for (size_t i = 0; i < 2; i++)
        assert_rcpt(&o, i, false, true, 554, "554 5.7.1 go away / 5.7.1 you are not welcome", "");
    fake_free(f);
}

static void test_data_and_end_of_data_refused(void **state)
{
    (void)state;
    static const struct step data_refused[] = {
        {"RCPT TO:<r2@", "550 5.1.1 no\r\n", 0},
        {"DATA", "452 4.3.1 out of space\r\n", 0},
        {NULL, NULL, 0},
    };
    struct fake *f = fake_new();
    f->steps = data_refused;
    struct smtp_client_request req = base_req(f);
    struct outcome o;
    run(f, NULL, &req, &o);
    assert_string_equal(f->transcript.data, "EHLO client.test\n"
                                            "MAIL FROM:<s@a.test> SIZE=22\n"
                                            "RCPT TO:<r1@b.test>\n"
                                            "RCPT TO:<r2@b.test>\n"
                                            "DATA\n"
                                            "QUIT\n");
    assert_rcpt(&o, 0, false, false, 452, "452 4.3.1 out of space", "DATA");
    assert_rcpt(&o, 1, false, true, 550, "550 5.1.1 no", "RCPT TO:<r2@b.test>");
    fake_free(f);

    f = fake_new();
    f->data_reply = "552 5.3.4 message too big\r\n";
    req = base_req(f);
    run(f, NULL, &req, &o);
    assert_string_equal(f->data.data, hello_wire);
    for (size_t i = 0; i < 2; i++)
        assert_rcpt(&o, i, false, true, 552, "552 5.3.4 message too big", "(end of message)");
    assert_string_equal(o.res.last_command, "(end of message)"); /* not QUIT */
    fake_free(f);
}

static void test_dotstuff_on_the_wire(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct smtp_client_request req = base_req(f);
    req.message = "Subject: dots\r\n\r\n.line\r\n..two\r\nbare\nlf\rcr\r\n.\r\nlast.";
    req.message_len = strlen(req.message);
    struct outcome o;
    run(f, NULL, &req, &o);
    assert_string_equal(f->data.data, "Subject: dots\r\n\r\n..line\r\n...two\r\nbare\r\nlf\r\n"
                                      "cr\r\n..\r\nlast.\r\n.\r\n");
    assert_true(o.res.rcpts[0].ok && o.res.rcpts[1].ok);
    fake_free(f);

    /* A large message (streamed in chunks): same rules, byte for byte. */
    size_t lines = 40000;
    struct buf msg, want;
    buf_init(&msg, 0);
    buf_init(&want, 0);
    buf_append_str(&msg, "Subject: big\r\n\r\n");
    buf_append_str(&want, "Subject: big\r\n\r\n");
    for (size_t i = 0; i < lines; i++) {
        switch (i % 4) {
        case 0:
            buf_printf(&msg, ".%zu leading dot\r\n", i);
            buf_printf(&want, "..%zu leading dot\r\n", i);
            break;
        case 1:
            buf_printf(&msg, "%zu bare lf\n", i);
            buf_printf(&want, "%zu bare lf\r\n", i);
            break;
        default:
            buf_printf(&msg, "%zu plain line of text.\r\n", i);
            buf_printf(&want, "%zu plain line of text.\r\n", i);
        }
    }
    buf_append_str(&want, ".\r\n");
    f = fake_new();
    req = base_req(f);
    req.message = msg.data;
    req.message_len = msg.len;
    run(f, NULL, &req, &o);
    assert_true(msg.len > 500000);
    assert_int_equal(f->data.len, want.len);
    assert_memory_equal(f->data.data, want.data, want.len);
    assert_true(o.res.rcpts[0].ok && o.res.rcpts[1].ok);
    fake_free(f);
    buf_free(&msg);
    buf_free(&want);
}

static void test_hostile_replies(void **state)
{
    (void)state;
    static const struct step endless[] = {{"EHLO", A_LONG, 0}, {NULL, NULL, 0}};
    static const struct step many[] = {{"MAIL", A_MANY, 0}, {NULL, NULL, 0}};
    static const struct step garbage[] = {{"EHLO", "hello there\r\n", 0}, {NULL, NULL, 0}};
    const struct step *cases[] = {endless, many, garbage};
    const char *errors[] = {SMTP_CLIENT_ERR_TOO_LONG, SMTP_CLIENT_ERR_TOO_LONG,
                            SMTP_CLIENT_ERR_INVALID};
    for (size_t k = 0; k < 3; k++) {
        struct fake *f = fake_new();
        f->steps = cases[k];
        struct smtp_client_request req = base_req(f);
        struct outcome o;
        run(f, NULL, &req, &o);
        assert_string_equal(o.res.error, errors[k]);
        assert_true(o.res.connected);
        for (size_t i = 0; i < 2; i++)
            assert_rcpt(&o, i, false, false, 0, "", "");
        assert_null(strstr(f->transcript.data, "QUIT")); /* out of step: just close */
        fake_free(f);
    }
}

static void test_timeouts(void **state)
{
    (void)state;
    static const struct step mail_silent[] = {{"MAIL", A_NONE, 0}, {NULL, NULL, 0}};
    for (int k = 0; k < 3; k++) {
        struct fake *f = fake_new();
        struct smtp_client_request req = base_req(f);
        if (k == 0) { /* no banner */
            f->banner = NULL;
            req.timeout_greeting_s = 1;
        } else if (k == 1) { /* no reply to MAIL */
            f->steps = mail_silent;
            req.timeout_command_s = 1;
        } else { /* no reply to the final dot */
            f->data_reply = A_NONE;
            req.timeout_data_end_s = 1;
        }
        struct outcome o;
        run(f, NULL, &req, &o);
        assert_string_equal(o.res.error, SMTP_CLIENT_ERR_TIMEOUT);
        assert_true(o.seconds >= 0.9 && o.seconds < 4);
        assert_int_equal(o.res.connected, k > 0);
        for (size_t i = 0; i < 2; i++)
            assert_rcpt(&o, i, false, false, 0, "", "");
        if (k == 2)
            assert_string_equal(f->data.data, hello_wire);
        fake_free(f);
    }
}

static void test_connect_refused_and_timeout(void **state)
{
    (void)state;
    /* a port nobody listens on */
    struct fake *f = fake_new();
    int port = f->port;
    evconnlistener_free(f->lst);
    f->lst = NULL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct smtp_client_request req = base_req(f);
    struct outcome o;
    run(f, NULL, &req, &o);
    assert_string_equal(o.res.error, "Connection refused");
    assert_false(o.res.connected);
    assert_rcpt(&o, 0, false, false, 0, "", "");

    /* a listener whose backlog is full: the SYN is never answered */
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 0), 0);
    int fillers[4];
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fillers[i], (struct sockaddr *)&sin, sizeof(sin));
    }
    usleep(100000);
    req.timeout_connect_s = 1;
    run(f, NULL, &req, &o);
    assert_string_equal(o.res.error, "Connection timed out");
    assert_true(o.seconds >= 0.9 && o.seconds < 4);
    assert_false(o.res.connected);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(fd);
    fake_free(f);
}

static void test_remote_close(void **state)
{
    (void)state;
    static const struct step steps[] = {
        {"RCPT TO:<r2@", A_CLOSE, 0},
        {"EHLO", "250 fake.test\r\n", 0},
        {NULL, NULL, 0},
    };
    static const struct step closing_421[] = {
        {"RCPT TO:<r1@", "421 4.4.2 closing\r\n", 0},
        {"RCPT TO:<r2@", A_CLOSE, 0},
        {"EHLO", "250 fake.test\r\n", 0},
        {NULL, NULL, 0},
    };
    struct fake *f = fake_new();
    f->steps = steps;
    struct smtp_client_request req = base_req(f);
    struct outcome o;
    run(f, NULL, &req, &o);
    assert_string_equal(o.res.error, SMTP_CLIENT_ERR_CLOSED);
    assert_rcpt(&o, 0, false, false, 0, "", ""); /* accepted, but the message never went */
    assert_rcpt(&o, 1, false, false, 0, "", "");
    assert_string_equal(o.res.last_command, "RCPT TO:<r2@b.test>");
    fake_free(f);

    f = fake_new();
    f->steps = closing_421;
    req = base_req(f);
    run(f, NULL, &req, &o);
    assert_rcpt(&o, 0, false, false, 421, "421 4.4.2 closing", "RCPT TO:<r1@b.test>");
    assert_rcpt(&o, 1, false, false, 0, "", "");
    assert_string_equal(o.res.error, SMTP_CLIENT_ERR_CLOSED);
    fake_free(f);
}

static const struct step tls_steps[] = {
    {"EHLO", "250-fake.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n", 1},
    {"EHLO", "250-fake.test\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n", 2},
    {"STARTTLS", A_TLS, 1},
    {"AUTH PLAIN AHVzZXIAc2VjcmV0", "235 2.7.0 ok\r\n", 2},
    {"MAIL", "530 5.7.0 must issue STARTTLS first\r\n", 1},
    {NULL, NULL, 0},
};

static void test_starttls_opportunistic_unverified(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    f->steps = tls_steps;
    struct smtp_client_request req = base_req(f);
    req.security = SMTP_CLIENT_TLS_OPPORTUNISTIC;
    req.auth_user = "user";
    req.auth_password = "secret";
    struct outcome o;
    run(f, g_tls_system, &req, &o); /* cannot verify the certificate: encrypts anyway */
    assert_string_equal(f->transcript.data, "EHLO client.test\n"
                                            "STARTTLS\n"
                                            "--tls--\n"
                                            "EHLO client.test\n"
                                            "AUTH PLAIN AHVzZXIAc2VjcmV0\n"
                                            "MAIL FROM:<s@a.test>\n"
                                            "RCPT TO:<r1@b.test>\n"
                                            "RCPT TO:<r2@b.test>\n"
                                            "DATA\n"
                                            "QUIT\n");
    assert_true(o.res.tls);
    assert_false(o.res.tls_verified);
    assert_false(o.res.tls_failed);
    assert_string_equal(f->data.data, hello_wire);
    assert_true(o.res.rcpts[0].ok && o.res.rcpts[1].ok);
    fake_free(f);
}

static void test_starttls_required(void **state)
{
    (void)state;
    /* verified: trusted certificate, right name */
    struct fake *f = fake_new();
    f->steps = tls_steps;
    struct smtp_client_request req = base_req(f);
    req.security = SMTP_CLIENT_TLS_REQUIRED;
    struct outcome o;
    run(f, g_tls_trusting, &req, &o);
    assert_true(o.res.tls);
    assert_true(o.res.tls_verified);
    assert_true(o.res.rcpts[0].ok && o.res.rcpts[1].ok);
    assert_non_null(strstr(f->transcript.data, "STARTTLS\n--tls--\nEHLO client.test\nMAIL"));
    fake_free(f);

    /* an untrusted certificate, or the wrong name: the handshake fails, retry later */
    for (int k = 0; k < 2; k++) {
        f = fake_new();
        f->steps = tls_steps;
        req = base_req(f);
        req.security = SMTP_CLIENT_TLS_REQUIRED;
        if (k == 1)
            req.host_name = "mx.other.test";
        run(f, k == 0 ? g_tls_system : g_tls_trusting, &req, &o);
        assert_false(o.res.tls);
        assert_false(o.res.tls_failed); /* not opportunistic: no clear-text retry */
        if (strncmp(o.res.error, "TLS handshake failed: certificate verify failed", 47) != 0)
            fail_msg("error: %s", o.res.error);
        for (size_t i = 0; i < 2; i++)
            assert_rcpt(&o, i, false, false, 0, "", "");
        assert_null(strstr(f->transcript.data, "MAIL"));
        fake_free(f);
    }

    /* a context that never verifies: required TLS still encrypts, unverified */
    const char *err = NULL;
    struct tls_client *noverify = tls_client_new(NULL, false, &err);
    assert_non_null(noverify);
    f = fake_new();
    f->steps = tls_steps;
    req = base_req(f);
    req.security = SMTP_CLIENT_TLS_REQUIRED;
    req.host_name = "mx.other.test";
    run(f, noverify, &req, &o);
    assert_true(o.res.tls);
    assert_false(o.res.tls_verified);
    assert_true(o.res.rcpts[0].ok && o.res.rcpts[1].ok);
    fake_free(f);
    tls_client_free(&noverify);
    assert_null(noverify);

    /* not offered at all: permanent */
    f = fake_new();
    req = base_req(f);
    req.security = SMTP_CLIENT_TLS_REQUIRED;
    run(f, g_tls_trusting, &req, &o);
    assert_string_equal(f->transcript.data, "EHLO client.test\nQUIT\n");
    for (size_t i = 0; i < 2; i++)
        assert_rcpt(&o, i, false, true, 500, "Server does not support STARTTLS.",
                    "EHLO client.test");
    fake_free(f);

    /* no TLS context at all */
    f = fake_new();
    req = base_req(f);
    req.security = SMTP_CLIENT_TLS_REQUIRED;
    run(f, NULL, &req, &o);
    assert_string_equal(o.res.error, "TLS is not available.");
    assert_int_equal(f->accepted, 0);
    fake_free(f);
}

static void test_starttls_failed_then_clear(void **state)
{
    (void)state;
    static const struct step steps[] = {
        {"EHLO", "250-fake.test\r\n250 STARTTLS\r\n", 0},
        {"STARTTLS", A_TLSBAD, 0},
        {NULL, NULL, 0},
    };
    static const struct step refused[] = {
        {"EHLO", "250-fake.test\r\n250 STARTTLS\r\n", 0},
        {"STARTTLS", "454 4.7.0 TLS not available now\r\n", 0},
        {NULL, NULL, 0},
    };
    struct fake *f = fake_new();
    f->steps = steps;
    struct smtp_client_request req = base_req(f);
    req.security = SMTP_CLIENT_TLS_OPPORTUNISTIC;
    struct outcome o;
    run(f, g_tls_system, &req, &o);
    assert_true(o.res.tls_failed);
    assert_false(o.res.tls);
    assert_true(o.res.connected);
    assert_true(strncmp(o.res.error, "TLS handshake failed: ", 22) == 0);
    for (size_t i = 0; i < 2; i++)
        assert_rcpt(&o, i, false, false, 0, "", "");
    /* the caller's retry in clear */
    buf_reset(&f->transcript);
    req.security = SMTP_CLIENT_TLS_NONE;
    run(f, g_tls_system, &req, &o);
    assert_string_equal(f->transcript.data, "EHLO client.test\n"
                                            "MAIL FROM:<s@a.test>\n"
                                            "RCPT TO:<r1@b.test>\n"
                                            "RCPT TO:<r2@b.test>\n"
                                            "DATA\n"
                                            "QUIT\n");
    assert_true(o.res.rcpts[0].ok && o.res.rcpts[1].ok);
    assert_false(o.res.tls_failed);
    fake_free(f);

    /* 454 to STARTTLS: opportunistic goes on in clear */
    f = fake_new();
    f->steps = refused;
    req = base_req(f);
    req.security = SMTP_CLIENT_TLS_OPPORTUNISTIC;
    run(f, g_tls_system, &req, &o);
    assert_string_equal(f->transcript.data, "EHLO client.test\n"
                                            "STARTTLS\n"
                                            "MAIL FROM:<s@a.test>\n"
                                            "RCPT TO:<r1@b.test>\n"
                                            "RCPT TO:<r2@b.test>\n"
                                            "DATA\n"
                                            "QUIT\n");
    assert_true(o.res.rcpts[0].ok && o.res.rcpts[1].ok);
    assert_false(o.res.tls);
    fake_free(f);
}

static void test_implicit_tls(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    f->implicit_tls = true;
    struct smtp_client_request req = base_req(f);
    req.security = SMTP_CLIENT_TLS_IMPLICIT;
    struct outcome o;
    run(f, g_tls_trusting, &req, &o);
    assert_string_equal(f->transcript.data, "--tls--\n"
                                            "EHLO client.test\n"
                                            "MAIL FROM:<s@a.test> SIZE=22\n"
                                            "RCPT TO:<r1@b.test>\n"
                                            "RCPT TO:<r2@b.test>\n"
                                            "DATA\n"
                                            "QUIT\n");
    assert_true(o.res.tls && o.res.tls_verified && o.res.connected);
    assert_string_equal(f->data.data, hello_wire);
    assert_true(o.res.rcpts[0].ok && o.res.rcpts[1].ok);
    fake_free(f);

    /* implicit TLS verifies: an untrusted certificate fails before the banner */
    f = fake_new();
    f->implicit_tls = true;
    req = base_req(f);
    req.security = SMTP_CLIENT_TLS_IMPLICIT;
    run(f, g_tls_system, &req, &o);
    assert_false(o.res.connected);
    assert_false(o.res.tls_failed);
    assert_true(strncmp(o.res.error, "TLS handshake failed: certificate verify failed", 47) == 0);
    fake_free(f);
}

static void test_auth_login_and_refused(void **state)
{
    (void)state;
    static const struct step login[] = {
        {"EHLO", "250-fake.test\r\n250 AUTH=LOGIN\r\n", 0},
        {"AUTH LOGIN", "334 VXNlcm5hbWU6\r\n", 0},
        {"dXNlcg==", "334 UGFzc3dvcmQ6\r\n", 0},
        {"c2VjcmV0", "235 2.7.0 ok\r\n", 0},
        {NULL, NULL, 0},
    };
    static const struct step refused[] = {
        {"EHLO", "250-fake.test\r\n250 AUTH PLAIN LOGIN\r\n", 0},
        {"AUTH PLAIN", "535 5.7.8 authentication failed\r\n", 0},
        {NULL, NULL, 0},
    };
    static const struct step refused_login[] = {
        {"EHLO", "250-fake.test\r\n250 AUTH LOGIN\r\n", 0},
        {"AUTH LOGIN", "334 VXNlcm5hbWU6\r\n", 0},
        {"dXNlcg==", "334 UGFzc3dvcmQ6\r\n", 0},
        {"c2VjcmV0", "535 5.7.8 no\r\n", 0},
        {NULL, NULL, 0},
    };
    struct fake *f = fake_new();
    f->steps = login;
    struct smtp_client_request req = base_req(f);
    req.auth_user = "user";
    req.auth_password = "secret";
    struct outcome o;
    run(f, NULL, &req, &o);
    assert_string_equal(f->transcript.data, "EHLO client.test\n"
                                            "AUTH LOGIN\n"
                                            "dXNlcg==\n"
                                            "c2VjcmV0\n"
                                            "MAIL FROM:<s@a.test>\n"
                                            "RCPT TO:<r1@b.test>\n"
                                            "RCPT TO:<r2@b.test>\n"
                                            "DATA\n"
                                            "QUIT\n");
    assert_true(o.res.rcpts[0].ok && o.res.rcpts[1].ok);
    fake_free(f);

    /* refused: temporary for everyone, whatever the code; the password never shows */
    f = fake_new();
    f->steps = refused;
    req = base_req(f);
    req.auth_user = "user";
    req.auth_password = "secret";
    run(f, NULL, &req, &o);
    assert_string_equal(f->transcript.data,
                        "EHLO client.test\nAUTH PLAIN AHVzZXIAc2VjcmV0\nQUIT\n");
    for (size_t i = 0; i < 2; i++)
        assert_rcpt(&o, i, false, false, 535, "535 5.7.8 authentication failed",
                    "AUTH PLAIN <Password removed>");
    assert_string_equal(o.res.last_command, "AUTH PLAIN <Password removed>");
    fake_free(f);

    f = fake_new();
    f->steps = refused_login;
    req = base_req(f);
    req.auth_user = "user";
    req.auth_password = "secret";
    run(f, NULL, &req, &o);
    for (size_t i = 0; i < 2; i++)
        assert_rcpt(&o, i, false, false, 535, "535 5.7.8 no", "<Password removed>");
    fake_free(f);
}

static void test_ipv6(void **state)
{
    (void)state;
    struct fake *f = fake_new_at(true);
    if (!f)
        skip();
    struct smtp_client_request req = base_req(f);
    ipaddr_parse("::1", &req.ip);
    req.host_name = NULL; /* the certificate check would use the IP */
    struct outcome o;
    run(f, NULL, &req, &o);
    assert_string_equal(f->data.data, hello_wire);
    assert_true(o.res.rcpts[0].ok && o.res.rcpts[1].ok);
    fake_free(f);
}

static void test_invalid_request_and_cancel(void **state)
{
    (void)state;
    static const char *const bad[] = {"r1@b.test", "evil@b.test>\r\nRSET"};
    struct fake *f = fake_new();
    struct smtp_client_request req = base_req(f);
    req.rcpts = bad;
    struct outcome o;
    run(f, NULL, &req, &o);
    assert_int_equal(f->accepted, 0);
    assert_string_equal(o.res.error, "Invalid envelope recipient.");
    assert_true(o.res.rcpts[0].permanent && o.res.rcpts[1].permanent);
    fake_free(f);

    /* cancel while the server is silent: no callback, nothing leaks (ASan) */
    f = fake_new();
    f->banner = NULL;
    req = base_req(f);
    memset(&o, 0, sizeof(o));
    struct smtp_client *c = smtp_client_send(f->base, NULL, &req, on_done, &o);
    double t0 = now_s();
    while (f->accepted == 0 && now_s() - t0 < 5)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(f->accepted, 1);
    smtp_client_cancel(&c);
    assert_null(c);
    while (f->conns > 0 && now_s() - t0 < 10)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(f->conns, 0);
    assert_false(o.done);
    fake_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_happy_pipelining),
        cmocka_unit_test(test_no_pipelining_8bit_null_sender),
        cmocka_unit_test(test_ehlo_refused_helo_fallback),
        cmocka_unit_test(test_ehlo_refused_with_auth_or_required),
        cmocka_unit_test(test_rcpt_550_partial),
        cmocka_unit_test(test_no_rcpt_accepted_no_data),
        cmocka_unit_test(test_mail_451),
        cmocka_unit_test(test_banner_554),
        cmocka_unit_test(test_data_and_end_of_data_refused),
        cmocka_unit_test(test_dotstuff_on_the_wire),
        cmocka_unit_test(test_hostile_replies),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_connect_refused_and_timeout),
        cmocka_unit_test(test_remote_close),
        cmocka_unit_test(test_starttls_opportunistic_unverified),
        cmocka_unit_test(test_starttls_required),
        cmocka_unit_test(test_starttls_failed_then_clear),
        cmocka_unit_test(test_implicit_tls),
        cmocka_unit_test(test_auth_login_and_refused),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_invalid_request_and_cancel),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
