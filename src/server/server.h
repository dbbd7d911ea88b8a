/* server: the running `gannet serve` process — configuration, event loop, worker pool, listeners,
 * the table of live sessions (by id), signals and shutdown. Protocol sessions reach shared state
 * through this struct; there is exactly one per process (server_get()). */
#ifndef GANNET_SERVER_SERVER_H
#define GANNET_SERVER_SERVER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "lib/idmap.h"

struct event_base;
struct pool;
struct dns;
struct tls_server;
struct tls_client;
struct queue_sched;
struct queue_committer;

struct server {
    struct conf *conf;
    struct event_base *base;
    struct pool *pool;
    struct dns *dns;
    struct tls_server *tls; /* NULL when no listener uses TLS */
    struct tls_client *tls_client; /* outbound STARTTLS / TLS */
    struct queue_sched *sched;     /* outbound delivery */
    struct queue_committer *committer; /* group commit of accepted messages */
    struct dir *loop_dir; /* cache-only directory for the loop thread (dir_cache.h); NULL = none */
    struct idmap sessions; /* id -> struct smtp_session* */
    size_t sessions_count;
    uint64_t next_session_id;
    bool shutting_down;
    struct server_listener *listeners;
    size_t listeners_count;
    struct event *shutdown_timer;
};

struct server *server_get(void);
uint64_t server_session_id_new(struct server *s);
/* A session ended: forget it; during shutdown, the last one ends the loop. */
void server_session_gone(struct server *s, uint64_t id);
/* An outbound delivery finished: during shutdown, the last one ends the loop. */
void server_delivery_gone(struct server *s);
/* Ask the local-delivery worker to deliver this committed message now. */
void server_deliver_message(struct server *s, int64_t message_id);

#endif
