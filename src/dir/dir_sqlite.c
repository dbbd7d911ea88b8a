/* dir_sqlite: the directory lookups of dir.h as SQL on one SQLite handle (schema in
 * dir_migrations.c).
 *
 *   dir_sqlite_new(db)     a struct dir over db (the caller keeps owning db)
 *   dir_sqlite_result(rc)  SQLite result code -> OK / NOTFOUND / TEMPFAIL / PERMFAIL
 *
 * Each statement is prepared on first use and cached in the struct dir, since the server runs
 * these per RCPT. Names compare case-insensitively through the schema's COLLATE NOCASE columns.
 * A failing query logs the SQLite message and returns DIR_TEMPFAIL for conditions that may pass
 * (busy, locked, I/O, disk full, out of memory) and DIR_PERMFAIL for the rest. */
#include "dir/dir_sqlite.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

enum stmt_id {
    ST_DOMAIN_GET,
    ST_DOMAIN_ALIAS_GET,
    ST_ACCOUNT_GET,
    ST_ALIAS_GET,
    ST_LIST_GET,
    ST_LIST_MEMBERS,
    ST_ROUTE_ALL,
    ST_ROUTE_HAS_ADDRESS,
    ST_IPRANGE_MATCH,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_DOMAIN_GET] = "SELECT id, name, enabled, max_message_kb, catch_all, plus_char "
                      "FROM domain WHERE name = ?1",
    [ST_DOMAIN_ALIAS_GET] = "SELECT d.name FROM domain_alias a JOIN domain d ON d.id = a.domain_id "
                            "WHERE a.alias = ?1",
    [ST_ACCOUNT_GET] = "SELECT id, domain_id, address, password_hash, enabled, quota_mb, forward, "
                       "keep_copy FROM account WHERE address = ?1",
    [ST_ALIAS_GET] = "SELECT id, address, target, enabled FROM alias WHERE address = ?1",
    [ST_LIST_GET] = "SELECT id, address, enabled, mode, announcer, require_auth "
                    "FROM list WHERE address = ?1",
    [ST_LIST_MEMBERS] = "SELECT address FROM list_member WHERE list_id = ?1 ORDER BY id",
    [ST_ROUTE_ALL] = "SELECT id, pattern, host, port, all_addresses, local_recipient, "
                     "local_sender, auth_user, auth_password, security FROM route ORDER BY id",
    [ST_ROUTE_HAS_ADDRESS] = "SELECT 1 FROM route_address WHERE route_id = ?1 AND address = ?2",
    [ST_IPRANGE_MATCH] = "SELECT id, name, family, ip_from, ip_to, priority, flags, expires "
                         "FROM iprange WHERE family = ?1 AND ip_from <= ?2 AND ip_to >= ?2 "
                         "AND (expires = 0 OR expires > ?3) ORDER BY priority DESC, id LIMIT 1",
};

struct dir_sqlite {
    struct dir dir; /* first: a struct dir * is a struct dir_sqlite * */
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
};

enum dir_result dir_sqlite_result(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
        return DIR_OK;
    case SQLITE_DONE:
        return DIR_NOTFOUND;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_NOMEM:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
    case SQLITE_INTERRUPT:
        return DIR_TEMPFAIL;
    default:
        return DIR_PERMFAIL;
    }
}

int dir_sqlite_family(int af)
{
    return af == AF_INET6 ? 6 : 4;
}

static struct dir_sqlite *ds_of(struct dir *d)
{
    return (struct dir_sqlite *)d;
}

static enum dir_result fail(struct dir_sqlite *ds, const char *what, int rc)
{
    enum dir_result r = dir_sqlite_result(rc);
    if (r == DIR_OK || r == DIR_NOTFOUND)
        r = DIR_PERMFAIL; /* an unexpected code where an error was expected */
    log_error("directory: %s: %s (%s)", what, sqlite3_errmsg(ds->db), dir_result_name(r));
    return r;
}

