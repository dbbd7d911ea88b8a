/* dir_db: opening the SQLite database with Gannet's settings (WAL, synchronous=FULL, foreign keys,
 * busy timeout) and applying the numbered schema migrations. The schema itself lives in
 * dir_migrations.c; every module that stores rows (directory, queue, mailbox store) uses it. */
#ifndef GANNET_DIR_DB_H
#define GANNET_DIR_DB_H
#include <sqlite3.h>
#include <stdbool.h>

/* Open the database at path (create it when create is true). Returns NULL and sets *err_r. */
sqlite3 *dir_db_open(const char *path, bool create, const char **err_r);
/* Apply every migration newer than PRAGMA user_version, each in its own transaction. */
int dir_db_migrate(sqlite3 *db, const char **err_r);
/* Number of the newest migration this binary knows. */
int dir_db_schema_version(void);
/* Finalizes every statement of the handle (including dir_db_prepare's) and closes it. */
void dir_db_close(sqlite3 **db);

/* Prepared statements kept for reuse on the hot paths (accept, local delivery). sql must be a
 * string literal: it is cached by its address, per thread and handle. Same contract as
 * sqlite3_prepare_v2 (SQLITE_OK and *st_r, or an error code); give the statement back with
 * dir_db_finish (reset, bindings cleared) instead of sqlite3_finalize. Only for statements that
 * are finished before anything else could ask for the same one. */
int dir_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st_r);
void dir_db_finish(sqlite3_stmt *st);
/* Run one statement without results (SAVEPOINT, RELEASE, ...) through the same cache. */
int dir_db_exec(sqlite3 *db, const char *sql);

/* The migrations, oldest first (dir_migrations.c). */
extern const char *const dir_migrations[];
extern const int dir_migrations_count;

#endif
