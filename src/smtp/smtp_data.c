/* smtp_data: the DATA phase — RFC 5321 §4.1.4/§4.5.2 and replies.md "DATA and end of data".
 *
 * Input is consumed line by line (a line ends at LF). End of data is exactly CRLF "." CRLF: the
 * "." line must end in CRLF and the line before it too (a bare LF or CR around the dot never ends
 * the message). A leading dot is removed from every line (dot-unstuffing). Bare CR / bare LF line
 * ends are stored as CRLF, or make the message fail with [smtp] reject_bare_lf = yes.
 *
 * Sticky errors (conventions.md §8): the first problem — a line over 100,000 bytes, the size limit,
 * a bare line end, a spool write failure — is recorded; the rest of the message is read and
 * discarded; the one reply is decided after the final dot, so the session stays in sync.
 *
 * The server adds a Received header at the top and a Message-ID at the end of the header section
 * when the client sent none. A message stays in memory while it is under SMTP_SPOOL_CHUNK and
 * goes to the group committer whole (appended to a segment, queue_segment.h); a larger one is
 * written to a spool file by worker jobs as it arrives (queue_spool.h). Either way the bytes
 * are durable and the queue rows committed before "250 Queued". */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "mail/headers.h"
#include "net/conn.h"
#include "net/pool.h"
#include "queue/queue_commit.h"
#include "queue/queue_sched.h"
#include "queue/queue_spool.h"
#include "smtp/smtp_internal.h"

#define SMTP_SPOOL_CHUNK (256 * 1024) /* hand bytes to a write job when this much is pending */

struct smtp_data {
    struct queue_spool_file *file; /* NULL while a job owns it */
    uint64_t raw_size;             /* bytes received after 354, dot-stuffing and CRLFs included */
    enum reply_id error;           /* sticky; R__COUNT = none */
    bool prev_crlf;                /* the previous line ended in CRLF */
    bool in_long_line;             /* discarding the rest of an over-long line */
    bool in_headers;
    bool saw_message_id;
    struct buf out;                /* processed bytes not yet handed to the spool */
};

static void smtp_data_set_error(struct smtp_data *d, enum reply_id id)
{
    if (d->error == R__COUNT) {
        d->error = id;
        buf_free(&d->out);
        buf_init(&d->out, 0);
    }
}

/* ---- jobs that own a spool file ---- */

static void spool_abort_work(void *arg)
{
    queue_spool_abort(arg);
}

static void spool_abort_done(void *arg)
{
    free(arg);
}

/* Remove a spool file that will not be committed (fire and forget on the pool). */
static void smtp_spool_discard(struct server *srv, struct queue_spool_file **f)
{
    if (*f && (*f)->fd < 0 && !(*f)->tmp_path[0]) {
        free(*f); /* never spilled to disk */
    } else if (*f && srv->pool) {
        pool_submit(srv->pool, *f, spool_abort_work, spool_abort_done);
    } else if (*f) {
        queue_spool_abort(*f); /* the pool is gone: the process is exiting */
        free(*f);
    }
    *f = NULL;
}

void smtp_data_free(struct smtp_session *s)
{
    struct smtp_data *d = s->data;
    if (!d)
        return;
    smtp_spool_discard(s->srv, &d->file);
    buf_free(&d->out);
    free(d);
    s->data = NULL;
}

/* ---- DATA command: 354 at once; the message stays in memory until it outgrows
 * SMTP_SPOOL_CHUNK, when a spool file is opened for it ---- */

void smtp_data_begin(struct smtp_session *s)
{
    clock_gettime(CLOCK_MONOTONIC, &s->data_started);
    struct smtp_data *d = xcalloc(1, sizeof(*d));
    d->file = xcalloc(1, sizeof(*d->file));
    d->file->fd = -1;
    queue_id_new(d->file->id);
    d->error = R__COUNT;
    d->prev_crlf = true;
    d->in_headers = true;
    buf_init(&d->out, 0);
    s->data = d;
    const struct conf *c = s->srv->conf;
    char tls_info[200];
    smtp_tls_info(s, tls_info, sizeof(tls_info));
    struct headers_received hr = {
        .helo = s->helo,
        .ptr = s->ptr,
        .client_ip = conn_peer_str(s->conn),
        .hostname = c->hostname,
        .protocol = smtp_protocol_name(s),
        .tls_info = tls_info,
        .id = d->file->id,
        .for_rcpt = s->rcpt_commands == 1 ? s->first_rcpt : NULL,
        .when = time(NULL),
    };
    headers_received(&d->out, &hr);
    smtp_state_set(s, SMTP_STATE_DATA);
    smtp_reply(s, R_DATA_GO, NULL);
}