/* The cached statement id, reset with cleared bindings, or NULL (and *r_r set). */
static sqlite3_stmt *stmt(struct dir_sqlite *ds, enum stmt_id id, enum dir_result *r_r)
{
    if (!ds->st[id]) {
        int rc = sqlite3_prepare_v3(ds->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &ds->st[id], NULL);
        if (rc != SQLITE_OK) {
            sqlite3_finalize(ds->st[id]);
            ds->st[id] = NULL;
            *r_r = fail(ds, "prepare", rc);
            return NULL;
        }
    }
    sqlite3_reset(ds->st[id]);
    sqlite3_clear_bindings(ds->st[id]);
    return ds->st[id];
}

/* Step a single-row query: DIR_OK with the row current, DIR_NOTFOUND, or a failure (logged). */
static enum dir_result step_one(struct dir_sqlite *ds, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return DIR_OK;
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return DIR_NOTFOUND;
    }
    enum dir_result r = fail(ds, what, rc);
    sqlite3_reset(st);
    return r;
}

static void col_text(sqlite3_stmt *st, int col, char *out, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    str_copy(out, size, t ? (const char *)t : "");
}

static enum dir_result ds_domain_get(struct dir *d, const char *name, struct dir_domain *out)
{
    struct dir_sqlite *ds = ds_of(d);
    enum dir_result r = DIR_PERMFAIL;
    sqlite3_stmt *st = stmt(ds, ST_DOMAIN_GET, &r);
    if (!st)
        return r;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if ((r = step_one(ds, st, "domain lookup")) != DIR_OK)
        return r;
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(st, 0);
    col_text(st, 1, out->name, sizeof(out->name));
    out->enabled = sqlite3_column_int(st, 2) != 0;
    out->max_message_kb = (unsigned)sqlite3_column_int64(st, 3);
    col_text(st, 4, out->catch_all, sizeof(out->catch_all));
    const unsigned char *plus = sqlite3_column_text(st, 5);
    out->plus_char = plus ? (char)plus[0] : '\0';
    sqlite3_reset(st);
    return DIR_OK;
}

static enum dir_result ds_domain_alias_get(struct dir *d, const char *alias, char *domain_out)
{
    struct dir_sqlite *ds = ds_of(d);
    enum dir_result r = DIR_PERMFAIL;
    sqlite3_stmt *st = stmt(ds, ST_DOMAIN_ALIAS_GET, &r);
    if (!st)
        return r;
    sqlite3_bind_text(st, 1, alias, -1, SQLITE_STATIC);
    if ((r = step_one(ds, st, "domain alias lookup")) != DIR_OK)
        return r;
    col_text(st, 0, domain_out, DIR_NAME_MAX);
    sqlite3_reset(st);
    return DIR_OK;
}

static enum dir_result ds_account_get(struct dir *d, const char *address, struct dir_account *out)
{
    struct dir_sqlite *ds = ds_of(d);
    enum dir_result r = DIR_PERMFAIL;
    sqlite3_stmt *st = stmt(ds, ST_ACCOUNT_GET, &r);
    if (!st)
        return r;
    sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
    if ((r = step_one(ds, st, "account lookup")) != DIR_OK)
        return r;
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(st, 0);
    out->domain_id = sqlite3_column_int64(st, 1);
    col_text(st, 2, out->address, sizeof(out->address));
    col_text(st, 3, out->password_hash, sizeof(out->password_hash));
    out->enabled = sqlite3_column_int(st, 4) != 0;
    out->quota_mb = (uint64_t)sqlite3_column_int64(st, 5);
    col_text(st, 6, out->forward, sizeof(out->forward));
    out->keep_copy = sqlite3_column_int(st, 7) != 0;
    sqlite3_reset(st);
    return DIR_OK;
}

