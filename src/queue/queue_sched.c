/* queue_sched: outbound delivery scheduler (see queue_sched.h for the rules).
 *
 * One delivery = one message, one target (recipient domain + route), at most 100 recipients:
 *   pick (worker) -> prepare: load the message and route (worker) -> resolve the target (DNS,
 *   loop) -> for each address: loop check, SMTP client (loop) -> record results, bounces,
 *   finish the message (worker).
 * Deliveries find nothing by raw session pointers; each owns its state until recorded. */
#include "queue/queue_sched.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dir/dir.h"
#include "lib/idmap.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "mail/addr.h"
#include "net/pool.h"
#include "queue/queue.h"
#include "queue/queue_bounce.h"
#include "queue/queue_target.h"
#include "server/server.h"
#include "smtp/smtp_client.h"
#include "store/store.h"

#define QS_PICK_LIMIT 500
#define QS_BATCH_MAX 100
#define QS_TICK_S 1

enum qs_state { QS_PENDING = 0, QS_OK, QS_PERM, QS_TEMP };

struct qs_rcpt {
    int64_t id;
    char address[ADDR_MAX];
    char original[ADDR_MAX];
    int attempts;
    enum qs_state st;
    char error[2048];   /* the §8.6 error block for bounces and `queue show` */
    char status[16];    /* RFC 3463 status for the delivery-status part */
    char diag[1100];    /* "smtp; 550 ..." */
    char remote[300];   /* "dns; host" */
};

struct qs_delivery {
    struct queue_sched *q;
    int64_t message_id;
    char queue_id[QUEUE_ID_MAX];
    char blob_id[QUEUE_ID_MAX * 2];
    char sender[ADDR_MAX];
    char domain[256];
    int64_t route_id;
    struct qs_rcpt *rcpts;
    size_t count;
    /* prepared */
    char *message;
    size_t message_len;
    bool has_route;
    struct dir_route route;
    const char *prep_err;
    /* target and progress */
    struct smtp_client *client; /* the session in progress, for cancelling at shutdown */
    struct queue_target target;
    size_t addr_index;
    bool plain_retry; /* opportunistic TLS failed: this address again without TLS */
    /* recorded */
    int64_t bounce_id;
    const char *rec_err;
    struct qs_delivery *next;
};

struct qs_domain_count {
    char domain[256];
    unsigned active;
    struct qs_domain_count *next;
};

struct queue_sched {
    struct server *srv;
    struct qs_domain_count *domains; /* deliveries in progress per recipient domain */
    struct event *timer;
    struct idmap busy_messages; /* message id -> (void *)1 while a delivery runs */
    unsigned active;
    bool picking;
    bool stopping;
    bool again;     /* kicked while picking */
    bool cancelled; /* the loop has ended: abandon whatever calls back */
    struct qs_delivery *deliveries; /* every delivery in progress */
};

static void qs_pick(struct queue_sched *q);

static struct qs_domain_count *qs_domain(struct queue_sched *q, const char *domain, bool create)
{
    for (struct qs_domain_count *c = q->domains; c; c = c->next)
        if (strcmp(c->domain, domain) == 0)
            return c;
    if (!create)
        return NULL;
    struct qs_domain_count *c = xcalloc(1, sizeof(*c));
    snprintf(c->domain, sizeof(c->domain), "%s", domain);
    c->next = q->domains;
    q->domains = c;
    return c;
}

static void qs_domain_release(struct queue_sched *q, const char *domain)
{
    for (struct qs_domain_count **pp = &q->domains; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->domain, domain) == 0) {
            if (--(*pp)->active == 0) {
                struct qs_domain_count *c = *pp;
                *pp = c->next;
                free(c);
            }
            return;
        }
}

/* ---- recording (worker) ---- */

static void qs_set_error(struct qs_rcpt *r, enum qs_state st, const char *error, const char *status,
                         const char *diag, const char *remote)
{
    if (r->st == QS_PERM)
        return; /* a recipient's status only gets worse within an attempt */
    r->st = st;
    snprintf(r->error, sizeof(r->error), "%s", error ? error : "");
    snprintf(r->status, sizeof(r->status), "%s", status ? status : (st == QS_PERM ? "5.0.0" : "4.0.0"));
    snprintf(r->diag, sizeof(r->diag), "%s", diag ? diag : "");
    snprintf(r->remote, sizeof(r->remote), "%s", remote ? remote : "");
}

