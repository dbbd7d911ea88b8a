/* dir_admin: validated create/update/delete/list of directory rows in SQLite, for the admin CLI
 * (dir_admin.h): domains, domain aliases, accounts, aliases and lists. Routes and IP ranges live
 * in dir_admin_net.c; both use the query helpers of dir_admin_int.c.
 *
 * Each write runs in one BEGIN IMMEDIATE transaction: existence and collision checks, then the
 * change. "set" loads the row, applies the given fields, validates the result and writes the
 * whole row back. Errors are one line in *err_r (see dir_admin.h); nothing is logged. */
#include "dir/dir_admin.h"

#include <stdio.h>
#include <string.h>

#include "dir/dir_admin_int.h"
#include "dir/dir_password.h"
#include "lib/str.h"
#include "mail/addr.h"

/* ---- local helpers ---- */

#define errf dir_admin_errf
#define q dir_admin_q
#define q_exec dir_admin_exec
#define q_int dir_admin_int
#define col_text dir_admin_col_text

/* Id of local domain name: 1 found, 0 not (err set: "domain X does not exist"), -1 error. */
static int local_domain_id(sqlite3 *db, const char *name, int64_t *id_r, const char **err_r)
{
    int r = q_int(db, err_r, id_r, "SELECT id FROM domain WHERE name = ?1", "t", name);
    if (r != 0)
        return r;
    char primary[DIR_NAME_MAX];
    sqlite3_stmt *st = q(db, err_r,
                         "SELECT d.name FROM domain_alias a JOIN domain d ON d.id = a.domain_id "
                         "WHERE a.alias = ?1",
                         "t", name);
    if (!st)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        col_text(st, 0, primary, sizeof(primary));
        *err_r = errf("%s is a domain alias of %s; use the primary domain", name, primary);
    } else {
        *err_r = errf("domain %s does not exist", name);
    }
    sqlite3_finalize(st);
    return 0;
}

/* The domain id for an address in a local domain (1), 0 with err when the domain is not
 * local, -1 on error. */
static int address_domain_id(sqlite3 *db, const char *address, int64_t *id_r, const char **err_r)
{
    if (dir_admin_check_address(address, err_r) < 0)
        return -1;
    return local_domain_id(db, addr_domain(address), id_r, err_r);
}

/* Which of account/alias/list holds address: returns 1 with *kind_r, 0 none, -1 error. */
static int address_taken(sqlite3 *db, const char *address, const char **kind_r, const char **err_r)
{
    int64_t kind = 0;
    int r = q_int(db, err_r, &kind,
                  "SELECT 1 FROM account WHERE address = ?1 UNION ALL "
                  "SELECT 2 FROM alias WHERE address = ?1 UNION ALL "
                  "SELECT 3 FROM list WHERE address = ?1 LIMIT 1",
                  "t", address);
    if (r == 1)
        *kind_r = kind == 1 ? "account" : kind == 2 ? "alias" : "list";
    return r;
}

/* Fails when address is already an account, alias or list; what = kind being added. */
static int check_address_free(sqlite3 *db, const char *what, const char *address,
                              const char **err_r)
{
    const char *kind = NULL;
    int r = address_taken(db, address, &kind, err_r);
    if (r < 0)
        return -1;
    if (r == 0)
        return 0;
    if (strcmp(kind, what) == 0)
        *err_r = errf("%s %s already exists", what, address);
    else
        *err_r =
            errf("%s already exists as %s %s", address,
                 strcmp(kind, "alias") == 0 || strcmp(kind, "account") == 0 ? "an" : "a", kind);
    return -1;
}

static bool enabled_ok(int v)
{
    return v == DIR_ADMIN_KEEP || v == 0 || v == 1;
}

/* ---- domains ---- */