/* ---- spool writes ---- */

struct smtp_write_job {
    uint64_t session_id;
    const char *data_dir;
    struct queue_spool_file *file;
    char *bytes;
    size_t len;
    int result;
    const char *err;
};

static void smtp_write_work(void *arg)
{
    struct smtp_write_job *j = arg;
    j->result = 0;
    if (j->file->fd < 0)
        j->result = queue_spool_open(j->data_dir, j->file, &j->err);
    if (j->result == 0)
        j->result = queue_spool_write(j->file, j->bytes, j->len, &j->err);
}

static void smtp_write_done(void *arg)
{
    struct smtp_write_job *j = arg;
    struct smtp_session *s = smtp_job_session(j->session_id);
    if (j->result < 0)
        log_error("%s", j->err);
    if (s && s->data && !s->data->file) {
        s->data->file = j->file;
        j->file = NULL;
        if (j->result < 0)
            smtp_data_set_error(s->data, R_NO_DATA_SAVED);
    }
    smtp_spool_discard(server_get(), &j->file);
    free(j->bytes);
    free(j);
    if (s)
        smtp_job_finish(s);
}

static void smtp_data_flush(struct smtp_session *s)
{
    struct smtp_data *d = s->data;
    struct smtp_write_job *j = xcalloc(1, sizeof(*j));
    j->session_id = s->id;
    j->data_dir = s->srv->conf->data_dir;
    j->file = d->file;
    d->file = NULL;
    j->bytes = buf_steal(&d->out, &j->len);
    buf_init(&d->out, 0);
    smtp_job_start(s, j, smtp_write_work, smtp_write_done);
}

/* ---- end of data: commit ---- */

struct smtp_commit_job {
    struct queue_commit_req req; /* first: the committer hands it back */
    uint64_t session_id;
    struct queue_spool_file *file;
    char *bytes;
    size_t len;
    const char *data_dir;
    char sender[ADDR_MAX];
    char client_ip[IPADDR_STRLEN];
    char helo[256];
    char auth_user[ADDR_MAX];
    struct policy_recipient *rcpts;
    size_t rcpts_count;
    struct queue_envelope env;
    enum queue_commit_result result;
    int64_t message_id;
    const char *err;
};

/* Worker: the rest of the bytes, then seal the file (fsync + rename). The directory fsync and
 * the database commit come in a batch with other sessions' messages (queue_commit.h). */
static void smtp_commit_work(void *arg)
{
    struct smtp_commit_job *j = arg;
    j->result = QUEUE_COMMIT_OK;
    if ((j->len && queue_spool_write(j->file, j->bytes, j->len, &j->err) < 0) ||
        queue_spool_seal(j->data_dir, j->file, j->req.item.blob_path, &j->err) < 0) {
        queue_spool_abort(j->file);
        j->result = QUEUE_COMMIT_SPOOL_FAILED;
    }
}