static int qs_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static void qs_record_work(void *arg)
{
    struct qs_delivery *d = arg;
    const struct conf *c = d->q->srv->conf;
    const char *err = NULL;
    sqlite3 *db = pool_worker_db(&err);
    struct dir *dir = pool_worker_dir(&err);
    if (!db || !dir) {
        d->rec_err = err ? err : "no database";
        return; /* rows stay queued: retried at the next pick */
    }
    time_t now = time(NULL);
    struct queue_bounce_rcpt *bounce = xcalloc(d->count, sizeof(*bounce));
    size_t nb = 0;
    unsigned tries = 0;
    if (qs_exec(db, "BEGIN IMMEDIATE") < 0) {
        d->rec_err = sqlite3_errmsg(db);
        free(bounce);
        return;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "UPDATE queue_rcpt SET state = ?2, attempts = ?3, next_try = ?4,"
                           " last_error = ?5 WHERE id = ?1 AND state = 'queued'",
                           -1, &st, NULL) != SQLITE_OK)
        goto dbfail;
    for (size_t i = 0; i < d->count; i++) {
        struct qs_rcpt *r = &d->rcpts[i];
        int attempts = r->attempts + 1;
        const char *state = "queued";
        time_t next = now + c->delivery_retry_interval_s;
        if (r->st == QS_OK) {
            state = "delivered";
            log_info("%s: to=<%s>, relay=%s, status=sent", d->queue_id, r->address,
                     r->remote[0] ? r->remote + 5 : "?");
        } else if (r->st == QS_PERM || (unsigned)attempts > c->delivery_retries) {
            state = "failed";
            bool permanent = r->st == QS_PERM;
            if (!permanent && (unsigned)attempts > tries)
                tries = (unsigned)attempts;
            log_info("%s: to=<%s>, status=bounced (%s)", d->queue_id, r->address,
                     permanent ? "permanent error" : "retries exhausted");
            bounce[nb].address = r->original[0] ? r->original : r->address;
            bounce[nb].error = r->error;
            bounce[nb].status = r->status[0] ? r->status : (permanent ? "5.0.0" : "4.0.0");
            bounce[nb].remote_mta = r->remote[0] ? r->remote : NULL;
            bounce[nb].diagnostic = r->diag[0] ? r->diag : NULL;
            bounce[nb].permanent = permanent;
            nb++;
        } else {
            r->st = QS_TEMP;
            log_info("%s: to=<%s>, status=deferred (attempt %d)", d->queue_id, r->address,
                     attempts);
        }
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, r->id);
        sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, attempts);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)next);
        sqlite3_bind_text(st, 5, r->error, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto dbfail;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (qs_exec(db, "COMMIT") < 0)
        goto dbfail;

    if (nb > 0) {
        struct buf hb;
        buf_init(&hb, 0);
        if (store_blob_header_section(c->data_dir, d->blob_id, 64 * 1024, &hb, &err) < 0)
            buf_reset(&hb);
        buf_append(&hb, "", 0); /* always a (possibly empty) C string */
        const char *hdr = hb.data;
        if (queue_bounce_wanted(d->sender, hdr)) {
            struct buf out;
            buf_init(&out, 0);
            if (queue_bounce_build(c->hostname, d->sender, hdr, bounce, nb, tries, now, &out, &err) <
                    0 ||
                queue_bounce_enqueue(db, dir, c->data_dir, d->sender, &out, &d->bounce_id, &err) < 0)
                log_error("%s: cannot queue a bounce to <%s>: %s", d->queue_id, d->sender,
                          err ? err : "?");
            else
                log_info("%s: bounce sent to <%s>", d->queue_id, d->sender);
            buf_free(&out);
        } else {
            log_info("%s: no bounce for <%s>", d->queue_id, d->sender);
        }
        buf_free(&hb);
    }
    free(bounce);
    if (queue_message_finish(db, c->data_dir, d->message_id, &err) < 0)
        log_error("%s: %s", d->queue_id, err);
    return;
dbfail:
    d->rec_err = sqlite3_errmsg(db);
    sqlite3_finalize(st);
    qs_exec(db, "ROLLBACK");
    free(bounce);
}

