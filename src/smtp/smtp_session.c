/* smtp_session: lifecycle of one inbound SMTP session — admission by IP range (a worker job: the
 * directory is a database), the banner, the input loop (strict CRLF command lines with the 510 /
 * 250,000-byte limits, or the DATA stream), the one reply function every reply goes through
 * (logging 4xx/5xx, the invalid-command counter, closing after 421), state changes, worker jobs,
 * timeouts and shutdown.
 *
 * Lifetime: the session is freed only when its connection is gone AND no worker job is in
 * flight, so a job's done callback that finds its session by id may use it; a session whose
 * connection is gone has conn == NULL and only cleans up. */
#include "smtp/smtp.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dir/dir.h"
#include "dir/dir_cache.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "net/conn.h"
#include "net/dns.h"
#include "net/pool.h"
#include "net/tls.h"
#include "smtp/smtp_internal.h"

static const char *smtp_state_name(enum smtp_state st)
{
    switch (st) {
    case SMTP_STATE_CONNECTED:
        return "CONNECTED";
    case SMTP_STATE_GREETED:
        return "GREETED";
    case SMTP_STATE_MAIL:
        return "MAIL";
    case SMTP_STATE_RCPT:
        return "RCPT";
    case SMTP_STATE_DATA:
        return "DATA";
    }
    return "?";
}

void smtp_state_set(struct smtp_session *s, enum smtp_state st)
{
    if (s->state != st)
        log_debug("%s: state %s -> %s", s->tag, smtp_state_name(s->state), smtp_state_name(st));
    s->state = st;
}

void smtp_transaction_reset(struct smtp_session *s)
{
    smtp_data_free(s);
    s->sender[0] = '\0';
    s->max_kb = 0;
    free(s->rcpts);
    s->rcpts = NULL;
    s->rcpts_count = s->rcpts_cap = 0;
    s->rcpt_commands = 0;
    s->first_rcpt[0] = '\0';
    if (s->state != SMTP_STATE_CONNECTED)
        smtp_state_set(s, SMTP_STATE_GREETED);
}

static void smtp_session_free(struct smtp_session *s)
{
    smtp_transaction_reset(s);
    server_session_gone(s->srv, s->id);
    buf_free(&s->line);
    free(s);
}

static void smtp_maybe_free(struct smtp_session *s)
{
    if (!s->conn && s->jobs == 0)
        smtp_session_free(s);
}

void smtp_close(struct smtp_session *s)
{
    s->quitting = true;
    if (s->conn)
        conn_close(s->conn);
}

static void smtp_write_line(struct smtp_session *s, const char *text)
{
    if (!s->conn)
        return;
    conn_write(s->conn, text, strlen(text));
    conn_write(s->conn, "\r\n", 2);
}

void smtp_reply_raw(struct smtp_session *s, const char *text)
{
    if (text[0] == '4' || text[0] == '5')
        log_sess(s->id, "%s", text);
    smtp_write_line(s, text);
    if (strncmp(text, "421", 3) == 0)
        smtp_close(s);
}

void smtp_reply(struct smtp_session *s, enum reply_id id, const char *arg)
{
    const struct reply_info *ri = reply_info(id);
    if (ri->counted && ri->code >= 500) {
        s->invalid_count++;
        const struct conf *c = s->srv->conf;
        if (c->disconnect_invalid_clients && s->invalid_count > c->max_invalid_commands) {
            id = R_TOO_MANY_INVALID;
            arg = NULL;
        }
    }
    char text[1100];
    reply_format(id, arg, text, sizeof(text));
    smtp_reply_raw(s, text);
}

/* ---- worker jobs ---- */

void smtp_job_hold(struct smtp_session *s)
{
    s->jobs++;
    if (s->conn)
        conn_pause(s->conn);
}

void smtp_job_start(struct smtp_session *s, void *job, void (*work)(void *), void (*done)(void *))
{
    smtp_job_hold(s);
    pool_submit(s->srv->pool, job, work, done);
}

struct smtp_session *smtp_job_session(uint64_t id)
{
    return idmap_get(&server_get()->sessions, id);
}

static void smtp_process_input(struct smtp_session *s);

void smtp_job_finish(struct smtp_session *s)
{
    s->jobs--;
    if (!s->conn) {
        smtp_maybe_free(s);
        return;
    }
    if (s->shutdown_pending && s->jobs == 0) {
        smtp_transaction_reset(s);
        char arg[300];
        snprintf(arg, sizeof(arg), "%s", s->srv->conf->hostname);
        smtp_reply(s, R_SHUTDOWN, arg);
        return;
    }
    if (s->jobs == 0)
        conn_resume(s->conn); /* processes input that arrived meanwhile */
}

