/* server: `gannet serve` — load the configuration, recover the spool, open listeners, run the
 * event loop with the worker pool, deliver committed messages, and shut down cleanly on
 * SIGTERM/SIGINT (sessions get 421, jobs in flight such as spool commits finish first).
 *
 * Listeners are libevent evconnlisteners; when accept() fails for lack of file descriptors the
 * listener is paused for a second (logged once) instead of spinning. */
#include "server/server.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "dir/dir.h"
#include "dir/dir_cache.h"
#include "dir/dir_db.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "net/dns.h"
#include "net/pool.h"
#include "net/tls.h"
#include "net/tls_client.h"
#include "queue/queue_commit.h"
#include "queue/queue_sched.h"
#include "policy/policy_autoban.h"
#include "queue/queue.h"
#include "smtp/smtp.h"

#define SERVER_WORKERS 4
#define SERVER_DIR_CACHE_ENTRIES 20000 /* the directory cache is emptied when it holds this many */
#define SERVER_DIR_CACHE_TTL 60        /* seconds: how stale an edit made behind gannet's back gets */
#define SERVER_SHUTDOWN_GRACE 10 /* seconds before remaining sessions are dropped */

struct server_listener {
    struct server *srv;
    const struct conf_listener *conf;
    struct evconnlistener *lev;
    struct event *resume_timer;
    bool logged_fd_limit;
};

static struct server *the_server;

struct server *server_get(void)
{
    return the_server;
}

uint64_t server_session_id_new(struct server *s)
{
    uint64_t id = ++s->next_session_id;
    if (id == 0)
        id = ++s->next_session_id;
    return id;
}

static void server_maybe_exit(struct server *s)
{
    if (s->shutting_down && s->sessions_count == 0 && queue_sched_active(s->sched) == 0)
        event_base_loopexit(s->base, NULL);
}

void server_session_gone(struct server *s, uint64_t id)
{
    idmap_del(&s->sessions, id);
    s->sessions_count--;
    server_maybe_exit(s);
}

void server_delivery_gone(struct server *s)
{
    server_maybe_exit(s);
}

/* ---- local delivery jobs ---- */

struct server_deliver_job {
    int64_t message_id; /* 0 = everything pending (start-up) */
    const char *data_dir;
    bool add_delivered_to;
};

static void server_deliver_work(void *arg)
{
    struct server_deliver_job *j = arg;
    const char *err = NULL;
    sqlite3 *db = pool_worker_db(&err);
    struct dir *d = pool_worker_dir(&err);
    if (!db || !d) {
        log_error("delivery: %s", err ? err : "no database");
        return;
    }
    struct queue_deliver_env env = {.data_dir = j->data_dir,
                                    .hostname = server_get()->conf->hostname,
                                    .add_delivered_to = j->add_delivered_to};
    if (j->message_id) {
        if (queue_deliver_message(db, d, &env, j->message_id, &err) < 0)
            log_error("delivery of message %lld: %s", (long long)j->message_id, err);
    } else {
        unsigned n = 0;
        if (queue_deliver_pending(db, d, &env, &n, &err) < 0)
            log_error("delivery of pending messages: %s", err);
        else if (n)
            log_info("delivered %u pending message(s)", n);
    }
}

static void server_deliver_done(void *arg)
{
    free(arg);
    /* New remote recipients (the message's own, or forwards made by local delivery). */
    if (the_server && the_server->sched)
        queue_sched_kick(the_server->sched);
}

void server_deliver_message(struct server *s, int64_t message_id)
{
    struct server_deliver_job *j = xcalloc(1, sizeof(*j));
    j->message_id = message_id;
    j->data_dir = s->conf->data_dir;
    j->add_delivered_to = s->conf->add_delivered_to;
    pool_submit(s->pool, j, server_deliver_work, server_deliver_done);
}

/* ---- housekeeping: once a minute, expired auto-ban ranges and old login failures ---- */