static void qs_delivery_free(struct qs_delivery *d)
{
    struct queue_sched *q = d->q;
    for (struct qs_delivery **pp = &q->deliveries; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    idmap_del(&q->busy_messages, (uint64_t)d->message_id);
    qs_domain_release(q, d->domain);
    q->active--;
    free(d->message);
    free(d->rcpts);
    free(d);
}

/* After queue_sched_cancel_all(): drop a delivery whose DNS or worker step just came back. The
 * recipients stay queued in the database and are retried after the restart. */
static bool qs_abandoned(struct qs_delivery *d)
{
    if (!d->q->cancelled)
        return false;
    qs_delivery_free(d);
    return true;
}

static void qs_record_done(void *arg)
{
    struct qs_delivery *d = arg;
    struct queue_sched *q = d->q;
    if (d->rec_err)
        log_error("%s: cannot record delivery results: %s", d->queue_id, d->rec_err);
    if (d->bounce_id)
        server_deliver_message(q->srv, d->bounce_id);
    qs_delivery_free(d);
    if (q->cancelled)
        return;
    server_delivery_gone(q->srv);
    qs_pick(q);
}

static void qs_record(struct qs_delivery *d)
{
    pool_submit(d->q->srv->pool, d, qs_record_work, qs_record_done);
}

/* ---- talking to servers (loop) ---- */

static void qs_try_next(struct qs_delivery *d);

static size_t qs_pending(const struct qs_delivery *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->count; i++)
        n += d->rcpts[i].st == QS_PENDING || d->rcpts[i].st == QS_TEMP;
    return n;
}

static enum smtp_client_security qs_security(const struct qs_delivery *d)
{
    const struct conf *c = d->q->srv->conf;
    const char *s;
    if (d->has_route) {
        switch (d->route.security) {
        case DIR_SECURITY_STARTTLS:
            return SMTP_CLIENT_TLS_REQUIRED;
        case DIR_SECURITY_TLS:
            return SMTP_CLIENT_TLS_IMPLICIT;
        default:
            return SMTP_CLIENT_TLS_OPPORTUNISTIC;
        }
    }
    s = c->delivery_relay_host[0] ? c->delivery_relay_security : c->delivery_security;
    if (str_ieq(s, "none"))
        return SMTP_CLIENT_TLS_NONE;
    if (str_ieq(s, "required") || str_ieq(s, "starttls"))
        return SMTP_CLIENT_TLS_REQUIRED;
    if (str_ieq(s, "tls"))
        return SMTP_CLIENT_TLS_IMPLICIT;
    return SMTP_CLIENT_TLS_OPPORTUNISTIC;
}

static void qs_client_done(void *ctx, const struct smtp_client_result *res)
{
    struct qs_delivery *d = ctx;
    d->client = NULL;
    const struct queue_target_addr *a = &d->target.addrs[d->addr_index];
    char ip[IPADDR_STRLEN];
    ipaddr_format(&a->ip, ip);
    char remote[300];
    snprintf(remote, sizeof(remote), "dns; %s", a->host[0] ? a->host : ip);
    if (res->tls_failed && !d->plain_retry && qs_security(d) == SMTP_CLIENT_TLS_OPPORTUNISTIC) {
        log_info("%s: TLS with %s failed, trying it once more without TLS", d->queue_id, ip);
        d->plain_retry = true;
        qs_try_next(d);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < d->count; i++) {
        struct qs_rcpt *r = &d->rcpts[i];
        if (r->st != QS_PENDING && r->st != QS_TEMP)
            continue;
        const struct smtp_client_rcpt_result *rr = &res->rcpts[k++];
        char block[2048], diag[1100];
        if (rr->ok) {
            r->st = QS_OK;
            snprintf(r->remote, sizeof(r->remote), "%s", remote);
        } else if (rr->code > 0) {
            queue_bounce_error_remote(ip, rr->command[0] ? rr->command : res->last_command,
                                      rr->text, block, sizeof(block));
            snprintf(diag, sizeof(diag), "smtp; %s", rr->text);
            char status[16];
            queue_bounce_status_from_reply(rr->text, rr->permanent, status, sizeof(status));
            qs_set_error(r, rr->permanent ? QS_PERM : QS_TEMP, block, status, diag, remote);
        } else {
            queue_bounce_error_connection(res->error[0] ? res->error : "unknown error", block,
                                          sizeof(block));
            qs_set_error(r, QS_TEMP, block, "4.4.1", NULL, remote);
        }
    }
    d->plain_retry = false;
    d->addr_index++;
    qs_try_next(d);
}