/* ---- input ---- */

static void smtp_process_input(struct smtp_session *s)
{
    while (s->conn && !s->quitting && s->jobs == 0 && !conn_output_blocked(s->conn)) {
        if (s->state == SMTP_STATE_DATA) {
            smtp_data_input(s);
            if (s->state == SMTP_STATE_DATA || s->jobs > 0)
                return;
            continue;
        }
        enum conn_line_status st =
            conn_read_line(s->conn, SMTP_CMD_MAX, SMTP_CMD_HARD_MAX, &s->line);
        if (st == CONN_LINE_NONE)
            return;
        conn_touch(s->conn); /* the idle timeout counts from the last complete command */
        if (st == CONN_LINE_EXCESSIVE) {
            smtp_transaction_reset(s);
            smtp_reply(s, R_EXCESSIVE_DATA, NULL);
            return;
        }
        if (st == CONN_LINE_TOO_LONG) {
            smtp_reply(s, R_LINE_TOO_LONG, NULL);
            continue;
        }
        if (s->auth_step != SMTP_AUTH_NONE)
            smtp_auth_input(s, s->line.data); /* a response to a 334 challenge */
        else
            smtp_command_dispatch(s, s->line.data);
    }
}

static void smtp_on_input(void *ctx)
{
    smtp_process_input(ctx);
}

static void smtp_on_timeout(void *ctx)
{
    struct smtp_session *s = ctx;
    if (s->jobs > 0) {
        conn_touch(s->conn); /* waiting for our own worker, not for the client */
        return;
    }
    log_sess(s->id, "timeout in state %s", smtp_state_name(s->state));
    smtp_transaction_reset(s);
    smtp_reply(s, R_TIMEOUT, NULL);
    smtp_close(s);
}

static void smtp_on_closed(void *ctx)
{
    struct smtp_session *s = ctx;
    log_sess(s->id, "disconnect from [%s]", conn_peer_str(s->conn));
    conn_free(&s->conn);
    smtp_maybe_free(s);
}

static void smtp_on_tls_ready(void *ctx)
{
    struct smtp_session *s = ctx;
    char info[200];
    smtp_tls_info(s, info, sizeof(info));
    log_sess(s->id, "TLS established: %s", info);
    if (s->listener->security == CONF_SECURITY_TLS && s->admitted)
        smtp_banner(s); /* implicit TLS: the banner comes after the handshake */
}

static const struct conn_handler smtp_conn_handler = {
    .on_input = smtp_on_input,
    .on_timeout = smtp_on_timeout,
    .on_closed = smtp_on_closed,
    .on_tls_ready = smtp_on_tls_ready,
};

/* ---- admission ---- */

struct smtp_admit_job {
    uint64_t session_id;
    struct ipaddr ip;
    enum dir_result result;
    struct dir_iprange range;
    const char *err;
};

static void smtp_admit_work(void *arg)
{
    struct smtp_admit_job *j = arg;
    struct dir *d = pool_worker_dir(&j->err);
    j->result = d ? dir_iprange_match(d, &j->ip, &j->range) : DIR_TEMPFAIL;
}

/* Both connect-time checks (IP range, reverse DNS) are done: greet or close. */
static void smtp_admission_step(struct smtp_session *s)
{
    if (--s->admission > 0 || !s->conn || s->quitting)
        return;
    if (s->refused) {
        smtp_close(s);
        return;
    }
    s->admitted = true;
    if (s->listener->security == CONF_SECURITY_TLS) {
        SSL *ssl = s->srv->tls ? tls_server_ssl_new(s->srv->tls) : NULL;
        if (!ssl) {
            smtp_close(s);
            return;
        }
        conn_start_tls(s->conn, ssl); /* banner in smtp_on_tls_ready */
        return;
    }
    smtp_banner(s);
}

static void smtp_admit_apply(struct smtp_session *s, const struct smtp_admit_job *j)
{
    if (j->result == DIR_TEMPFAIL || j->result == DIR_PERMFAIL) {
            /* The directory is unreadable: say so (4xx) rather than pretending to be closed. */
            log_sess(s->id, "IP range lookup failed: %s", j->err ? j->err : "database error");
            smtp_reply(s, R_UNAVAILABLE, NULL);
        } else if (j->result == DIR_NOTFOUND || !(j->range.flags & DIR_IPR_SMTP)) {
            log_sess(s->id,
                     "Client connection from %s was not accepted. Blocked either by IP range "
                     "or by connection limit.",
                     conn_peer_str(s->conn));
            s->refused = true;
        } else {
            s->iprange_flags = j->range.flags;
            snprintf(s->iprange_name, sizeof(s->iprange_name), "%s", j->range.name);
        }
        smtp_admission_step(s);
}

