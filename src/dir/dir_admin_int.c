/* dir_admin_int: the small SQLite query, transaction and validation helpers shared by
 * dir_admin.c and dir_admin_net.c (declared in dir_admin_int.h; not a public API). Errors go to
 * a thread-local message buffer returned through *err_r. */
#include "dir/dir_admin_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dir/dir.h"
#include "lib/str.h"
#include "mail/addr.h"

static __thread char errbuf[768];

const char *dir_admin_errf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
    va_end(ap);
    return errbuf;
}

const char *dir_admin_dberr(sqlite3 *db)
{
    return dir_admin_errf("database error: %s", sqlite3_errmsg(db));
}

static sqlite3_stmt *vprep(sqlite3 *db, const char **err_r, const char *sql, const char *types,
                           va_list ap)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        *err_r = dir_admin_dberr(db);
        sqlite3_finalize(st);
        return NULL;
    }
    for (int i = 0; types[i]; i++) {
        switch (types[i]) {
        case 't':
            sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
            break;
        case 'i':
            sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
            break;
        case 'b':
            sqlite3_bind_blob(st, i + 1, va_arg(ap, const uint8_t *), 16, SQLITE_TRANSIENT);
            break;
        default:
            break;
        }
    }
    return st;
}

sqlite3_stmt *dir_admin_q(sqlite3 *db, const char **err_r, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = vprep(db, err_r, sql, types, ap);
    va_end(ap);
    return st;
}

int dir_admin_exec(sqlite3 *db, const char **err_r, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = vprep(db, err_r, sql, types, ap);
    va_end(ap);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        *err_r = dir_admin_dberr(db);
        return -1;
    }
    return sqlite3_changes(db);
}

int dir_admin_int(sqlite3 *db, const char **err_r, int64_t *v_r, const char *sql, const char *types,
                  ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = vprep(db, err_r, sql, types, ap);
    va_end(ap);
    if (!st)
        return -1;
    int rc = sqlite3_step(st), ret;
    if (rc == SQLITE_ROW) {
        if (v_r)
            *v_r = sqlite3_column_int64(st, 0);
        ret = 1;
    } else if (rc == SQLITE_DONE) {
        ret = 0;
    } else {
        *err_r = dir_admin_dberr(db);
        ret = -1;
    }
    sqlite3_finalize(st);
    return ret;
}

int dir_admin_step_done(sqlite3 *db, sqlite3_stmt *st, int rc, const char **err_r)
{
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        *err_r = dir_admin_dberr(db);
        return -1;
    }
    return 0;
}

int dir_admin_tx_begin(sqlite3 *db, const char **err_r)
{
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        *err_r = dir_admin_dberr(db);
        return -1;
    }
    return 0;
}

int dir_admin_tx_end(sqlite3 *db, int ret, const char **err_r)
{
    if (ret < 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        *err_r = dir_admin_dberr(db);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

void dir_admin_col_text(sqlite3_stmt *st, int col, char *out, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    str_copy(out, size, t ? (const char *)t : "");
}

bool dir_admin_has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

int dir_admin_check_address(const char *address, const char **err_r)
{
    if (!address || !addr_is_valid(address) || dir_admin_has_ctl(address)) {
        *err_r = dir_admin_errf("invalid address \"%s\"", address ? address : "");
        return -1;
    }
    return 0;
}

int dir_admin_check_domain(const char *name, const char **err_r)
{
    if (!name || !addr_domain_is_valid(name) || dir_admin_has_ctl(name) ||
        strlen(name) >= DIR_NAME_MAX) {
        *err_r = dir_admin_errf("invalid domain \"%s\"", name ? name : "");
        return -1;
    }
    return 0;
}