static enum dir_result ds_alias_get(struct dir *d, const char *address, struct dir_alias *out)
{
    struct dir_sqlite *ds = ds_of(d);
    enum dir_result r = DIR_PERMFAIL;
    sqlite3_stmt *st = stmt(ds, ST_ALIAS_GET, &r);
    if (!st)
        return r;
    sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
    if ((r = step_one(ds, st, "alias lookup")) != DIR_OK)
        return r;
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(st, 0);
    col_text(st, 1, out->address, sizeof(out->address));
    col_text(st, 2, out->target, sizeof(out->target));
    out->enabled = sqlite3_column_int(st, 3) != 0;
    sqlite3_reset(st);
    return DIR_OK;
}

static enum dir_list_mode list_mode_of(const char *s)
{
    if (strcmp(s, "members") == 0)
        return DIR_LIST_MEMBERS;
    if (strcmp(s, "announce") == 0)
        return DIR_LIST_ANNOUNCE;
    return DIR_LIST_PUBLIC;
}

static enum dir_result ds_list_get(struct dir *d, const char *address, struct dir_list *out)
{
    struct dir_sqlite *ds = ds_of(d);
    enum dir_result r = DIR_PERMFAIL;
    sqlite3_stmt *st = stmt(ds, ST_LIST_GET, &r);
    if (!st)
        return r;
    sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
    if ((r = step_one(ds, st, "list lookup")) != DIR_OK)
        return r;
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(st, 0);
    col_text(st, 1, out->address, sizeof(out->address));
    out->enabled = sqlite3_column_int(st, 2) != 0;
    const unsigned char *mode = sqlite3_column_text(st, 3);
    out->mode = list_mode_of(mode ? (const char *)mode : "");
    col_text(st, 4, out->announcer, sizeof(out->announcer));
    out->require_auth = sqlite3_column_int(st, 5) != 0;
    sqlite3_reset(st);
    return DIR_OK;
}

/* Members are collected first and the statement reset before any callback runs, so fn may call
 * back into this struct dir (nested lists) without disturbing the iteration. */
static enum dir_result ds_list_members(struct dir *d, int64_t list_id,
                                       void (*fn)(void *ctx, const char *address), void *ctx)
{
    struct dir_sqlite *ds = ds_of(d);
    enum dir_result r = DIR_PERMFAIL;
    sqlite3_stmt *st = stmt(ds, ST_LIST_MEMBERS, &r);
    if (!st)
        return r;
    sqlite3_bind_int64(st, 1, list_id);
    char **addrs = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            addrs = xrealloc(addrs, cap * sizeof(*addrs));
        }
        addrs[n++] = xstrdup(t ? (const char *)t : "");
    }
    r = rc == SQLITE_DONE ? DIR_OK : fail(ds, "list members", rc);
    sqlite3_reset(st);
    for (size_t i = 0; i < n; i++) {
        if (r == DIR_OK)
            fn(ctx, addrs[i]);
        free(addrs[i]);
    }
    free(addrs);
    return r;
}

static enum dir_security security_of(const char *s)
{
    if (strcmp(s, "starttls") == 0)
        return DIR_SECURITY_STARTTLS;
    if (strcmp(s, "tls") == 0)
        return DIR_SECURITY_TLS;
    return DIR_SECURITY_NONE;
}