static void smtp_admit_done(void *arg)
{
    struct smtp_admit_job *j = arg;
    struct smtp_session *s = smtp_job_session(j->session_id);
    if (s && s->conn)
        smtp_admit_apply(s, j);
    free(j);
    if (s)
        smtp_job_finish(s);
}

static void smtp_ptr_done(void *ctx, enum dns_status status, const char *name)
{
    uint64_t *idp = ctx;
    struct smtp_session *s = smtp_job_session(*idp);
    free(idp);
    if (!s)
        return;
    if (status == DNS_OK)
        snprintf(s->ptr, sizeof(s->ptr), "%s", name);
    if (s->conn)
        smtp_admission_step(s);
    smtp_job_finish(s);
}

void smtp_session_start(struct server *srv, const struct conf_listener *listener, int fd)
{
    struct smtp_session *s = xcalloc(1, sizeof(*s));
    s->srv = srv;
    s->listener = listener;
    s->id = server_session_id_new(srv);
    log_session_tag(s->id, s->tag);
    buf_init(&s->line, SMTP_CMD_MAX + 1);
    s->conn = conn_new(srv->base, fd, &smtp_conn_handler, s);
    conn_set_timeout(s->conn, srv->conf->timeout_s);
    idmap_put(&srv->sessions, s->id, s);
    srv->sessions_count++;
    log_sess(s->id, "connect from [%s]:%d to %s", conn_peer_str(s->conn), conn_peer_port(s->conn),
             listener->name);
    if (srv->conf->max_connections && srv->sessions_count > srv->conf->max_connections) {
        log_sess(s->id, "connection limit (%u) reached", srv->conf->max_connections);
        smtp_close(s);
        return;
    }
    s->admission = 2;
    struct smtp_admit_job *j = xcalloc(1, sizeof(*j));
    j->session_id = s->id;
    j->ip = *conn_peer_ip(s->conn);
    /* The IP range from the directory cache when it has it, else from a worker. */
    struct dir *cached = srv->loop_dir;
    if (cached) {
        j->result = dir_iprange_match(cached, &j->ip, &j->range);
        if (!dir_cache_take_miss(cached)) {
            smtp_admit_apply(s, j);
            free(j);
            j = NULL;
        }
    }
    if (j)
        smtp_job_start(s, j, smtp_admit_work, smtp_admit_done);
    /* Reverse DNS for the Received header runs at the same time (like Postfix, before the
     * banner, so the name is known for the whole session). */
    uint64_t *idp = xmalloc(sizeof(*idp));
    *idp = s->id;
    s->jobs++;
    conn_pause(s->conn);
    dns_lookup_ptr(srv->dns, conn_peer_ip(s->conn), smtp_ptr_done, idp);
}

/* ---- shutdown ---- */

static void smtp_session_shutdown(void *val, void *ctx)
{
    (void)ctx;
    struct smtp_session *s = val;
    if (!s->conn || s->quitting)
        return;
    if (s->jobs > 0) {
        s->shutdown_pending = true; /* answered when the job (e.g. a spool commit) finishes */
        return;
    }
    smtp_transaction_reset(s);
    if (s->admitted) {
        char arg[300];
        snprintf(arg, sizeof(arg), "%s", s->srv->conf->hostname);
        smtp_reply(s, R_SHUTDOWN, arg);
    } else {
        smtp_close(s);
    }
}

void smtp_sessions_shutdown(struct server *srv)
{
    idmap_foreach(&srv->sessions, smtp_session_shutdown, NULL);
}

/* After the loop has stopped (shutdown grace expired): free whatever sessions remain. */
static void smtp_collect(void *val, void *ctx)
{
    struct buf *list = ctx;
    buf_append(list, &val, sizeof(val));
}

void smtp_sessions_free_all(struct server *srv)
{
    struct buf list;
    buf_init(&list, 0);
    idmap_foreach(&srv->sessions, smtp_collect, &list);
    size_t n = list.len / sizeof(struct smtp_session *);
    for (size_t i = 0; i < n; i++) {
        struct smtp_session *s;
        memcpy(&s, list.data + i * sizeof(s), sizeof(s));
        conn_free(&s->conn);
        s->jobs = 0;
        smtp_session_free(s);
    }
    buf_free(&list);
}
