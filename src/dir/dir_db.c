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
    /* temp_store=MEMORY: the group commit nests a SAVEPOINT per message, whose undo pages
     * (the statement journal) would otherwise go to a temporary file — 16 page writes per
     * message that are never needed for durability (bench/profile.sh found them). */
    static const char *pragmas = "PRAGMA journal_mode=WAL;"
                                 "PRAGMA synchronous=FULL;"
                                 "PRAGMA temp_store=MEMORY;"
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

/* ---- statement cache (per thread) ---- */

#define DIR_DB_STMT_CACHE 64

static __thread struct {
    sqlite3 *db;
    const char *sql;
    sqlite3_stmt *st;
} stmt_cache[DIR_DB_STMT_CACHE];
static __thread size_t stmt_cache_n;

int dir_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st_r)
{
    for (size_t i = 0; i < stmt_cache_n; i++)
        if (stmt_cache[i].sql == sql && stmt_cache[i].db == db) {
            *st_r = stmt_cache[i].st;
            return SQLITE_OK;
        }
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st_r, NULL);
    if (rc == SQLITE_OK && stmt_cache_n < DIR_DB_STMT_CACHE) {
        stmt_cache[stmt_cache_n].db = db;
        stmt_cache[stmt_cache_n].sql = sql;
        stmt_cache[stmt_cache_n].st = *st_r;
        stmt_cache_n++;
    }
    /* A full cache still works: the statement is finalized by dir_db_close. */
    return rc;
}

void dir_db_finish(sqlite3_stmt *st)
{
    if (!st)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

int dir_db_exec(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int rc = dir_db_prepare(db, sql, &st);
    if (rc != SQLITE_OK)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    dir_db_finish(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

void dir_db_close(sqlite3 **db)
{
    if (!*db)
        return;
    for (size_t i = 0; i < stmt_cache_n;) {
        if (stmt_cache[i].db == *db)
            stmt_cache[i] = stmt_cache[--stmt_cache_n];
        else
            i++;
    }
    sqlite3_stmt *st;
    while ((st = sqlite3_next_stmt(*db, NULL)) != NULL)
        sqlite3_finalize(st);
    sqlite3_close(*db);
    *db = NULL;
}