/* Loop: the message is committed (or failed). Answer the client, start local delivery. */
static void smtp_commit_finished(struct queue_commit_req *req)
{
    struct smtp_commit_job *j = (struct smtp_commit_job *)req;
    if (j->result == QUEUE_COMMIT_OK) {
        j->result = req->item.result;
        j->message_id = req->item.message_id;
        j->err = req->item.err;
    }
    struct server *srv = server_get();
    struct smtp_session *s = smtp_job_session(j->session_id);
    if (j->result == QUEUE_COMMIT_OK) {
        /* even if the client is gone */
        if (req->item.local_pending)
            server_deliver_message(srv, j->message_id);
        else if (req->item.remote_pending && srv->sched)
            queue_sched_kick(srv->sched);
    } else
        log_error("message %s not accepted: %s", j->file->id, j->err ? j->err : "?");
    if (s && s->conn) {
        if (j->result == QUEUE_COMMIT_OK) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            double secs = (double)(now.tv_sec - s->data_started.tv_sec) +
                          (double)(now.tv_nsec - s->data_started.tv_nsec) / 1e9;
            char secs_text[32];
            snprintf(secs_text, sizeof(secs_text), "%.3f", secs);
            log_sess(s->id, "queued as %s, %zu recipient(s), %llu bytes", j->file->id,
                     j->rcpts_count, (unsigned long long)j->file->written);
            smtp_reply(s, R_QUEUED, secs_text);
        } else {
            smtp_reply(s, j->result == QUEUE_COMMIT_SPOOL_FAILED ? R_NO_DATA_SAVED : R_NOT_SAVED,
                       NULL);
        }
        smtp_transaction_reset(s);
    }
    free(j->file);
    free(j->bytes);
    free(j->rcpts);
    free(j);
    if (s)
        smtp_job_finish(s);
}

static void smtp_commit_done(void *arg)
{
    struct smtp_commit_job *j = arg;
    if (j->result != QUEUE_COMMIT_OK) {
        smtp_commit_finished(&j->req);
        return;
    }
    j->env = (struct queue_envelope){
        .sender = j->sender,
        .rcpts = j->rcpts,
        .rcpts_count = j->rcpts_count,
        .client_ip = j->client_ip,
        .helo = j->helo,
        .auth_user = j->auth_user,
        .received_at = time(NULL),
    };
    j->req.item.file = j->file;
    j->req.item.env = &j->env;
    j->req.done = smtp_commit_finished;
    queue_committer_submit(server_get()->committer, &j->req);
}

static void smtp_data_end(struct smtp_session *s)
{
    struct smtp_data *d = s->data;
    if (d->error == R__COUNT && s->max_kb && d->raw_size / 1024 > s->max_kb)
        d->error = R_SIZE_EXCEEDED;
    if (d->error != R__COUNT) {
        enum reply_id e = d->error;
        char text[200] = "";
        if (e == R_SIZE_EXCEEDED)
            snprintf(text, sizeof(text),
                     "Message size exceeds fixed maximum message size. Size: %llu KB, Max size: "
                     "%u KB",
                     (unsigned long long)(d->raw_size / 1024), s->max_kb);
        log_sess(s->id, "message rejected after %llu bytes", (unsigned long long)d->raw_size);
        smtp_transaction_reset(s);
        smtp_reply(s, e, text);
        return;
    }
    if (d->in_headers && !d->saw_message_id) {
        char mid[400];
        headers_message_id(s->srv->conf->hostname, mid, sizeof(mid));
        buf_printf(&d->out, "Message-ID: %s\r\n", mid);
    }
    struct smtp_commit_job *j = xcalloc(1, sizeof(*j));
    j->session_id = s->id;
    j->file = d->file;
    d->file = NULL;
    j->bytes = buf_steal(&d->out, &j->len);
    buf_init(&d->out, 0);
    j->data_dir = s->srv->conf->data_dir;
    snprintf(j->sender, sizeof(j->sender), "%s", s->sender);
    snprintf(j->client_ip, sizeof(j->client_ip), "%s", conn_peer_str(s->conn));
    snprintf(j->helo, sizeof(j->helo), "%s", s->helo);
    snprintf(j->auth_user, sizeof(j->auth_user), "%s", s->authenticated ? s->auth_user : "");
    j->rcpts_count = s->rcpts_count;
    j->rcpts = xmalloc(s->rcpts_count * sizeof(*s->rcpts));
    memcpy(j->rcpts, s->rcpts, s->rcpts_count * sizeof(*s->rcpts));
    smtp_state_set(s, SMTP_STATE_GREETED); /* the transaction ends with this reply */
    if (j->file->fd >= 0 || j->file->tmp_path[0]) {
        smtp_job_start(s, j, smtp_commit_work, smtp_commit_done);
        return;
    }
    /* Never spilled: the bytes go straight to the committer, into a segment. */
    j->file->written = j->len;
    j->req.item.data = j->bytes;
    j->req.item.len = j->len;
    smtp_job_hold(s);
    smtp_commit_done(j);
}