static int domain_load(sqlite3 *db, const char *name, struct dir_domain *d, const char **err_r)
{
    sqlite3_stmt *st = q(db, err_r,
                         "SELECT id, name, enabled, max_message_kb, catch_all, plus_char "
                         "FROM domain WHERE name = ?1",
                         "t", name);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(d, 0, sizeof(*d));
        d->id = sqlite3_column_int64(st, 0);
        col_text(st, 1, d->name, sizeof(d->name));
        d->enabled = sqlite3_column_int(st, 2) != 0;
        d->max_message_kb = (unsigned)sqlite3_column_int64(st, 3);
        col_text(st, 4, d->catch_all, sizeof(d->catch_all));
        const unsigned char *p = sqlite3_column_text(st, 5);
        d->plus_char = p ? (char)p[0] : '\0';
        sqlite3_finalize(st);
        return 1;
    }
    if (rc == SQLITE_DONE) {
        *err_r = errf("no such domain %s", name);
        sqlite3_finalize(st);
        return 0;
    }
    return dir_admin_step_done(db, st, rc, err_r);
}

static int domain_apply(struct dir_domain *d, const struct dir_admin_domain *o, const char **err_r)
{
    if (!enabled_ok(o->enabled)) {
        *err_r = "invalid enabled value";
        return -1;
    }
    if (o->enabled != DIR_ADMIN_KEEP)
        d->enabled = o->enabled;
    if (o->max_message_kb != DIR_ADMIN_KEEP) {
        if (o->max_message_kb < 0 || o->max_message_kb > 4194304) {
            *err_r = errf("invalid maximum message size %lld KB (0..4194304)",
                          (long long)o->max_message_kb);
            return -1;
        }
        d->max_message_kb = (unsigned)o->max_message_kb;
    }
    if (o->catch_all) {
        if (*o->catch_all && dir_admin_check_address(o->catch_all, err_r) < 0)
            return -1;
        str_copy(d->catch_all, sizeof(d->catch_all), o->catch_all);
    }
    if (o->plus) {
        if (*o->plus && (strlen(o->plus) != 1 || !strchr("+-_.=", o->plus[0]))) {
            *err_r = errf("invalid plus character \"%s\" (one of + - _ . = or none)", o->plus);
            return -1;
        }
        d->plus_char = o->plus[0];
    }
    return 0;
}

static int domain_add_tx(sqlite3 *db, const char *name, const struct dir_admin_domain *o,
                         const char **err_r)
{
    int r = q_int(db, err_r, NULL, "SELECT id FROM domain WHERE name = ?1", "t", name);
    if (r < 0)
        return -1;
    if (r == 1) {
        *err_r = errf("domain %s already exists", name);
        return -1;
    }
    r = q_int(db, err_r, NULL, "SELECT id FROM domain_alias WHERE alias = ?1", "t", name);
    if (r < 0)
        return -1;
    if (r == 1) {
        *err_r = errf("%s already exists as a domain alias", name);
        return -1;
    }
    struct dir_domain d = {.enabled = true};
    if (domain_apply(&d, o, err_r) < 0)
        return -1;
    char plus[2] = {d.plus_char, '\0'};
    return q_exec(db, err_r,
                  "INSERT INTO domain (name, enabled, max_message_kb, catch_all, plus_char) "
                  "VALUES (?1, ?2, ?3, ?4, ?5)",
                  "tiitt", name, (int64_t)d.enabled, (int64_t)d.max_message_kb, d.catch_all,
                  plus) < 0
               ? -1
               : 0;
}

int dir_admin_domain_add(sqlite3 *db, const char *name, const struct dir_admin_domain *o,
                         const char **err_r)
{
    if (dir_admin_check_domain(name, err_r) < 0 || dir_admin_tx_begin(db, err_r) < 0)
        return -1;
    return dir_admin_tx_end(db, domain_add_tx(db, name, o, err_r), err_r);
}

static int domain_set_tx(sqlite3 *db, const char *name, const struct dir_admin_domain *o,
                         const char **err_r)
{
    struct dir_domain d;
    if (domain_load(db, name, &d, err_r) != 1 || domain_apply(&d, o, err_r) < 0)
        return -1;
    char plus[2] = {d.plus_char, '\0'};
    return q_exec(db, err_r,
                  "UPDATE domain SET enabled = ?2, max_message_kb = ?3, catch_all = ?4, "
                  "plus_char = ?5 WHERE id = ?1",
                  "iiitt", d.id, (int64_t)d.enabled, (int64_t)d.max_message_kb, d.catch_all,
                  plus) < 0
               ? -1
               : 0;
}

