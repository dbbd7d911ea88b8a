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
void dir_db_close(sqlite3 **db);

/* The migrations, oldest first (dir_migrations.c). */
extern const char *const dir_migrations[];
extern const int dir_migrations_count;

#endif