/* ---- line processing ---- */

static bool header_name_is(const char *p, size_t n, const char *name)
{
    size_t k = strlen(name);
    if (n <= k || p[k] != ':')
        return false;
    char tmp[32];
    memcpy(tmp, p, k);
    tmp[k] = '\0';
    return str_ieq(tmp, name);
}

static bool looks_like_header(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == ':')
            return i > 0;
        if (c <= 32 || c >= 127)
            return false;
    }
    return false;
}

/* Append content, turning any lone CR into CRLF, then the CRLF line end. */
static void smtp_data_emit(struct smtp_data *d, const char *p, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\r') {
            buf_append(&d->out, p + start, i - start);
            buf_append(&d->out, "\r\n", 2);
            start = i + 1;
        }
    buf_append(&d->out, p + start, n - start);
    buf_append(&d->out, "\r\n", 2);
}

/* One line of n bytes including its LF. Returns true at the end of data. */
static bool smtp_data_line(struct smtp_session *s, const char *p, size_t n)
{
    struct smtp_data *d = s->data;
    bool crlf = n >= 2 && p[n - 2] == '\r';
    size_t len = crlf ? n - 2 : n - 1;
    if (crlf && d->prev_crlf && len == 1 && p[0] == '.')
        return true;
    bool bare = !crlf || memchr(p, '\r', len) != NULL;
    d->prev_crlf = crlf;
    if (len > SMTP_DATA_LINE_MAX)
        smtp_data_set_error(d, R_LINE_TOO_LONG_DATA);
    if (bare && s->srv->conf->reject_bare_lf)
        smtp_data_set_error(d, R_BARE_LF);
    if (s->max_kb && d->raw_size / 1024 > s->max_kb)
        smtp_data_set_error(d, R_SIZE_EXCEEDED);
    if (d->error != R__COUNT)
        return false;
    if (len > 0 && p[0] == '.') {
        p++;
        len--;
    }
    if (d->in_headers) {
        bool end = false;
        if (len == 0)
            end = true;
        else if (p[0] == ' ' || p[0] == '\t')
            ; /* continuation of the previous field */
        else if (looks_like_header(p, len)) {
            if (header_name_is(p, len, "Message-ID"))
                d->saw_message_id = true;
        } else
            end = true;
        if (end) {
            d->in_headers = false;
            if (!d->saw_message_id) {
                char mid[400];
                headers_message_id(s->srv->conf->hostname, mid, sizeof(mid));
                buf_printf(&d->out, "Message-ID: %s\r\n", mid);
            }
        }
    }
    smtp_data_emit(d, p, len);
    return false;
}

void smtp_data_input(struct smtp_session *s)
{
    struct evbuffer *in = conn_input(s->conn);
    struct smtp_data *d = s->data;
    for (;;) {
        if (d->out.len >= SMTP_SPOOL_CHUNK && d->error == R__COUNT) {
            smtp_data_flush(s);
            return;
        }
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return;
        conn_touch(s->conn); /* DATA progress keeps the session alive */
        struct evbuffer_ptr lf = evbuffer_search(in, "\n", 1, NULL);
        if (lf.pos < 0) {
            /* No line end yet. Keep waiting unless the line is already too long to matter. */
            if (avail > SMTP_DATA_LINE_MAX + 1) {
                smtp_data_set_error(d, R_LINE_TOO_LONG_DATA);
                d->in_long_line = true;
                d->raw_size += avail;
                evbuffer_drain(in, avail);
            }
            return;
        }
        size_t n = (size_t)lf.pos + 1;
        d->raw_size += n;
        if (d->in_long_line) {
            d->in_long_line = false;
            d->prev_crlf = n >= 2 && evbuffer_pullup(in, n)[n - 2] == '\r';
            evbuffer_drain(in, n);
            continue;
        }
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
        bool end = smtp_data_line(s, p, n);
        evbuffer_drain(in, n);
        if (end) {
            smtp_data_end(s);
            return;
        }
    }
}