static void qs_try_next(struct qs_delivery *d)
{
    const struct conf *c = d->q->srv->conf;
    while (qs_pending(d) > 0 && d->addr_index < d->target.count) {
        const struct queue_target_addr *a = &d->target.addrs[d->addr_index];
        char ip[IPADDR_STRLEN];
        ipaddr_format(&a->ip, ip);
        if (queue_target_is_self(c, &a->ip, a->port)) {
            char block[2048];
            queue_bounce_error_loop(ip, (unsigned)a->port, block, sizeof(block));
            log_warn("%s: not connecting to %s port %d: that is this server", d->queue_id, ip,
                     a->port);
            for (size_t i = 0; i < d->count; i++)
                if (d->rcpts[i].st == QS_PENDING || d->rcpts[i].st == QS_TEMP)
                    qs_set_error(&d->rcpts[i], QS_TEMP, block, "4.4.6", NULL, NULL);
            d->addr_index++;
            continue;
        }
        const char **rcpts = xcalloc(d->count, sizeof(char *));
        size_t n = 0;
        for (size_t i = 0; i < d->count; i++)
            if (d->rcpts[i].st == QS_PENDING || d->rcpts[i].st == QS_TEMP)
                rcpts[n++] = d->rcpts[i].address;
        const char *user = NULL, *pass = NULL;
        if (d->has_route && d->route.auth_user[0]) {
            user = d->route.auth_user;
            pass = d->route.auth_password;
        } else if (!d->has_route && c->delivery_relay_host[0] && c->delivery_relay_user[0]) {
            user = c->delivery_relay_user;
            pass = c->delivery_relay_password;
        }
        struct smtp_client_request req = {
            .ip = a->ip,
            .port = a->port,
            .host_name = a->host,
            .helo_name = c->hostname,
            .security = d->plain_retry ? SMTP_CLIENT_TLS_NONE : qs_security(d),
            .auth_user = user,
            .auth_password = pass,
            .sender = d->sender,
            .rcpts = rcpts,
            .rcpts_count = n,
            .message = d->message,
            .message_len = d->message_len,
            .timeout_connect_s = c->delivery_timeout_s,
            .timeout_greeting_s = c->delivery_timeout_s,
            .timeout_command_s = c->delivery_timeout_s,
            .timeout_data_block_s = c->delivery_timeout_s,
            .timeout_data_end_s = c->delivery_timeout_s,
            .log_tag = d->queue_id,
        };
        log_info("%s: delivering to %zu recipient(s) at %s port %d (%s)", d->queue_id, n, ip,
                 a->port, a->host);
        d->client =
            smtp_client_send(d->q->srv->base, d->q->srv->tls_client, &req, qs_client_done, d);
        free(rcpts); /* the client copies what it needs */
        return;
    }
    qs_record(d);
}

static void qs_target_done(void *ctx, const struct queue_target *t)
{
    struct qs_delivery *d = ctx;
    if (qs_abandoned(d))
        return;
    d->target = *t;
    if (t->status != QUEUE_TARGET_OK || t->count == 0) {
        char block[2048];
        queue_bounce_error_text(t->error[0] ? t->error : "No mail servers appear to exists for the recipient's address.",
                                block, sizeof(block));
        bool perm = t->status == QUEUE_TARGET_PERMFAIL;
        for (size_t i = 0; i < d->count; i++)
            qs_set_error(&d->rcpts[i], perm ? QS_PERM : QS_TEMP, block, perm ? "5.1.2" : "4.4.3",
                         NULL, NULL);
        log_info("%s: %s: %s", d->queue_id, d->domain, t->error);
        qs_record(d);
        return;
    }
    qs_try_next(d);
}

/* ---- preparing (worker) ---- */

