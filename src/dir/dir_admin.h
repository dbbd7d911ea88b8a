/* dir_admin: creating, changing, deleting and listing directory entries in the SQLite database
 * (the `gannet domain|domain-alias|account|alias|list|route|iprange` commands and tests).
 *
 * Every function validates its input first and returns 0, or -1 with a one-line message in
 * *err_r (thread-local storage, valid until the next call on the thread), phrased for the CLI
 * to print after "gannet: ": `invalid address "a@@b"`, `domain example.test already exists`,
 * `no such domain x.test`, `database error: ...`. Names and addresses are stored as entered and
 * compared case-insensitively. Multi-statement changes run in one transaction.
 *
 * "set" functions change only the fields given: DIR_ADMIN_KEEP for integers, NULL for strings.
 * "add" functions use the documented default for every field not given. */
#ifndef GANNET_DIR_DIR_ADMIN_H
#define GANNET_DIR_DIR_ADMIN_H
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dir/dir.h"

#define DIR_ADMIN_KEEP (-1)
#define DIR_IPRANGE_NAME_MAX 100 /* characters, as in hMailServer */

/* ---- domains ---- */
struct dir_admin_domain {
    int enabled;            /* 0/1 (default 1) */
    int64_t max_message_kb; /* >= 0 (default 0 = no per-domain limit) */
    const char *catch_all;  /* address, "" = none (default) */
    const char *plus;       /* one character of "+-_.=", "" = off (default) */
};
int dir_admin_domain_add(sqlite3 *db, const char *name, const struct dir_admin_domain *o,
                         const char **err_r);
int dir_admin_domain_set(sqlite3 *db, const char *name, const struct dir_admin_domain *o,
                         const char **err_r);
/* Deletes the domain with its aliases, accounts (and their mailboxes), aliases and lists. */
int dir_admin_domain_del(sqlite3 *db, const char *name, const char **err_r);
/* Ordered by name. */
int dir_admin_domain_list(sqlite3 *db, void (*fn)(void *ctx, const struct dir_domain *d), void *ctx,
                          const char **err_r);

/* ---- domain aliases ---- */
int dir_admin_domain_alias_add(sqlite3 *db, const char *alias, const char *domain,
                               const char **err_r);
/* domain may be NULL; when given, the alias must belong to it. */
int dir_admin_domain_alias_del(sqlite3 *db, const char *alias, const char *domain,
                               const char **err_r);
/* Ordered by alias name. */
int dir_admin_domain_alias_list(sqlite3 *db,
                                void (*fn)(void *ctx, const char *alias, const char *domain),
                                void *ctx, const char **err_r);

/* ---- accounts ---- */
struct dir_admin_account {
    const char *password; /* plain text, hashed with yescrypt; required on add (or a hash) */
    int enabled;          /* default 1 */
    int64_t quota_mb;     /* default 0 = unlimited */
    const char *forward;  /* address, "" = none (default) */
    int keep_copy;        /* default 0 */
};
/* The address's domain must be a local domain (not a domain alias). */
int dir_admin_account_add(sqlite3 *db, const char *address, const struct dir_admin_account *o,
                          const char **err_r);
int dir_admin_account_set(sqlite3 *db, const char *address, const struct dir_admin_account *o,
                          const char **err_r);
/* The same with an existing password hash stored as given instead of o->password (which must
 * be NULL): accounts moved from another server. hash must pass dir_password_hash_check
 * (yescrypt, $6$, $2b$/$2y$, or hMailServer's salted SHA-256), else -1 with
 * `invalid password hash: ...`. A legacy hash is replaced by yescrypt at the next login. */
int dir_admin_account_add_hashed(sqlite3 *db, const char *address,
                                 const struct dir_admin_account *o, const char *hash,
                                 const char **err_r);
int dir_admin_account_set_hashed(sqlite3 *db, const char *address,
                                 const struct dir_admin_account *o, const char *hash,
                                 const char **err_r);
int dir_admin_account_del(sqlite3 *db, const char *address, const char **err_r);
/* domain NULL = every account; ordered by address. */
int dir_admin_account_list(sqlite3 *db, const char *domain,
                           void (*fn)(void *ctx, const struct dir_account *a), void *ctx,
                           const char **err_r);

/* ---- aliases ---- */
struct dir_admin_alias {
    const char *target; /* required on add */
    int enabled;        /* default 1 */
};
int dir_admin_alias_add(sqlite3 *db, const char *address, const struct dir_admin_alias *o,
                        const char **err_r);
int dir_admin_alias_set(sqlite3 *db, const char *address, const struct dir_admin_alias *o,
                        const char **err_r);
int dir_admin_alias_del(sqlite3 *db, const char *address, const char **err_r);
int dir_admin_alias_list(sqlite3 *db, const char *domain,
                         void (*fn)(void *ctx, const struct dir_alias *a), void *ctx,
                         const char **err_r);

/* ---- distribution lists ---- */
struct dir_admin_list {
    const char *mode;      /* "public" (default) | "members" | "announce" */
    const char *announcer; /* address, "" = none; required when mode is announce */
    int require_auth;      /* default 0 */
    int enabled;           /* default 1 */
};
int dir_admin_list_add(sqlite3 *db, const char *address, const struct dir_admin_list *o,
                       const char **err_r);
int dir_admin_list_set(sqlite3 *db, const char *address, const struct dir_admin_list *o,
                       const char **err_r);