int dir_admin_domain_set(sqlite3 *db, const char *name, const struct dir_admin_domain *o,
                         const char **err_r)
{
    if (dir_admin_tx_begin(db, err_r) < 0)
        return -1;
    return dir_admin_tx_end(db, domain_set_tx(db, name, o, err_r), err_r);
}

int dir_admin_domain_del(sqlite3 *db, const char *name, const char **err_r)
{
    int n = q_exec(db, err_r, "DELETE FROM domain WHERE name = ?1", "t", name);
    if (n < 0)
        return -1;
    if (n == 0) {
        *err_r = errf("no such domain %s", name);
        return -1;
    }
    return 0;
}

int dir_admin_domain_list(sqlite3 *db, void (*fn)(void *ctx, const struct dir_domain *d), void *ctx,
                          const char **err_r)
{
    sqlite3_stmt *st = q(db, err_r,
                         "SELECT id, name, enabled, max_message_kb, catch_all, plus_char "
                         "FROM domain ORDER BY name, id",
                         "");
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct dir_domain d = {0};
        d.id = sqlite3_column_int64(st, 0);
        col_text(st, 1, d.name, sizeof(d.name));
        d.enabled = sqlite3_column_int(st, 2) != 0;
        d.max_message_kb = (unsigned)sqlite3_column_int64(st, 3);
        col_text(st, 4, d.catch_all, sizeof(d.catch_all));
        const unsigned char *p = sqlite3_column_text(st, 5);
        d.plus_char = p ? (char)p[0] : '\0';
        fn(ctx, &d);
    }
    return dir_admin_step_done(db, st, rc, err_r);
}

/* ---- domain aliases ---- */

static int domain_alias_add_tx(sqlite3 *db, const char *alias, const char *domain,
                               const char **err_r)
{
    int64_t domain_id, id;
    int r = local_domain_id(db, domain, &domain_id, err_r);
    if (r != 1)
        return -1;
    r = q_int(db, err_r, &id, "SELECT id FROM domain WHERE name = ?1", "t", alias);
    if (r < 0)
        return -1;
    if (r == 1) {
        *err_r = errf("%s already exists as a domain", alias);
        return -1;
    }
    r = q_int(db, err_r, &id, "SELECT id FROM domain_alias WHERE alias = ?1", "t", alias);
    if (r < 0)
        return -1;
    if (r == 1) {
        *err_r = errf("domain alias %s already exists", alias);
        return -1;
    }
    return q_exec(db, err_r, "INSERT INTO domain_alias (alias, domain_id) VALUES (?1, ?2)", "ti",
                  alias, domain_id) < 0
               ? -1
               : 0;
}

int dir_admin_domain_alias_add(sqlite3 *db, const char *alias, const char *domain,
                               const char **err_r)
{
    if (dir_admin_check_domain(alias, err_r) < 0 || dir_admin_check_domain(domain, err_r) < 0)
        return -1;
    if (str_ieq(alias, domain)) {
        *err_r = errf("a domain cannot be an alias of itself");
        return -1;
    }
    if (dir_admin_tx_begin(db, err_r) < 0)
        return -1;
    return dir_admin_tx_end(db, domain_alias_add_tx(db, alias, domain, err_r), err_r);
}

int dir_admin_domain_alias_del(sqlite3 *db, const char *alias, const char *domain,
                               const char **err_r)
{
    int n = q_exec(db, err_r,
                   "DELETE FROM domain_alias WHERE alias = ?1 AND (?2 IS NULL OR domain_id = "
                   "(SELECT id FROM domain WHERE name = ?2))",
                   "tt", alias, domain);
    if (n < 0)
        return -1;
    if (n == 0) {
        if (domain)
            *err_r = errf("no such domain alias %s for %s", alias, domain);
        else
            *err_r = errf("no such domain alias %s", alias);
        return -1;
    }
    return 0;
}

