/* dir_admin_int: helpers shared by dir_admin.c and dir_admin_net.c (not a public API).
 *
 * Queries take a type string naming each bound parameter in order: 't' const char * (NULL binds
 * NULL), 'i' int64_t (pass int64_t, not int), 'b' 16-byte blob (const uint8_t *). Every
 * failure sets *err_r ("database error: ..."). */
#ifndef GANNET_DIR_DIR_ADMIN_INT_H
#define GANNET_DIR_DIR_ADMIN_INT_H
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Format into a thread-local buffer (the *err_r storage). */
const char *dir_admin_errf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *dir_admin_dberr(sqlite3 *db);
/* Prepared and bound statement, or NULL. */
sqlite3_stmt *dir_admin_q(sqlite3 *db, const char **err_r, const char *sql, const char *types, ...);
/* Run a statement: number of changed rows, or -1. */
int dir_admin_exec(sqlite3 *db, const char **err_r, const char *sql, const char *types, ...);
/* First column of the first row: 1 (with *v_r if not NULL), 0 when no row, -1 on error. */
int dir_admin_int(sqlite3 *db, const char **err_r, int64_t *v_r, const char *sql, const char *types,
                  ...);
/* Finalize st after a loop ended with rc: 0 when rc is SQLITE_DONE, else -1 with err. */
int dir_admin_step_done(sqlite3 *db, sqlite3_stmt *st, int rc, const char **err_r);
int dir_admin_tx_begin(sqlite3 *db, const char **err_r);
/* Commit when ret >= 0, else roll back; returns 0 or -1. */
int dir_admin_tx_end(sqlite3 *db, int ret, const char **err_r);
void dir_admin_col_text(sqlite3_stmt *st, int col, char *out, size_t size);
/* True when s holds a control character (they would break one-line, tab-separated output). */
bool dir_admin_has_ctl(const char *s);
/* addr_is_valid / addr_domain_is_valid with the CLI's messages. */
int dir_admin_check_address(const char *address, const char **err_r);
int dir_admin_check_domain(const char *name, const char **err_r);

#endif