static void server_prune_work(void *arg)
{
    const struct conf *c = arg;
    struct policy_autoban_conf ab = {c->autoban_enabled, c->autoban_max_attempts,
                                     c->autoban_window_s, c->autoban_ban_s};
    const char *err = NULL;
    sqlite3 *db = pool_worker_db(&err);
    if (db && policy_autoban_prune(db, &ab, time(NULL), &err) < 0)
        log_warn("auto-ban housekeeping: %s", err);
}

static void server_prune_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    if (!s->shutting_down)
        pool_submit(s->pool, s->conf, server_prune_work, NULL);
}

/* ---- listeners ---- */

static void server_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                             int salen, void *arg)
{
    (void)lev;
    (void)sa;
    (void)salen;
    struct server_listener *l = arg;
    if (l->srv->shutting_down) {
        close(fd);
        return;
    }
    l->logged_fd_limit = false;
    switch (l->conf->protocol) {
    case CONF_PROTO_SMTP:
        smtp_session_start(l->srv, l->conf, fd);
        break;
    default:
        close(fd);
        break;
    }
}

static void server_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server_listener *l = arg;
    if (!l->srv->shutting_down)
        evconnlistener_enable(l->lev);
}

static void server_accept_error_cb(struct evconnlistener *lev, void *arg)
{
    struct server_listener *l = arg;
    int err = EVUTIL_SOCKET_ERROR();
    if (!l->logged_fd_limit)
        log_warn("listener %s: accept: %s; pausing accepts for 1s", l->conf->name,
                 evutil_socket_error_to_string(err));
    l->logged_fd_limit = true;
    evconnlistener_disable(lev);
    struct timeval tv = {1, 0};
    event_add(l->resume_timer, &tv);
}

static int server_listen(struct server *s, struct server_listener *l, const char **err_r)
{
    static __thread char msg[512];
    const struct conf_listener *cl = l->conf;
    const char *host = cl->host;
    bool any = !host || !*host || strcmp(host, "*") == 0;
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = any ? AF_INET6 : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV | (any ? 0 : AI_NUMERICHOST);
    char port[16];
    snprintf(port, sizeof(port), "%d", cl->port);
    const char *node = any ? NULL : (strcmp(host, "localhost") == 0 ? "127.0.0.1" : host);
    int rc = getaddrinfo(node, port, &hints, &ai);
    if (rc != 0) {
        snprintf(msg, sizeof(msg), "listener %s: %s: %s", cl->name, cl->address,
                 gai_strerror(rc));
        *err_r = msg;
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, zero = 0;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, any ? &zero : &one, sizeof(int));
    }
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 511) < 0) {
        snprintf(msg, sizeof(msg), "listener %s: cannot listen on %s: %s", cl->name, cl->address,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        *err_r = msg;
        return -1;
    }
    freeaddrinfo(ai);
    l->srv = s;
    l->lev = evconnlistener_new(s->base, server_accept_cb, l, LEV_OPT_CLOSE_ON_FREE, 0, fd);
    /* backlog 0: the socket already listens with our backlog (-1 would reset it to 128) */
    evconnlistener_set_error_cb(l->lev, server_accept_error_cb);
    l->resume_timer = event_new(s->base, -1, 0, server_resume_cb, l);
    log_info("listening on %s (%s, %s)", cl->address,
             cl->protocol == CONF_PROTO_SMTP ? "smtp" : "not served yet", cl->name);
    return 0;
}

static void server_listeners_close(struct server *s)
{
    for (size_t i = 0; i < s->listeners_count; i++) {
        struct server_listener *l = &s->listeners[i];
        if (l->lev)
            evconnlistener_free(l->lev);
        if (l->resume_timer)
            event_free(l->resume_timer);
        l->lev = NULL;
        l->resume_timer = NULL;
    }
}

/* ---- signals and shutdown ---- */

static void server_force_exit_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    log_warn("shutdown: %zu session(s) still open after %ds, dropping them", s->sessions_count,
             SERVER_SHUTDOWN_GRACE);
    event_base_loopexit(s->base, NULL);
}