int dir_admin_domain_alias_list(sqlite3 *db,
                                void (*fn)(void *ctx, const char *alias, const char *domain),
                                void *ctx, const char **err_r)
{
    sqlite3_stmt *st = q(db, err_r,
                         "SELECT a.alias, d.name FROM domain_alias a JOIN domain d "
                         "ON d.id = a.domain_id ORDER BY a.alias, a.id",
                         "");
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
    return dir_admin_step_done(db, st, rc, err_r);
}

/* ---- accounts ---- */

#define ACCOUNT_COLS "id, domain_id, address, password_hash, enabled, quota_mb, forward, keep_copy"

static void account_row(sqlite3_stmt *st, struct dir_account *a)
{
    memset(a, 0, sizeof(*a));
    a->id = sqlite3_column_int64(st, 0);
    a->domain_id = sqlite3_column_int64(st, 1);
    col_text(st, 2, a->address, sizeof(a->address));
    col_text(st, 3, a->password_hash, sizeof(a->password_hash));
    a->enabled = sqlite3_column_int(st, 4) != 0;
    a->quota_mb = (uint64_t)sqlite3_column_int64(st, 5);
    col_text(st, 6, a->forward, sizeof(a->forward));
    a->keep_copy = sqlite3_column_int(st, 7) != 0;
}

/* hash: an existing password hash to store (the *_hashed functions), or NULL. */
static int account_apply(struct dir_account *a, const struct dir_admin_account *o, const char *hash,
                         const char **err_r)
{
    if (!enabled_ok(o->enabled) || !enabled_ok(o->keep_copy)) {
        *err_r = "invalid flag value";
        return -1;
    }
    if (o->enabled != DIR_ADMIN_KEEP)
        a->enabled = o->enabled;
    if (o->keep_copy != DIR_ADMIN_KEEP)
        a->keep_copy = o->keep_copy;
    if (o->quota_mb != DIR_ADMIN_KEEP) {
        if (o->quota_mb < 0 || o->quota_mb > ((int64_t)1 << 40)) {
            *err_r = errf("invalid quota %lld MB", (long long)o->quota_mb);
            return -1;
        }
        a->quota_mb = (uint64_t)o->quota_mb;
    }
    if (o->forward) {
        if (*o->forward && dir_admin_check_address(o->forward, err_r) < 0)
            return -1;
        if (str_ieq(o->forward, a->address)) {
            *err_r = errf("account %s cannot forward to itself", a->address);
            return -1;
        }
        str_copy(a->forward, sizeof(a->forward), o->forward);
    }
    if (o->password && hash) {
        *err_r = "give either a password or a password hash, not both";
        return -1;
    }
    if (hash) {
        const char *why = NULL;
        if (dir_password_hash_check(hash, &why) < 0) {
            *err_r = errf("invalid password hash: %s", why);
            return -1;
        }
        str_copy(a->password_hash, sizeof(a->password_hash), hash);
    }
    if (o->password) {
        if (strchr(o->password, '\n') || strchr(o->password, '\r')) {
            *err_r = "invalid password (line break)";
            return -1;
        }
        if (dir_password_hash(o->password, a->password_hash, sizeof(a->password_hash), err_r) < 0)
            return -1;
    }
    return 0;
}

static int account_add_tx(sqlite3 *db, const char *address, const struct dir_admin_account *o,
                          const char *hash, const char **err_r)
{
    int64_t domain_id;
    if (address_domain_id(db, address, &domain_id, err_r) != 1 ||
        check_address_free(db, "account", address, err_r) < 0)
        return -1;
    if (!o->password && !hash) {
        *err_r = "missing password";
        return -1;
    }
    struct dir_account a = {.enabled = true};
    str_copy(a.address, sizeof(a.address), address);
    if (account_apply(&a, o, hash, err_r) < 0)
        return -1;
    return q_exec(db, err_r,
                  "INSERT INTO account (domain_id, address, password_hash, enabled, quota_mb, "
                  "forward, keep_copy) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                  "ittiiti", domain_id, address, a.password_hash, (int64_t)a.enabled,
                  (int64_t)a.quota_mb, a.forward, (int64_t)a.keep_copy) < 0
               ? -1
               : 0;
}

