/* policy_autoban: failed-login counting and IP bans (hmailserver-behaviour.md §3.5; see
 * policy_autoban.h).
 *
 *   policy_autoban_record(db, ip, user, conf, now, &banned, &err)  one failure, maybe a ban
 *   policy_autoban_prune(db, conf, now, &err)                      drop old failures and bans
 *   policy_autoban_printable(s, out, size)                         safe text for names and logs
 *
 * A failure is counted when it happened within the window: at > now - window. Recording runs in
 * one BEGIN IMMEDIATE transaction (prune, insert, count, and on reaching the limit: clear the
 * address's failures and insert the ban range), so two workers failing for the same address at
 * once cannot both miss the limit or both create a ban. Expired auto-ban ranges are deleted before
 * a new one is named, so a user banned again after a ban ran out gets the plain name back. Any
 * SQLite error rolls back and returns -1 with "database error: ..." in *err_r. */
#include "policy/policy_autoban.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dir/dir_admin.h"
#include "dir/dir_cache.h"
#include "dir/dir_sqlite.h"
#include "lib/log.h"
#include "lib/str.h"

#define USER_STORE_MAX 255 /* bytes of the user name kept in auth_failure */

static __thread char errbuf[512];

static const char *dberr(sqlite3 *db, const char *what)
{
    snprintf(errbuf, sizeof(errbuf), "database error: %s: %s", what, sqlite3_errmsg(db));
    return errbuf;
}

void policy_autoban_printable(const char *s, char *out, size_t size)
{
    size_t n = 0;
    if (size == 0)
        return;
    for (; s[n] && n + 1 < size; n++) {
        unsigned char c = (unsigned char)s[n];
        out[n] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    /* When the cut falls inside a UTF-8 sequence (the next byte is a continuation byte), drop
     * the partial sequence: at most 3 continuation bytes and their lead byte. */
    if (s[n] && ((unsigned char)s[n] & 0xc0) == 0x80) {
        size_t end = n;
        while (end > 0 && n - end < 3 && ((unsigned char)out[end - 1] & 0xc0) == 0x80)
            end--;
        if (end > 0 && ((unsigned char)out[end - 1] & 0xc0) == 0xc0)
            n = end - 1;
    }
    out[n] = '\0';
}

/* Prepare sql, or NULL with *err_r. */
static sqlite3_stmt *prep(sqlite3 *db, const char *sql, const char **err_r)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        *err_r = dberr(db, "prepare");
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* Step st to completion and finalize it: changed rows, or -1 with *err_r. */
/* Set when the current transaction added or removed an IP range (see tx_end). */
static __thread bool iprange_changed;

static int finish(sqlite3 *db, sqlite3_stmt *st, const char *what, const char **err_r)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        *err_r = dberr(db, what);
        return -1;
    }
    return sqlite3_changes(db);
}

static int delete_old_failures(sqlite3 *db, int64_t cutoff, const char **err_r)
{
    sqlite3_stmt *st = prep(db, "DELETE FROM auth_failure WHERE at <= ?1", err_r);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, cutoff);
    return finish(db, st, "deleting old login failures", err_r);
}

static int delete_expired_bans(sqlite3 *db, int64_t now, const char **err_r)
{
    sqlite3_stmt *st = prep(db,
                            "DELETE FROM iprange WHERE substr(name, 1, ?1) = ?2 "
                            "AND expires <> 0 AND expires <= ?3",
                            err_r);
    if (!st)
        return -1;
    sqlite3_bind_int(st, 1, (int)strlen(POLICY_AUTOBAN_PREFIX));
    sqlite3_bind_text(st, 2, POLICY_AUTOBAN_PREFIX, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    int n = finish(db, st, "deleting expired auto-ban ranges", err_r);
    if (n > 0)
        iprange_changed = true;
    return n;
}

/* Insert the failure and count the address's failures within the window (including it). */
static int64_t add_failure(sqlite3 *db, const char *ipstr, const char *user, int64_t now,
                           int64_t cutoff, const char **err_r)
{
    size_t ulen = strnlen(user, USER_STORE_MAX);
    sqlite3_stmt *st =
        prep(db, "INSERT INTO auth_failure (ip, user, at) VALUES (?1, ?2, ?3)", err_r);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, ipstr, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, user, (int)ulen, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    if (finish(db, st, "recording a login failure", err_r) < 0)
        return -1;
    st = prep(db, "SELECT count(*) FROM auth_failure WHERE ip = ?1 AND at > ?2", err_r);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, ipstr, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, cutoff);
    int64_t n = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    else
        *err_r = dberr(db, "counting login failures");
    sqlite3_finalize(st);
    return n;
}

/* 1 when an iprange called name exists, 0 when not, -1 on error. */
static int range_exists(sqlite3 *db, const char *name, const char **err_r)
{
    sqlite3_stmt *st = prep(db, "SELECT 1 FROM iprange WHERE name = ?1", err_r);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), r;
    if (rc == SQLITE_ROW)
        r = 1;
    else if (rc == SQLITE_DONE)
        r = 0;
    else {
        *err_r = dberr(db, "looking up an IP range");
        r = -1;
    }
    sqlite3_finalize(st);
    return r;
}

/* "Auto-ban: <user><suffix>" within DIR_IPRANGE_NAME_MAX characters (the user part is cut). */
static void ban_name(const char *user, const char *suffix, char *out, size_t size)
{
    char u[DIR_IPRANGE_NAME_MAX + 1];
    size_t room = DIR_IPRANGE_NAME_MAX - strlen(POLICY_AUTOBAN_PREFIX) - strlen(suffix);
    policy_autoban_printable(*user ? user : "(empty)", u,
                             room + 1 < sizeof(u) ? room + 1 : sizeof(u));
    snprintf(out, size, "%s%s%s", POLICY_AUTOBAN_PREFIX, u, suffix);
}