static void server_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct server *s = arg;
    if (sig == SIGHUP) {
        if (s->tls) {
            const char *err = NULL;
            if (tls_server_reload(s->tls, s->conf->certificate, s->conf->private_key, &err) < 0)
                log_error("SIGHUP: TLS certificate not reloaded, the old one stays: %s", err);
            else
                log_info("SIGHUP: TLS certificate reloaded from %s", s->conf->certificate);
        }
        dir_cache_note_change(); /* directory edits made behind gannet's back */
        log_info("SIGHUP: directory cache emptied; other configuration changes need a restart");
        return;
    }
    if (s->shutting_down)
        return;
    log_info("%s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    s->shutting_down = true;
    server_listeners_close(s);
    smtp_sessions_shutdown(s);
    queue_sched_stop(s->sched);
    struct timeval tv = {SERVER_SHUTDOWN_GRACE, 0};
    s->shutdown_timer = evtimer_new(s->base, server_force_exit_cb, s);
    evtimer_add(s->shutdown_timer, &tv);
    server_maybe_exit(s);
}

static int server_drop_privileges(const char *user, const char **err_r)
{
    if (!user || !*user)
        return 0;
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        *err_r = "[server] user: no such user";
        return -1;
    }
    if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
        *err_r = "cannot drop privileges to [server] user";
        return -1;
    }
    return 0;
}

static int server_prepare_storage(const struct conf *c)
{
    const char *err = NULL;
    if (queue_dirs_create(c->data_dir, &err) < 0) {
        log_error("%s", err);
        return -1;
    }
    sqlite3 *db = dir_db_open(c->database, false, &err);
    if (!db) {
        log_error("%s (run `gannet init` first)", err);
        return -1;
    }
    if (dir_db_migrate(db, &err) < 0) {
        log_error("database: %s", err);
        dir_db_close(&db);
        return -1;
    }
    unsigned removed = 0;
    if (queue_recover(db, c->data_dir, &removed) < 0)
        log_warn("spool recovery incomplete");
    else if (removed)
        log_info("removed %u partial spool file(s)", removed);
    dir_db_close(&db);
    return 0;
}