int dir_admin_account_add(sqlite3 *db, const char *address, const struct dir_admin_account *o,
                          const char **err_r)
{
    if (dir_admin_check_address(address, err_r) < 0 || dir_admin_tx_begin(db, err_r) < 0)
        return -1;
    return dir_admin_tx_end(db, account_add_tx(db, address, o, NULL, err_r), err_r);
}

int dir_admin_account_add_hashed(sqlite3 *db, const char *address,
                                 const struct dir_admin_account *o, const char *hash,
                                 const char **err_r)
{
    if (dir_admin_check_address(address, err_r) < 0 || dir_admin_tx_begin(db, err_r) < 0)
        return -1;
    return dir_admin_tx_end(db, account_add_tx(db, address, o, hash ? hash : "", err_r), err_r);
}

static int account_set_tx(sqlite3 *db, const char *address, const struct dir_admin_account *o,
                          const char *hash, const char **err_r)
{
    sqlite3_stmt *st =
        q(db, err_r, "SELECT " ACCOUNT_COLS " FROM account WHERE address = ?1", "t", address);
    if (!st)
        return -1;
    struct dir_account a;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        if (dir_admin_step_done(db, st, rc, err_r) == 0)
            *err_r = errf("no such account %s", address);
        return -1;
    }
    account_row(st, &a);
    sqlite3_finalize(st);
    if (account_apply(&a, o, hash, err_r) < 0)
        return -1;
    return q_exec(db, err_r,
                  "UPDATE account SET password_hash = ?2, enabled = ?3, quota_mb = ?4, "
                  "forward = ?5, keep_copy = ?6 WHERE id = ?1",
                  "itiiti", a.id, a.password_hash, (int64_t)a.enabled, (int64_t)a.quota_mb,
                  a.forward, (int64_t)a.keep_copy) < 0
               ? -1
               : 0;
}

int dir_admin_account_set(sqlite3 *db, const char *address, const struct dir_admin_account *o,
                          const char **err_r)
{
    if (dir_admin_tx_begin(db, err_r) < 0)
        return -1;
    return dir_admin_tx_end(db, account_set_tx(db, address, o, NULL, err_r), err_r);
}

int dir_admin_account_set_hashed(sqlite3 *db, const char *address,
                                 const struct dir_admin_account *o, const char *hash,
                                 const char **err_r)
{
    if (dir_admin_tx_begin(db, err_r) < 0)
        return -1;
    return dir_admin_tx_end(db, account_set_tx(db, address, o, hash ? hash : "", err_r), err_r);
}

/* Delete by address from table (account/alias/list; a fixed name, never user input). */
static int del_by_address(sqlite3 *db, const char *table, const char *address, const char **err_r)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE address = ?1", table);
    int n = q_exec(db, err_r, sql, "t", address);
    if (n < 0)
        return -1;
    if (n == 0) {
        *err_r = errf("no such %s %s", table, address);
        return -1;
    }
    return 0;
}

int dir_admin_account_del(sqlite3 *db, const char *address, const char **err_r)
{
    return del_by_address(db, "account", address, err_r);
}

/* Domain filter for listings: 0 with *id_r (-1 = no filter), -1 with err. */
static int domain_filter(sqlite3 *db, const char *domain, int64_t *id_r, const char **err_r)
{
    *id_r = -1;
    if (!domain)
        return 0;
    int r = q_int(db, err_r, id_r, "SELECT id FROM domain WHERE name = ?1", "t", domain);
    if (r == 0)
        *err_r = errf("no such domain %s", domain);
    return r == 1 ? 0 : -1;
}

int dir_admin_account_list(sqlite3 *db, const char *domain,
                           void (*fn)(void *ctx, const struct dir_account *a), void *ctx,
                           const char **err_r)
{
    int64_t domain_id;
    if (domain_filter(db, domain, &domain_id, err_r) < 0)
        return -1;
    sqlite3_stmt *st = q(db, err_r,
                         "SELECT " ACCOUNT_COLS " FROM account WHERE ?1 < 0 OR domain_id = ?1 "
                         "ORDER BY address, id",
                         "i", domain_id);
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct dir_account a;
        account_row(st, &a);
        fn(ctx, &a);
    }
    return dir_admin_step_done(db, st, rc, err_r);
}

/* ---- aliases ---- */