int dir_admin_list_del(sqlite3 *db, const char *address, const char **err_r);
/* fn also gets the number of members. */
int dir_admin_list_list(sqlite3 *db, const char *domain,
                        void (*fn)(void *ctx, const struct dir_list *l, unsigned members),
                        void *ctx, const char **err_r);
int dir_admin_list_member_add(sqlite3 *db, const char *list, const char *address,
                              const char **err_r);
int dir_admin_list_member_del(sqlite3 *db, const char *list, const char *address,
                              const char **err_r);
/* In insertion order. */
int dir_admin_list_member_list(sqlite3 *db, const char *list,
                               void (*fn)(void *ctx, const char *address), void *ctx,
                               const char **err_r);

/* ---- routes ---- */
struct dir_admin_route {
    const char *host;             /* "host", "1.2.3.4", or "a|b"; required on add */
    int64_t port;                 /* 1..65535, default 25 */
    const char *const *addresses; /* with count > 0: deliver only these (set: replaces list) */
    size_t addresses_count;
    bool all_addresses;    /* set: clear the address list, deliver all */
    int local_recipient;   /* default 0 */
    int local_sender;      /* default 0 */
    const char *auth_user; /* "" = no AUTH (default); auth_password with it */
    const char *auth_password;
    const char *security; /* "none" (default) | "starttls" | "tls" */
};
/* pattern: a domain, may contain '*' and '?' wildcards. */
int dir_admin_route_add(sqlite3 *db, const char *pattern, const struct dir_admin_route *o,
                        const char **err_r);
int dir_admin_route_set(sqlite3 *db, const char *pattern, const struct dir_admin_route *o,
                        const char **err_r);
int dir_admin_route_del(sqlite3 *db, const char *pattern, const char **err_r);
/* In id order (the order route_find tries them). */
int dir_admin_route_list(sqlite3 *db, void (*fn)(void *ctx, const struct dir_route *r), void *ctx,
                         const char **err_r);
int dir_admin_route_addresses(sqlite3 *db, int64_t route_id,
                              void (*fn)(void *ctx, const char *address), void *ctx,
                              const char **err_r);

/* ---- IP ranges ---- */
#define DIR_IPR_ALLOW_MASK (DIR_IPR_SMTP | DIR_IPR_POP3 | DIR_IPR_IMAP)
#define DIR_IPR_DELIVER_MASK                                                                       \
    (DIR_IPR_DELIVER_LL | DIR_IPR_DELIVER_LE | DIR_IPR_DELIVER_EL | DIR_IPR_DELIVER_EE)
#define DIR_IPR_AUTH_MASK (DIR_IPR_AUTH_LL | DIR_IPR_AUTH_LE | DIR_IPR_AUTH_EL | DIR_IPR_AUTH_EE)
/* Flags of a new range unless given: every protocol and delivery, auth required for ll,le,ee,
 * anti-spam on, TLS for AUTH off (the "Internet" range without the TLS requirement). */
#define DIR_IPR_DEFAULT_FLAGS                                                                      \
    (DIR_IPR_ALLOW_MASK | DIR_IPR_DELIVER_MASK | DIR_IPR_AUTH_LL | DIR_IPR_AUTH_LE |               \
     DIR_IPR_AUTH_EE | DIR_IPR_ANTISPAM)

struct dir_admin_iprange {
    const char *from; /* IP text; required on add */
    const char *to;   /* IP text; add: defaults to from */
    bool has_priority;
    int priority;        /* default 10 */
    uint32_t flags;      /* values for the bits in flags_mask ... */
    uint32_t flags_mask; /* ... the other bits keep their value (add: DIR_IPR_DEFAULT_FLAGS) */
    bool has_expires;
    int64_t expires; /* unix time, 0 = never (default) */
};
int dir_admin_iprange_add(sqlite3 *db, const char *name, const struct dir_admin_iprange *o,
                          const char **err_r);
int dir_admin_iprange_set(sqlite3 *db, const char *name, const struct dir_admin_iprange *o,
                          const char **err_r);
int dir_admin_iprange_del(sqlite3 *db, const char *name, const char **err_r);
/* Ordered by priority (highest first), then creation: the order matching tries them. */
int dir_admin_iprange_list(sqlite3 *db, void (*fn)(void *ctx, const struct dir_iprange *r),
                           void *ctx, const char **err_r);
/* The defaults of design.md §5 ("My computer", "Internet", each for IPv4 and IPv6), created
 * only when the iprange table is empty. *created_r = number of ranges created (0 or 4). */
int dir_admin_iprange_defaults(sqlite3 *db, int *created_r, const char **err_r);

/* Parse a comma list for --allow ("smtp,pop3,imap"), --deliver / --require-auth
 * ("ll,le,el,ee"); "none" = no bit. Returns 0 with the bits, or -1 with *err_r. */
int dir_admin_parse_allow(const char *s, uint32_t *flags_r, const char **err_r);
int dir_admin_parse_deliver(const char *s, uint32_t *flags_r, const char **err_r);
int dir_admin_parse_require_auth(const char *s, uint32_t *flags_r, const char **err_r);
/* The reverse, for listings: "smtp,imap", "ll,ee", or "none". out >= 32 bytes. */
void dir_admin_format_allow(uint32_t flags, char *out, size_t size);
void dir_admin_format_deliver(uint32_t flags, char *out, size_t size);
void dir_admin_format_require_auth(uint32_t flags, char *out, size_t size);

#endif