/* Routes are few; they are read in id order and matched here because patterns hold wildcards. */
static enum dir_result ds_route_find(struct dir *d, const char *domain, struct dir_route *out)
{
    struct dir_sqlite *ds = ds_of(d);
    enum dir_result r = DIR_PERMFAIL;
    sqlite3_stmt *st = stmt(ds, ST_ROUTE_ALL, &r);
    if (!st)
        return r;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *pattern = sqlite3_column_text(st, 1);
        if (!pattern || !str_wildcard_match((const char *)pattern, domain))
            continue;
        memset(out, 0, sizeof(*out));
        out->id = sqlite3_column_int64(st, 0);
        col_text(st, 1, out->pattern, sizeof(out->pattern));
        col_text(st, 2, out->host, sizeof(out->host));
        out->port = (unsigned)sqlite3_column_int(st, 3);
        out->all_addresses = sqlite3_column_int(st, 4) != 0;
        out->local_recipient = sqlite3_column_int(st, 5) != 0;
        out->local_sender = sqlite3_column_int(st, 6) != 0;
        col_text(st, 7, out->auth_user, sizeof(out->auth_user));
        col_text(st, 8, out->auth_password, sizeof(out->auth_password));
        const unsigned char *sec = sqlite3_column_text(st, 9);
        out->security = security_of(sec ? (const char *)sec : "");
        sqlite3_reset(st);
        return DIR_OK;
    }
    r = rc == SQLITE_DONE ? DIR_NOTFOUND : fail(ds, "route lookup", rc);
    sqlite3_reset(st);
    return r;
}

static enum dir_result ds_route_has_address(struct dir *d, int64_t route_id, const char *address)
{
    struct dir_sqlite *ds = ds_of(d);
    enum dir_result r = DIR_PERMFAIL;
    sqlite3_stmt *st = stmt(ds, ST_ROUTE_HAS_ADDRESS, &r);
    if (!st)
        return r;
    sqlite3_bind_int64(st, 1, route_id);
    sqlite3_bind_text(st, 2, address, -1, SQLITE_STATIC);
    r = step_one(ds, st, "route address lookup");
    sqlite3_reset(st);
    return r;
}

static void col_ip(sqlite3_stmt *st, int col, int af, struct ipaddr *ip)
{
    memset(ip, 0, sizeof(*ip));
    ip->family = af;
    const void *b = sqlite3_column_blob(st, col);
    if (b && sqlite3_column_bytes(st, col) == 16)
        memcpy(ip->b, b, 16);
}

static enum dir_result ds_iprange_match(struct dir *d, const struct ipaddr *ip,
                                        struct dir_iprange *out)
{
    struct dir_sqlite *ds = ds_of(d);
    enum dir_result r = DIR_PERMFAIL;
    sqlite3_stmt *st = stmt(ds, ST_IPRANGE_MATCH, &r);
    if (!st)
        return r;
    sqlite3_bind_int(st, 1, dir_sqlite_family(ip->family));
    sqlite3_bind_blob(st, 2, ip->b, 16, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
    if ((r = step_one(ds, st, "ip range lookup")) != DIR_OK)
        return r;
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(st, 0);
    col_text(st, 1, out->name, sizeof(out->name));
    int af = sqlite3_column_int(st, 2) == 6 ? AF_INET6 : AF_INET;
    col_ip(st, 3, af, &out->from);
    col_ip(st, 4, af, &out->to);
    out->priority = sqlite3_column_int(st, 5);
    out->flags = (uint32_t)sqlite3_column_int64(st, 6);
    out->expires = sqlite3_column_int64(st, 7);
    sqlite3_reset(st);
    return DIR_OK;
}

static void ds_close(struct dir *d)
{
    struct dir_sqlite *ds = ds_of(d);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(ds->st[i]);
    free(ds);
}

static const struct dir_ops dir_sqlite_ops = {
    .domain_get = ds_domain_get,
    .domain_alias_get = ds_domain_alias_get,
    .account_get = ds_account_get,
    .alias_get = ds_alias_get,
    .list_get = ds_list_get,
    .list_members = ds_list_members,
    .route_find = ds_route_find,
    .route_has_address = ds_route_has_address,
    .iprange_match = ds_iprange_match,
    .close = ds_close,
};

struct dir *dir_sqlite_new(sqlite3 *db)
{
    struct dir_sqlite *ds = xcalloc(1, sizeof(*ds));
    ds->dir.ops = &dir_sqlite_ops;
    ds->db = db;
    return &ds->dir;
}