static int alias_apply(struct dir_alias *a, const struct dir_admin_alias *o, const char **err_r)
{
    if (!enabled_ok(o->enabled)) {
        *err_r = "invalid enabled value";
        return -1;
    }
    if (o->enabled != DIR_ADMIN_KEEP)
        a->enabled = o->enabled;
    if (o->target) {
        if (dir_admin_check_address(o->target, err_r) < 0)
            return -1;
        if (str_ieq(o->target, a->address)) {
            *err_r = errf("alias %s cannot point to itself", a->address);
            return -1;
        }
        str_copy(a->target, sizeof(a->target), o->target);
    }
    return 0;
}

static int alias_add_tx(sqlite3 *db, const char *address, const struct dir_admin_alias *o,
                        const char **err_r)
{
    int64_t domain_id;
    if (address_domain_id(db, address, &domain_id, err_r) != 1 ||
        check_address_free(db, "alias", address, err_r) < 0)
        return -1;
    if (!o->target) {
        *err_r = "missing alias target";
        return -1;
    }
    struct dir_alias a = {.enabled = true};
    str_copy(a.address, sizeof(a.address), address);
    if (alias_apply(&a, o, err_r) < 0)
        return -1;
    return q_exec(db, err_r,
                  "INSERT INTO alias (domain_id, address, target, enabled) "
                  "VALUES (?1, ?2, ?3, ?4)",
                  "itti", domain_id, address, a.target, (int64_t)a.enabled) < 0
               ? -1
               : 0;
}

int dir_admin_alias_add(sqlite3 *db, const char *address, const struct dir_admin_alias *o,
                        const char **err_r)
{
    if (dir_admin_check_address(address, err_r) < 0 || dir_admin_tx_begin(db, err_r) < 0)
        return -1;
    return dir_admin_tx_end(db, alias_add_tx(db, address, o, err_r), err_r);
}

static int alias_set_tx(sqlite3 *db, const char *address, const struct dir_admin_alias *o,
                        const char **err_r)
{
    sqlite3_stmt *st = q(db, err_r,
                         "SELECT id, address, target, enabled FROM alias "
                         "WHERE address = ?1",
                         "t", address);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        if (dir_admin_step_done(db, st, rc, err_r) == 0)
            *err_r = errf("no such alias %s", address);
        return -1;
    }
    struct dir_alias a = {0};
    a.id = sqlite3_column_int64(st, 0);
    col_text(st, 1, a.address, sizeof(a.address));
    col_text(st, 2, a.target, sizeof(a.target));
    a.enabled = sqlite3_column_int(st, 3) != 0;
    sqlite3_finalize(st);
    if (alias_apply(&a, o, err_r) < 0)
        return -1;
    return q_exec(db, err_r, "UPDATE alias SET target = ?2, enabled = ?3 WHERE id = ?1", "iti",
                  a.id, a.target, (int64_t)a.enabled) < 0
               ? -1
               : 0;
}

int dir_admin_alias_set(sqlite3 *db, const char *address, const struct dir_admin_alias *o,
                        const char **err_r)
{
    if (dir_admin_tx_begin(db, err_r) < 0)
        return -1;
    return dir_admin_tx_end(db, alias_set_tx(db, address, o, err_r), err_r);
}

int dir_admin_alias_del(sqlite3 *db, const char *address, const char **err_r)
{
    return del_by_address(db, "alias", address, err_r);
}

int dir_admin_alias_list(sqlite3 *db, const char *domain,
                         void (*fn)(void *ctx, const struct dir_alias *a), void *ctx,
                         const char **err_r)
{
    int64_t domain_id;
    if (domain_filter(db, domain, &domain_id, err_r) < 0)
        return -1;
    sqlite3_stmt *st = q(db, err_r,
                         "SELECT id, address, target, enabled FROM alias "
                         "WHERE ?1 < 0 OR domain_id = ?1 ORDER BY address, id",
                         "i", domain_id);
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct dir_alias a = {0};
        a.id = sqlite3_column_int64(st, 0);
        col_text(st, 1, a.address, sizeof(a.address));
        col_text(st, 2, a.target, sizeof(a.target));
        a.enabled = sqlite3_column_int(st, 3) != 0;
        fn(ctx, &a);
    }
    return dir_admin_step_done(db, st, rc, err_r);
}