static void qs_prep_work(void *arg)
{
    struct qs_delivery *d = arg;
    const struct conf *c = d->q->srv->conf;
    const char *err = NULL;
    if (queue_blob_read_all(c->data_dir, d->blob_id, &d->message, &d->message_len, &err) < 0) {
        log_error("%s: %s", d->queue_id, err);
        d->prep_err = "the message file is missing or unreadable";
        return;
    }
    if (d->route_id) {
        struct dir *dir = pool_worker_dir(&err);
        d->has_route = dir && dir_route_find(dir, d->domain, &d->route) == DIR_OK;
    }
}

static void qs_prep_done(void *arg)
{
    struct qs_delivery *d = arg;
    if (qs_abandoned(d))
        return;
    if (d->prep_err) {
        char block[600];
        queue_bounce_error_text(d->prep_err, block, sizeof(block));
        for (size_t i = 0; i < d->count; i++)
            qs_set_error(&d->rcpts[i], QS_TEMP, block, "4.3.0", NULL, NULL);
        log_error("%s: %s", d->queue_id, d->prep_err);
        qs_record(d);
        return;
    }
    const struct conf *c = d->q->srv->conf;
    struct queue_target_request req = {
        .domain = d->domain,
        .route = d->has_route ? &d->route : NULL,
        .relay_host = d->has_route ? "" : c->delivery_relay_host,
        .relay_port = (int)c->delivery_relay_port,
    };
    queue_target_resolve(d->q->srv->dns, &req, qs_target_done, d);
}

/* ---- picking ---- */

struct qs_row {
    int64_t rcpt_id, message_id, route_id;
    int attempts;
    char address[ADDR_MAX], original[ADDR_MAX], sender[ADDR_MAX];
    char queue_id[QUEUE_ID_MAX], blob_id[QUEUE_ID_MAX * 2];
};

struct qs_pick_job {
    struct queue_sched *q;
    struct qs_row *rows;
    size_t count;
    const char *err;
};

static void qs_col(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, size, "%s", t ? (const char *)t : "");
}

static void qs_pick_work(void *arg)
{
    struct qs_pick_job *j = arg;
    sqlite3 *db = pool_worker_db(&j->err);
    if (!db)
        return;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT r.id, r.message_id, COALESCE(r.route_id, 0), r.attempts,"
                           " r.address, r.original, m.sender, m.queue_id, m.blob_id"
                           " FROM queue_rcpt r JOIN message m ON m.id = r.message_id"
                           " WHERE r.state = 'queued' AND r.kind = 'remote' AND r.next_try <= ?1"
                           " ORDER BY r.next_try, r.id LIMIT ?2",
                           -1, &st, NULL) != SQLITE_OK) {
        j->err = sqlite3_errmsg(db);
        return;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
    sqlite3_bind_int(st, 2, QS_PICK_LIMIT);
    j->rows = xcalloc(QS_PICK_LIMIT, sizeof(*j->rows));
    while (j->count < QS_PICK_LIMIT && sqlite3_step(st) == SQLITE_ROW) {
        struct qs_row *r = &j->rows[j->count++];
        r->rcpt_id = sqlite3_column_int64(st, 0);
        r->message_id = sqlite3_column_int64(st, 1);
        r->route_id = sqlite3_column_int64(st, 2);
        r->attempts = sqlite3_column_int(st, 3);
        qs_col(r->address, sizeof(r->address), st, 4);
        qs_col(r->original, sizeof(r->original), st, 5);
        qs_col(r->sender, sizeof(r->sender), st, 6);
        qs_col(r->queue_id, sizeof(r->queue_id), st, 7);
        qs_col(r->blob_id, sizeof(r->blob_id), st, 8);
    }
    sqlite3_finalize(st);
}

static void qs_start(struct queue_sched *q, struct qs_delivery *d)
{
    q->active++;
    qs_domain(q, d->domain, true)->active++;
    d->next = q->deliveries;
    q->deliveries = d;
    idmap_put(&q->busy_messages, (uint64_t)d->message_id, (void *)1);
    pool_submit(q->srv->pool, d, qs_prep_work, qs_prep_done);
}