int server_main(const char *config_path, int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: gannet [-c CONFIG] serve\n\n"
               "Run the mail server in the foreground, logging to stderr.\n"
               "SIGTERM/SIGINT shut it down cleanly.\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "gannet serve: unexpected argument '%s'\n", argv[1]);
        return CLI_EX_USAGE;
    }
    char *errors = NULL;
    struct conf *conf = conf_load(config_path, &errors);
    if (!conf) {
        fputs(errors ? errors : "configuration error\n", stderr);
        free(errors);
        return CLI_EX_CONFIG;
    }
    enum log_level lvl = (enum log_level)conf_log_level(conf);
    log_init("gannet", lvl);
    signal(SIGPIPE, SIG_IGN);
    /* Every connection is a descriptor: use all the process may have (typically 1024 -> 1M). */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    if (server_prepare_storage(conf) < 0) {
        conf_free(&conf);
        return 1;
    }

    struct server srv = {0};
    the_server = &srv;
    srv.conf = conf;
    srv.base = event_base_new();
    idmap_init(&srv.sessions);
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (uint32_t)time(NULL);
    srv.next_session_id = (r & 0xFFFFF) << 4; /* session tags differ between runs */

    int rc = 0;
    struct event *prune = NULL;
    struct dir_cache_store *dcache = NULL;
    bool need_tls = false;
    for (size_t i = 0; i < conf->listeners_count; i++)
        need_tls |= conf->listeners[i].security != CONF_SECURITY_NONE;
    if (need_tls) {
        const char *terr = NULL;
        srv.tls = tls_server_new(conf->certificate, conf->private_key, &terr);
        if (!srv.tls) {
            log_error("TLS: %s (run `gannet init` to create a self-signed certificate)", terr);
            rc = 1;
        }
    }
    srv.listeners = xcalloc(conf->listeners_count ? conf->listeners_count : 1,
                            sizeof(*srv.listeners));
    srv.listeners_count = conf->listeners_count;
    for (size_t i = 0; rc == 0 && i < conf->listeners_count; i++) {
        srv.listeners[i].conf = &conf->listeners[i];
        if (conf->listeners[i].protocol != CONF_PROTO_SMTP) {
            log_warn("listener %s: only SMTP is served in this version; ignored",
                     conf->listeners[i].name);
            continue;
        }
        const char *err = NULL;
        if (server_listen(&srv, &srv.listeners[i], &err) < 0) {
            log_error("%s", err);
            rc = 1;
        }
    }
    if (conf->listeners_count == 0)
        log_warn("no [listener:NAME] sections in %s: nothing to serve", config_path);
    const char *perr = NULL;
    if (rc == 0 && server_drop_privileges(conf->user, &perr) < 0) {
        log_error("%s", perr);
        rc = 1;
    }
    struct event *sigs[3] = {evsignal_new(srv.base, SIGTERM, server_signal_cb, &srv),
                             evsignal_new(srv.base, SIGINT, server_signal_cb, &srv),
                             evsignal_new(srv.base, SIGHUP, server_signal_cb, &srv)};
    if (rc == 0) {
        const char *derr = NULL;
        srv.dns = dns_new(srv.base, conf->nameservers, &derr);
        if (!srv.dns) {
            log_error("DNS: %s", derr);
            rc = 1;
        }
    }
    if (rc == 0) {
        for (int i = 0; i < 3; i++)
            evsignal_add(sigs[i], NULL);
        if (conf->directory_cache) {
            char gen[PATH_MAX];
            const char *derr = NULL;
            dir_cache_gen_path(conf->data_dir, gen);
            dcache = dir_cache_store_new(gen, SERVER_DIR_CACHE_ENTRIES, SERVER_DIR_CACHE_TTL, &derr);
            if (!dcache)
                log_warn("directory cache off: %s", derr);
            dir_cache_global_set(dcache);
            if (dcache)
                srv.loop_dir = dir_cache_new(dcache, NULL);
        }
        srv.pool = pool_new(srv.base, SERVER_WORKERS, conf->database);
        struct queue_deliver_env denv = {.data_dir = conf->data_dir,
                                         .hostname = conf->hostname,
                                         .add_delivered_to = conf->add_delivered_to};
        srv.committer = queue_committer_new(srv.pool, &denv);
        const char *cerr = NULL;
        srv.tls_client = tls_client_new(conf->delivery_ca_file, true, &cerr);
        if (!srv.tls_client)
            log_warn("outbound TLS unavailable: %s", cerr);
        srv.sched = queue_sched_new(&srv);
        prune = event_new(srv.base, -1, EV_PERSIST, server_prune_cb, &srv);
        struct timeval minute = {60, 0};
        event_add(prune, &minute);
        server_deliver_message(&srv, 0); /* whatever a previous run left undelivered */
        log_info("gannet started (hostname %s, data %s)", conf->hostname, conf->data_dir);
        event_base_dispatch(srv.base);
        log_info("gannet stopped");
    }
    server_listeners_close(&srv);
    queue_sched_cancel_all(srv.sched); /* deliveries the grace period did not see finish */
    pool_free(&srv.pool);
    dir_close(&srv.loop_dir);
    dir_cache_global_set(NULL);
    dir_cache_store_free(&dcache);
    smtp_sessions_free_all(&srv);
    dns_free(&srv.dns); /* pending lookups call back (abandoned deliveries free themselves) */
    queue_sched_free(&srv.sched);
    queue_committer_free(&srv.committer);
    tls_client_free(&srv.tls_client);
    tls_server_free(&srv.tls);
    for (int i = 0; i < 3; i++)
        event_free(sigs[i]);
    if (srv.shutdown_timer)
        event_free(srv.shutdown_timer);
    if (prune)
        event_free(prune);
    idmap_free(&srv.sessions);
    free(srv.listeners);
    event_base_free(srv.base);
    the_server = NULL;
    conf_free(&conf);
    return rc;
}