/* ---- distribution lists ---- */

static const char *const list_modes[] = {"public", "members", "announce"};

static void list_row(sqlite3_stmt *st, struct dir_list *l)
{
    memset(l, 0, sizeof(*l));
    l->id = sqlite3_column_int64(st, 0);
    col_text(st, 1, l->address, sizeof(l->address));
    l->enabled = sqlite3_column_int(st, 2) != 0;
    const unsigned char *m = sqlite3_column_text(st, 3);
    for (int i = 0; i < 3; i++)
        if (m && strcmp((const char *)m, list_modes[i]) == 0)
            l->mode = (enum dir_list_mode)i;
    col_text(st, 4, l->announcer, sizeof(l->announcer));
    l->require_auth = sqlite3_column_int(st, 5) != 0;
}

static int list_apply(struct dir_list *l, const struct dir_admin_list *o, const char **err_r)
{
    if (!enabled_ok(o->enabled) || !enabled_ok(o->require_auth)) {
        *err_r = "invalid flag value";
        return -1;
    }
    if (o->enabled != DIR_ADMIN_KEEP)
        l->enabled = o->enabled;
    if (o->require_auth != DIR_ADMIN_KEEP)
        l->require_auth = o->require_auth;
    if (o->mode) {
        int m = -1;
        for (int i = 0; i < 3; i++)
            if (str_ieq(o->mode, list_modes[i]))
                m = i;
        if (m < 0) {
            *err_r = errf("invalid list mode \"%s\" (public, members or announce)", o->mode);
            return -1;
        }
        l->mode = (enum dir_list_mode)m;
    }
    if (o->announcer) {
        if (*o->announcer && dir_admin_check_address(o->announcer, err_r) < 0)
            return -1;
        str_copy(l->announcer, sizeof(l->announcer), o->announcer);
    }
    if (l->mode == DIR_LIST_ANNOUNCE && !l->announcer[0]) {
        *err_r = errf("list %s: announce mode needs an announcer address", l->address);
        return -1;
    }
    return 0;
}

static int list_add_tx(sqlite3 *db, const char *address, const struct dir_admin_list *o,
                       const char **err_r)
{
    int64_t domain_id;
    if (address_domain_id(db, address, &domain_id, err_r) != 1 ||
        check_address_free(db, "list", address, err_r) < 0)
        return -1;
    struct dir_list l = {.enabled = true};
    str_copy(l.address, sizeof(l.address), address);
    if (list_apply(&l, o, err_r) < 0)
        return -1;
    return q_exec(db, err_r,
                  "INSERT INTO list (domain_id, address, enabled, mode, announcer, require_auth) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                  "ititti", domain_id, address, (int64_t)l.enabled, list_modes[l.mode], l.announcer,
                  (int64_t)l.require_auth) < 0
               ? -1
               : 0;
}

int dir_admin_list_add(sqlite3 *db, const char *address, const struct dir_admin_list *o,
                       const char **err_r)
{
    if (dir_admin_check_address(address, err_r) < 0 || dir_admin_tx_begin(db, err_r) < 0)
        return -1;
    return dir_admin_tx_end(db, list_add_tx(db, address, o, err_r), err_r);
}

#define LIST_COLS "id, address, enabled, mode, announcer, require_auth"

/* Load list by address: 1 found, -1 with "no such list" or a database error. */
static int list_load(sqlite3 *db, const char *address, struct dir_list *l, const char **err_r)
{
    sqlite3_stmt *st =
        q(db, err_r, "SELECT " LIST_COLS " FROM list WHERE address = ?1", "t", address);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        if (dir_admin_step_done(db, st, rc, err_r) == 0)
            *err_r = errf("no such list %s", address);
        return -1;
    }
    list_row(st, l);
    sqlite3_finalize(st);
    return 1;
}