/* Create the ban range for ip; the name is made unique. Returns 0 or -1. */
static int insert_ban(sqlite3 *db, const struct ipaddr *ip, const char *ipstr, const char *user,
                      int64_t expires, char *name, size_t name_size, const char **err_r)
{
    char suffix[IPADDR_STRLEN + 16];
    int r = 1;
    /* "Auto-ban: u", then "Auto-ban: u (ip)", "Auto-ban: u (ip) 2", ... */
    for (int i = 0; i < 10 && r == 1; i++) {
        if (i == 0)
            suffix[0] = '\0';
        else if (i == 1)
            snprintf(suffix, sizeof(suffix), " (%s)", ipstr);
        else
            snprintf(suffix, sizeof(suffix), " (%s) %d", ipstr, i);
        ban_name(user, suffix, name, name_size);
        if ((r = range_exists(db, name, err_r)) < 0)
            return -1;
    }
    if (r == 1) {
        snprintf(errbuf, sizeof(errbuf), "no free name for an auto-ban range (last tried \"%s\")",
                 name);
        *err_r = errbuf;
        return -1;
    }
    sqlite3_stmt *st = prep(db,
                            "INSERT INTO iprange (name, family, ip_from, ip_to, priority, flags, "
                            "expires) VALUES (?1, ?2, ?3, ?3, ?4, 0, ?5)",
                            err_r);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, dir_sqlite_family(ip->family));
    sqlite3_bind_blob(st, 3, ip->b, 16, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, POLICY_AUTOBAN_PRIORITY);
    sqlite3_bind_int64(st, 5, expires);
    if (finish(db, st, "creating the auto-ban range", err_r) < 0)
        return -1;
    iprange_changed = true;
    return 0;
}

static int clear_failures(sqlite3 *db, const char *ipstr, const char **err_r)
{
    sqlite3_stmt *st = prep(db, "DELETE FROM auth_failure WHERE ip = ?1", err_r);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, ipstr, -1, SQLITE_STATIC);
    return finish(db, st, "clearing login failures", err_r) < 0 ? -1 : 0;
}

static int tx_begin(sqlite3 *db, const char **err_r)
{
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        *err_r = dberr(db, "begin");
        return -1;
    }
    return 0;
}

/* Commit when ret >= 0, else roll back. Returns ret, or -1 when the commit failed. */
static int tx_end(sqlite3 *db, int ret, const char **err_r)
{
    bool changed = iprange_changed;
    iprange_changed = false;
    if (ret >= 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
        if (changed)
            dir_cache_note_change(); /* the new or expired ban is seen at once */
        return ret;
    }
    if (ret >= 0) {
        *err_r = dberr(db, "commit");
        ret = -1;
    }
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return ret;
}

/* now is whole seconds (the failure happened up to a second later) and a range matches while
 * expires > the current second, so one second more makes the ban last at least ban_s. */
static int64_t ban_expiry(int64_t now, const struct policy_autoban_conf *c)
{
    return now + (int64_t)c->ban_s + 1;
}

/* The body of policy_autoban_record inside the transaction: 1 banned, 0 not, -1 error. */
static int record_tx(sqlite3 *db, const struct ipaddr *ip, const char *ipstr, const char *user,
                     const struct policy_autoban_conf *c, int64_t now, const char **err_r)
{
    int64_t cutoff = now - (int64_t)c->window_s;
    if (delete_old_failures(db, cutoff, err_r) < 0)
        return -1;
    int64_t n = add_failure(db, ipstr, user, now, cutoff, err_r);
    if (n < 0)
        return -1;
    if (n < (int64_t)c->max_attempts)
        return 0;
    if (clear_failures(db, ipstr, err_r) < 0)
        return -1;
    char shown[128];
    policy_autoban_printable(user, shown, sizeof(shown));
    if (c->ban_s == 0) {
        log_warn("auto-ban: %s: %lld failed logins (last as \"%s\"); closing, no ban (ban = 0)",
                 ipstr, (long long)n, shown);
        return 1;
    }
    char name[DIR_IPRANGE_NAME_MAX + 1];
    if (delete_expired_bans(db, now, err_r) < 0 ||
        insert_ban(db, ip, ipstr, user, ban_expiry(now, c), name, sizeof(name), err_r) < 0)
        return -1;
    log_warn("auto-ban: %s banned for %us after %lld failed logins (last as \"%s\"): IP range "
             "\"%s\"",
             ipstr, c->ban_s, (long long)n, shown, name);
    return 1;
}

int policy_autoban_record(sqlite3 *db, const struct ipaddr *ip, const char *user,
                          const struct policy_autoban_conf *c, time_t now, bool *banned_r,
                          const char **err_r)
{
    *banned_r = false;
    if (!c->enabled || c->max_attempts == 0)
        return 0;
    char ipstr[IPADDR_STRLEN];
    ipaddr_format(ip, ipstr);
    if (tx_begin(db, err_r) < 0)
        return -1;
    int r = tx_end(db, record_tx(db, ip, ipstr, user ? user : "", c, (int64_t)now, err_r), err_r);
    if (r < 0)
        return -1;
    *banned_r = r == 1;
    return 0;
}

int policy_autoban_prune(sqlite3 *db, const struct policy_autoban_conf *c, time_t now,
                         const char **err_r)
{
    if (tx_begin(db, err_r) < 0)
        return -1;
    int a = delete_old_failures(db, (int64_t)now - (int64_t)c->window_s, err_r);
    int b = a < 0 ? -1 : delete_expired_bans(db, (int64_t)now, err_r);
    return tx_end(db, b < 0 ? -1 : a + b, err_r);
}