static void qs_pick_done(void *arg)
{
    struct qs_pick_job *j = arg;
    struct queue_sched *q = j->q;
    q->picking = false;
    if (q->cancelled)
        j->count = 0;
    if (j->err)
        log_error("delivery: cannot read the queue: %s", j->err);
    unsigned max = q->srv->conf->delivery_max_connections ? q->srv->conf->delivery_max_connections
                                                          : 20;
    bool *taken = xcalloc(j->count ? j->count : 1, sizeof(bool));
    for (size_t i = 0; i < j->count && q->active < max && !q->stopping; i++) {
        struct qs_row *r = &j->rows[i];
        if (taken[i] || idmap_get(&q->busy_messages, (uint64_t)r->message_id))
            continue;
        char dom[256];
        snprintf(dom, sizeof(dom), "%s", addr_domain(r->address));
        str_lower(dom);
        const struct qs_domain_count *dc = qs_domain(q, dom, false);
        if (dc && dc->active >= q->srv->conf->delivery_max_per_domain)
            continue; /* this domain has enough connections from us; later */
        struct qs_delivery *d = xcalloc(1, sizeof(*d));
        d->q = q;
        d->message_id = r->message_id;
        d->route_id = r->route_id;
        snprintf(d->queue_id, sizeof(d->queue_id), "%s", r->queue_id);
        snprintf(d->blob_id, sizeof(d->blob_id), "%s", r->blob_id);
        snprintf(d->sender, sizeof(d->sender), "%s", r->sender);
        snprintf(d->domain, sizeof(d->domain), "%s", addr_domain(r->address));
        str_lower(d->domain);
        d->rcpts = xcalloc(QS_BATCH_MAX, sizeof(*d->rcpts));
        for (size_t k = i; k < j->count && d->count < QS_BATCH_MAX; k++) {
            struct qs_row *o = &j->rows[k];
            if (taken[k] || o->message_id != r->message_id || o->route_id != r->route_id ||
                !str_ieq(addr_domain(o->address), d->domain))
                continue;
            taken[k] = true;
            struct qs_rcpt *x = &d->rcpts[d->count++];
            x->id = o->rcpt_id;
            x->attempts = o->attempts;
            snprintf(x->address, sizeof(x->address), "%s", o->address);
            snprintf(x->original, sizeof(x->original), "%s", o->original);
        }
        qs_start(q, d);
    }
    bool again = q->again;
    q->again = false;
    free(taken);
    free(j->rows);
    free(j);
    if (again)
        qs_pick(q);
}

static void qs_pick(struct queue_sched *q)
{
    unsigned max = q->srv->conf->delivery_max_connections ? q->srv->conf->delivery_max_connections
                                                          : 20;
    if (q->stopping || q->active >= max)
        return;
    if (q->picking) {
        q->again = true;
        return;
    }
    q->picking = true;
    struct qs_pick_job *j = xcalloc(1, sizeof(*j));
    j->q = q;
    pool_submit(q->srv->pool, j, qs_pick_work, qs_pick_done);
}

static void qs_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    qs_pick(arg);
}

struct queue_sched *queue_sched_new(struct server *srv)
{
    struct queue_sched *q = xcalloc(1, sizeof(*q));
    q->srv = srv;
    idmap_init(&q->busy_messages);
    q->timer = event_new(srv->base, -1, EV_PERSIST, qs_tick, q);
    struct timeval tv = {QS_TICK_S, 0};
    event_add(q->timer, &tv);
    return q;
}

void queue_sched_kick(struct queue_sched *q)
{
    if (q)
        qs_pick(q);
}

void queue_sched_stop(struct queue_sched *q)
{
    if (!q)
        return;
    q->stopping = true;
    event_del(q->timer);
}

void queue_sched_cancel_all(struct queue_sched *q)
{
    if (!q)
        return;
    q->stopping = true;
    q->cancelled = true;
    struct qs_delivery *d = q->deliveries;
    while (d) {
        struct qs_delivery *next = d->next;
        if (d->client) {
            smtp_client_cancel(&d->client); /* never calls back */
            qs_delivery_free(d);
        }
        d = next;
    }
}

unsigned queue_sched_active(const struct queue_sched *q)
{
    return q ? q->active : 0;
}

void queue_sched_free(struct queue_sched **qp)
{
    struct queue_sched *q = *qp;
    if (!q)
        return;
    event_free(q->timer);
    idmap_free(&q->busy_messages);
    while (q->domains) {
        struct qs_domain_count *c = q->domains;
        q->domains = c->next;
        free(c);
    }
    free(q);
    *qp = NULL;
}