static int list_set_tx(sqlite3 *db, const char *address, const struct dir_admin_list *o,
                       const char **err_r)
{
    struct dir_list l;
    if (list_load(db, address, &l, err_r) < 0 || list_apply(&l, o, err_r) < 0)
        return -1;
    return q_exec(db, err_r,
                  "UPDATE list SET enabled = ?2, mode = ?3, announcer = ?4, require_auth = ?5 "
                  "WHERE id = ?1",
                  "iitti", l.id, (int64_t)l.enabled, list_modes[l.mode], l.announcer,
                  (int64_t)l.require_auth) < 0
               ? -1
               : 0;
}

int dir_admin_list_set(sqlite3 *db, const char *address, const struct dir_admin_list *o,
                       const char **err_r)
{
    if (dir_admin_tx_begin(db, err_r) < 0)
        return -1;
    return dir_admin_tx_end(db, list_set_tx(db, address, o, err_r), err_r);
}

int dir_admin_list_del(sqlite3 *db, const char *address, const char **err_r)
{
    return del_by_address(db, "list", address, err_r);
}

int dir_admin_list_list(sqlite3 *db, const char *domain,
                        void (*fn)(void *ctx, const struct dir_list *l, unsigned members),
                        void *ctx, const char **err_r)
{
    int64_t domain_id;
    if (domain_filter(db, domain, &domain_id, err_r) < 0)
        return -1;
    sqlite3_stmt *st = q(db, err_r,
                         "SELECT " LIST_COLS ", (SELECT count(*) FROM list_member m "
                         "WHERE m.list_id = list.id) FROM list "
                         "WHERE ?1 < 0 OR domain_id = ?1 ORDER BY address, id",
                         "i", domain_id);
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct dir_list l;
        list_row(st, &l);
        fn(ctx, &l, (unsigned)sqlite3_column_int(st, 6));
    }
    return dir_admin_step_done(db, st, rc, err_r);
}

static int list_member_add_tx(sqlite3 *db, const char *list, const char *address,
                              const char **err_r)
{
    struct dir_list l;
    if (list_load(db, list, &l, err_r) < 0)
        return -1;
    int r = q_int(db, err_r, NULL, "SELECT 1 FROM list_member WHERE list_id = ?1 AND address = ?2",
                  "it", l.id, address);
    if (r < 0)
        return -1;
    if (r == 1) {
        *err_r = errf("%s is already a member of list %s", address, l.address);
        return -1;
    }
    return q_exec(db, err_r, "INSERT INTO list_member (list_id, address) VALUES (?1, ?2)", "it",
                  l.id, address) < 0
               ? -1
               : 0;
}

int dir_admin_list_member_add(sqlite3 *db, const char *list, const char *address,
                              const char **err_r)
{
    if (dir_admin_check_address(address, err_r) < 0 || dir_admin_tx_begin(db, err_r) < 0)
        return -1;
    return dir_admin_tx_end(db, list_member_add_tx(db, list, address, err_r), err_r);
}

static int list_member_del_tx(sqlite3 *db, const char *list, const char *address,
                              const char **err_r)
{
    struct dir_list l;
    if (list_load(db, list, &l, err_r) < 0)
        return -1;
    int n = q_exec(db, err_r, "DELETE FROM list_member WHERE list_id = ?1 AND address = ?2", "it",
                   l.id, address);
    if (n < 0)
        return -1;
    if (n == 0) {
        *err_r = errf("%s is not a member of list %s", address, l.address);
        return -1;
    }
    return 0;
}

int dir_admin_list_member_del(sqlite3 *db, const char *list, const char *address,
                              const char **err_r)
{
    if (dir_admin_tx_begin(db, err_r) < 0)
        return -1;
    return dir_admin_tx_end(db, list_member_del_tx(db, list, address, err_r), err_r);
}

int dir_admin_list_member_list(sqlite3 *db, const char *list,
                               void (*fn)(void *ctx, const char *address), void *ctx,
                               const char **err_r)
{
    struct dir_list l;
    if (list_load(db, list, &l, err_r) < 0)
        return -1;
    sqlite3_stmt *st = q(db, err_r,
                         "SELECT address FROM list_member WHERE list_id = ?1 "
                         "ORDER BY id",
                         "i", l.id);
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(st, 0));
    return dir_admin_step_done(db, st, rc, err_r);
}
