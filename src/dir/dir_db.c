/* dir_db: open SQLite with the durability settings of design.md §4 and run schema migrations.
 * Failures return NULL/-1 with a static or sqlite-owned message in *err_r. */
#include "dir/dir_db.h"

#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

#include "lib/log.h"

#define DIR_DB_BUSY_SLEEP_US 250
#define DIR_DB_BUSY_LIMIT_US (5 * 1000 * 1000)

static int dir_db_busy(void *arg, int tries)
{
    (void)arg;
    if ((long long)tries * DIR_DB_BUSY_SLEEP_US >= DIR_DB_BUSY_LIMIT_US)
        return 0; /* give up: the caller reports SQLITE_BUSY (a temporary failure) */
    usleep(DIR_DB_BUSY_SLEEP_US);
    return 1;
}

sqlite3 *dir_db_open(const char *path, bool create, const char **err_r)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        static __thread char msg[512];
        snprintf(msg, sizeof(msg), "cannot open database %s: %s", path,
                 db ? sqlite3_errmsg(db) : "out of memory");
        *err_r = msg;
        sqlite3_close(db);
        return NULL;
    }
    /* Writers from several worker threads (accept commits, deliveries, scheduler) take turns on
     * the database. SQLite's own busy handler sleeps 1, 2, 5, 10... ms between tries, far longer
     * than a commit here takes; poll every 250 us instead, for up to 5 s. */
    sqlite3_busy_handler(db, dir_db_busy, NULL);
    static const char *pragmas = "PRAGMA journal_mode=WAL;"
                                 "PRAGMA synchronous=FULL;"
                                 "PRAGMA foreign_keys=ON;";
    char *emsg = NULL;
    if (sqlite3_exec(db, pragmas, NULL, NULL, &emsg) != SQLITE_OK) {
        static __thread char msg[512];
        snprintf(msg, sizeof(msg), "cannot configure database %s: %s", path,
                 emsg ? emsg : "unknown error");
        sqlite3_free(emsg);
        sqlite3_close(db);
        *err_r = msg;
        return NULL;
    }
    return db;
}

int dir_db_schema_version(void)
{
    return dir_migrations_count;
}

int dir_db_migrate(sqlite3 *db, const char **err_r)
{
    sqlite3_stmt *st = NULL;
    int current = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
        *err_r = sqlite3_errmsg(db);
        return -1;
    }
    if (sqlite3_step(st) == SQLITE_ROW)
        current = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (current > dir_migrations_count) {
        *err_r = "database schema is newer than this gannet binary";
        return -1;
    }
    for (int i = current; i < dir_migrations_count; i++) {
        char *emsg = NULL;
        char setver[64];
        snprintf(setver, sizeof(setver), "PRAGMA user_version=%d;", i + 1);
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &emsg) != SQLITE_OK ||
            sqlite3_exec(db, dir_migrations[i], NULL, NULL, &emsg) != SQLITE_OK ||
            sqlite3_exec(db, setver, NULL, NULL, &emsg) != SQLITE_OK ||
            sqlite3_exec(db, "COMMIT", NULL, NULL, &emsg) != SQLITE_OK) {
            static __thread char msg[512];
            snprintf(msg, sizeof(msg), "migration %d failed: %s", i + 1,
                     emsg ? emsg : sqlite3_errmsg(db));
            sqlite3_free(emsg);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            *err_r = msg;
            return -1;
        }
        log_debug("database migrated to schema %d", i + 1);
    }
    return 0;
}

void dir_db_close(sqlite3 **db)
{
    if (*db) {
        sqlite3_close(*db);
        *db = NULL;
    }
}
