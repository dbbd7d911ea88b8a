/* dir_sqlite: the SQLite backend of the directory API (dir.h).
 *
 * dir_sqlite_new() wraps an open, migrated handle (dir_db.h); the handle stays owned by the
 * caller and must outlive the struct dir. dir_close() frees only the wrapper and its cached
 * prepared statements. Like every struct dir, one thread at a time. */
#ifndef GANNET_DIR_DIR_SQLITE_H
#define GANNET_DIR_DIR_SQLITE_H
#include <sqlite3.h>

#include "dir/dir.h"

struct dir *dir_sqlite_new(sqlite3 *db);

/* Map an SQLite result code to a lookup outcome: SQLITE_DONE -> DIR_NOTFOUND; busy, locked,
 * I/O, full, out-of-memory, cannot-open and protocol errors -> DIR_TEMPFAIL; the rest ->
 * DIR_PERMFAIL. (SQLITE_OK/SQLITE_ROW -> DIR_OK.) */
enum dir_result dir_sqlite_result(int rc);

/* IP family as stored in the iprange.family column (4 or 6) for an AF_INET/AF_INET6 value. */
int dir_sqlite_family(int af);

#endif
