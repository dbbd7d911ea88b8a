/* dir: the directory — domains, domain aliases, accounts, aliases, distribution lists, routes and
 * IP ranges — behind a small table of functions, so the server, the CLI and the tests share one
 * API with two backends: SQLite (dir_sqlite.c, the real one) and memory (dir_mem.c, the double
 * unit tests resolve recipients against).
 *
 * Every lookup returns one of four outcomes (conventions.md §6): DIR_OK, DIR_NOTFOUND,
 * DIR_TEMPFAIL (database busy/unreadable: the caller answers 4xx, never "Unknown user"),
 * DIR_PERMFAIL. All names are compared case-insensitively. A struct dir handle is used by one
 * thread at a time (each worker thread owns its own SQLite handle). */
#ifndef GANNET_DIR_DIR_H
#define GANNET_DIR_DIR_H
#include <stdbool.h>
#include <stdint.h>

#include "lib/ipaddr.h"

#define DIR_ADDR_MAX 256 /* addresses are at most 254 chars (+NUL) */
#define DIR_NAME_MAX 256

enum dir_result { DIR_OK = 0, DIR_NOTFOUND, DIR_TEMPFAIL, DIR_PERMFAIL };

struct dir_domain {
    int64_t id;
    char name[DIR_NAME_MAX];
    bool enabled;
    unsigned max_message_kb; /* 0 = no per-domain limit */
    char catch_all[DIR_ADDR_MAX]; /* "" = none */
    char plus_char;               /* '\0' = plus addressing off */
};

struct dir_account {
    int64_t id;
    int64_t domain_id;
    char address[DIR_ADDR_MAX];
    char password_hash[256]; /* crypt(3) string; "" = cannot log in */
    bool enabled;
    uint64_t quota_mb;        /* 0 = unlimited */
    char forward[DIR_ADDR_MAX]; /* "" = no forwarding */
    bool keep_copy;           /* with forward: also store in this account */
};

struct dir_alias {
    int64_t id;
    char address[DIR_ADDR_MAX];
    char target[DIR_ADDR_MAX];
    bool enabled;
};

enum dir_list_mode { DIR_LIST_PUBLIC = 0, DIR_LIST_MEMBERS = 1, DIR_LIST_ANNOUNCE = 2 };

struct dir_list {
    int64_t id;
    char address[DIR_ADDR_MAX];
    bool enabled;
    enum dir_list_mode mode;
    char announcer[DIR_ADDR_MAX];
    bool require_auth;
};

enum dir_security { DIR_SECURITY_NONE = 0, DIR_SECURITY_STARTTLS, DIR_SECURITY_TLS };

struct dir_route {
    int64_t id;
    char pattern[DIR_NAME_MAX]; /* domain with '*' and '?' wildcards */
    char host[DIR_NAME_MAX];
    unsigned port; /* default 25 */
    bool all_addresses; /* false: only the addresses of the route's address list */
    bool local_recipient; /* treat recipient as local domain */
    bool local_sender;    /* treat sender as local domain */
    char auth_user[DIR_ADDR_MAX]; /* "" = no AUTH to the route host */
    char auth_password[256];
    enum dir_security security;
};

/* IP-range option flags (hmailserver-behaviour.md §2.1 bit values, kept for familiarity). */
enum {
    DIR_IPR_SMTP = 1,
    DIR_IPR_POP3 = 2,
    DIR_IPR_IMAP = 8,
    DIR_IPR_DELIVER_LL = 64,
    DIR_IPR_DELIVER_LE = 128,
    DIR_IPR_DELIVER_EL = 256,
    DIR_IPR_DELIVER_EE = 512,
    DIR_IPR_ANTISPAM = 1024,
    DIR_IPR_AUTH_LL = 8192,
    DIR_IPR_AUTH_LE = 16384,
    DIR_IPR_AUTH_EL = 32768,
    DIR_IPR_AUTH_EE = 65536,
    DIR_IPR_TLS_FOR_AUTH = 131072,
};

struct dir_iprange {
    int64_t id;
    char name[DIR_NAME_MAX];
    struct ipaddr from, to; /* same family */
    int priority;           /* highest priority containing the address wins */
    uint32_t flags;         /* DIR_IPR_* */
    int64_t expires;        /* unix time; 0 = never */
};

struct dir;

/* The backend table. Each returns DIR_OK with *out filled, or DIR_NOTFOUND/TEMPFAIL/PERMFAIL. */
struct dir_ops {
    /* Local domain by exact name (not via domain aliases). */
    enum dir_result (*domain_get)(struct dir *d, const char *name, struct dir_domain *out);
    /* Domain alias name -> primary domain name (out, DIR_NAME_MAX bytes). */
    enum dir_result (*domain_alias_get)(struct dir *d, const char *alias, char *domain_out);
    enum dir_result (*account_get)(struct dir *d, const char *address, struct dir_account *out);
    enum dir_result (*alias_get)(struct dir *d, const char *address, struct dir_alias *out);
    enum dir_result (*list_get)(struct dir *d, const char *address, struct dir_list *out);
    /* Calls fn for each member address of the list, in insertion order. */
    enum dir_result (*list_members)(struct dir *d, int64_t list_id,
                                    void (*fn)(void *ctx, const char *address), void *ctx);
    /* First route (in creation order) whose pattern matches domain. */
    enum dir_result (*route_find)(struct dir *d, const char *domain, struct dir_route *out);
    /* DIR_OK when address is on the route's address list, DIR_NOTFOUND when not. */
    enum dir_result (*route_has_address)(struct dir *d, int64_t route_id, const char *address);
    /* The unexpired range of the highest priority containing ip (same family). */
    enum dir_result (*iprange_match)(struct dir *d, const struct ipaddr *ip,
                                     struct dir_iprange *out);
    void (*close)(struct dir *d);
};

struct dir {
    const struct dir_ops *ops;
};

/* Convenience wrappers: dir_domain_get(d, ...) == d->ops->domain_get(d, ...). */
enum dir_result dir_domain_get(struct dir *d, const char *name, struct dir_domain *out);
enum dir_result dir_domain_alias_get(struct dir *d, const char *alias, char *domain_out);
enum dir_result dir_account_get(struct dir *d, const char *address, struct dir_account *out);
enum dir_result dir_alias_get(struct dir *d, const char *address, struct dir_alias *out);
enum dir_result dir_list_get(struct dir *d, const char *address, struct dir_list *out);
enum dir_result dir_list_members(struct dir *d, int64_t list_id,
                                 void (*fn)(void *ctx, const char *address), void *ctx);
enum dir_result dir_route_find(struct dir *d, const char *domain, struct dir_route *out);
enum dir_result dir_route_has_address(struct dir *d, int64_t route_id, const char *address);
enum dir_result dir_iprange_match(struct dir *d, const struct ipaddr *ip, struct dir_iprange *out);
void dir_close(struct dir **d);

/* Resolve a domain name through domain aliases: if name is a local domain, copy it; if it is a
 * domain alias, copy the primary domain. DIR_NOTFOUND when neither. */
enum dir_result dir_domain_resolve(struct dir *d, const char *name, struct dir_domain *out);

const char *dir_result_name(enum dir_result r);

#endif
