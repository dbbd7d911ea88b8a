/* cli_queue: `gannet queue list|show|del|flush` — inspect and manage the mail queue (queue.h).
 *
 *   gannet queue list
 *       A header line, then one tab-separated line per message with a queued or held recipient:
 *         QUEUE-ID<TAB>AGE<TAB>SIZE<TAB>SENDER<TAB>RECIPIENTS
 *       AGE as 45s / 12m / 3h / 2d; SENDER in angle brackets ("<>" = null sender); RECIPIENTS as
 *       "addr (state)" joined by ", ", every recipient of the message; a recipient that has been
 *       tried shows "addr (queued, 2 attempts, next try in 58m: <the gist of the last error>)".
 *   gannet queue show ID
 *       The message fields one per line ("Name: value"), a tab-separated recipient table
 *       (ADDRESS, ORIGINAL, KIND, STATE, ATTEMPTS, NEXT-TRY, LAST-ERROR), then the header section
 *       of the message as spooled.
 *   gannet queue del ID     delete the message and its recipients; the blob file is removed
 *                           after the commit when nothing else references it
 *   gannet queue flush      make every queued recipient due now: "N recipients scheduled"
 *
 * Exit codes per cli.h: 0, 1 (no such message, database error), 64 usage, 78 config. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "conf/conf.h"
#include "dir/dir_db.h"
#include "lib/buf.h"
#include "queue/queue.h"
#include "store/store.h"

#define MAX_HEADER_BYTES (1024 * 1024)

static const char queue_usage[] =
    "usage: gannet queue list\n"
    "       gannet queue show ID\n"
    "       gannet queue del ID\n"
    "       gannet queue flush\n"
    "\n"
    "  list    one line per queued message: QUEUE-ID, AGE, SIZE, SENDER, RECIPIENTS (with state)\n"
    "  show    the message, every recipient with state, attempts, next try and last error, and\n"
    "          the message's header section\n"
    "  del     delete the message and all its recipients from the queue\n"
    "  flush   retry every queued recipient now\n";

struct q_ctx {
    struct conf *conf;
    sqlite3 *db;
};

static int q_open(const char *config_path, struct q_ctx *c)
{
    char *errors = NULL;
    c->conf = conf_load(config_path, &errors);
    if (!c->conf) {
        fputs(errors ? errors : "gannet: cannot load configuration\n", stderr);
        free(errors);
        return CLI_EX_CONFIG;
    }
    free(errors);
    const char *err = NULL;
    c->db = dir_db_open(c->conf->database, false, &err);
    if (!c->db) {
        fprintf(stderr, "gannet: %s\n", err);
        return 1;
    }
    if (dir_db_migrate(c->db, &err) < 0) {
        fprintf(stderr, "gannet: %s\n", err);
        return 1;
    }
    return 0;
}

static void q_close(struct q_ctx *c)
{
    dir_db_close(&c->db);
    conf_free(&c->conf);
}

static int q_dberr(struct q_ctx *c)
{
    fprintf(stderr, "gannet: database error: %s\n", sqlite3_errmsg(c->db));
    return 1;
}

static const char *col(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? (const char *)s : "";
}

static void age_format(int64_t secs, char *out, size_t size)
{
    if (secs < 0)
        secs = 0;
    if (secs < 120)
        snprintf(out, size, "%" PRId64 "s", secs);
    else if (secs < 2 * 3600)
        snprintf(out, size, "%" PRId64 "m", secs / 60);
    else if (secs < 2 * 86400)
        snprintf(out, size, "%" PRId64 "h", secs / 3600);
    else
        snprintf(out, size, "%" PRId64 "d", secs / 86400);
}

static void time_format(int64_t t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm) || strftime(out, size, "%Y-%m-%d %H:%M:%S %z", &tm) == 0)
        snprintf(out, size, "%" PRId64, t);
}

/* Tabs or line breaks in a stored value would break the one-line, tab-separated output. */
static void put_field(const char *s)
{
    if (!*s) {
        fputc('-', stdout);
        return;
    }
    for (; *s; s++)
        fputc((unsigned char)*s < 0x20 ? ' ' : *s, stdout);
}

/* The line of a (multi-line) delivery error block that says the most: the remote reply, the
 * connection error, else the last non-empty line, without the indentation. */
static void error_gist(const char *block, char *out, size_t size)
{
    const char *best = NULL;
    size_t best_len = 0;
    for (const char *p = block; *p;) {
        const char *e = strpbrk(p, "\r\n");
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *t = p;
        while (t < p + n && (*t == ' ' || *t == '\t'))
            t++;
        size_t tn = (size_t)(p + n - t);
        if (tn > 0 && strncmp(t, "Error Type:", 11) != 0) {
            bool strong = strncmp(t, "Remote server replied:", 22) == 0 || strncmp(t, "Error:", 6) == 0;
            if (strong || !best || strncmp(best, "Remote server replied:", 22) != 0) {
                best = t;
                best_len = tn;
                if (strong)
                    break;
            }
        }
        if (!e)
            break;
        p = e + 1;
    }
    snprintf(out, size, "%.*s", best ? (int)best_len : 0, best ? best : "");
}

static int queue_list(struct q_ctx *c)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT m.id, m.queue_id, m.received_at, m.size, m.sender,"
                           " r.address, r.state, r.attempts, r.next_try, r.last_error"
                           " FROM message m JOIN queue_rcpt r"
                           " ON r.message_id = m.id WHERE EXISTS (SELECT 1 FROM queue_rcpt p"
                           "   WHERE p.message_id = m.id AND p.state IN ('queued', 'held'))"
                           " ORDER BY m.received_at, m.id, r.id",
                           -1, &st, NULL) != SQLITE_OK)
        return q_dberr(c);
    printf("QUEUE-ID\tAGE\tSIZE\tSENDER\tRECIPIENTS\n");
    int64_t now = (int64_t)time(NULL), current = -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (id != current) {
            if (current >= 0)
                fputc('\n', stdout);
            current = id;
            char age[32];
            age_format(now - sqlite3_column_int64(st, 2), age, sizeof(age));
            fputs(col(st, 1), stdout);
            printf("\t%s\t%" PRId64 "\t<", age, (int64_t)sqlite3_column_int64(st, 3));
            const char *sender = col(st, 4);
            for (; *sender; sender++)
                fputc((unsigned char)*sender < 0x20 ? ' ' : *sender, stdout);
            fputs(">\t", stdout);
        } else {
            fputs(", ", stdout);
        }
        put_field(col(st, 5));
        int attempts = sqlite3_column_int(st, 7);
        if (attempts == 0 || strcmp(col(st, 6), "queued") != 0) {
            printf(" (%s)", col(st, 6));
            continue;
        }
        char next[32];
        int64_t wait = sqlite3_column_int64(st, 8) - now;
        age_format(wait > 0 ? wait : 0, next, sizeof(next));
        printf(" (queued, %d attempt%s, next try in %s", attempts, attempts == 1 ? "" : "s", next);
        char gist[300];
        error_gist(col(st, 9), gist, sizeof(gist));
        if (gist[0]) {
            fputs(": ", stdout);
            put_field(gist);
        }
        fputc(')', stdout);
    }
    if (current >= 0)
        fputc('\n', stdout);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return q_dberr(c);
    return 0;
}

static int queue_show(struct q_ctx *c, const char *queue_id)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT id, queue_id, blob_id, sender, size, received_at, client_ip,"
                           " helo, auth_user FROM message WHERE queue_id = ?1 COLLATE NOCASE",
                           -1, &st, NULL) != SQLITE_OK)
        return q_dberr(c);
    sqlite3_bind_text(st, 1, queue_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            return q_dberr(c);
        fprintf(stderr, "gannet: no queued message %s\n", queue_id);
        return 1;
    }
    int64_t id = sqlite3_column_int64(st, 0);
    char blob_id[QUEUE_ID_MAX * 2];
    snprintf(blob_id, sizeof(blob_id), "%s", col(st, 2));
    char when[64], age[32];
    int64_t received = sqlite3_column_int64(st, 5);
    time_format(received, when, sizeof(when));
    age_format((int64_t)time(NULL) - received, age, sizeof(age));
    printf("Queue-ID: %s\n", col(st, 1));
    printf("Received: %s (%s ago)\n", when, age);
    printf("Sender: <%s>\n", col(st, 3));
    printf("Size: %" PRId64 "\n", (int64_t)sqlite3_column_int64(st, 4));
    printf("Client: %s\n", *col(st, 6) ? col(st, 6) : "-");
    printf("HELO: %s\n", *col(st, 7) ? col(st, 7) : "-");
    printf("Auth-User: %s\n", *col(st, 8) ? col(st, 8) : "-");
    printf("Blob: %s\n", blob_id);
    sqlite3_finalize(st);

    if (sqlite3_prepare_v2(c->db,
                           "SELECT address, original, kind, route_id, state, attempts, next_try,"
                           " last_error, hops FROM queue_rcpt WHERE message_id = ?1 ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return q_dberr(c);
    sqlite3_bind_int64(st, 1, id);
    printf("\nADDRESS\tORIGINAL\tKIND\tSTATE\tATTEMPTS\tNEXT-TRY\tLAST-ERROR\n");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        put_field(col(st, 0));
        fputc('\t', stdout);
        put_field(col(st, 1));
        printf("\t%s", col(st, 2));
        if (sqlite3_column_type(st, 3) != SQLITE_NULL)
            printf(" (route %" PRId64 ")", (int64_t)sqlite3_column_int64(st, 3));
        printf("\t%s\t%d\t", col(st, 4), sqlite3_column_int(st, 5));
        int64_t next = sqlite3_column_int64(st, 6);
        bool pending = strcmp(col(st, 4), "queued") == 0;
        if (!pending)
            fputs("-", stdout);
        else if (next <= (int64_t)time(NULL))
            fputs("now", stdout);
        else {
            char t[64];
            time_format(next, t, sizeof(t));
            fputs(t, stdout);
        }
        fputc('\t', stdout);
        put_field(col(st, 7));
        fputc('\n', stdout);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return q_dberr(c);

    struct buf hdr;
    buf_init(&hdr, 0);
    const char *err = NULL;
    int status = 0;
    printf("\n");
    if (store_blob_header_section(c->conf->data_dir, blob_id, MAX_HEADER_BYTES, &hdr, &err) < 0) {
        fprintf(stderr, "gannet: %s\n", err);
        status = 1;
    } else {
        fwrite(hdr.data, 1, hdr.len, stdout);
        if (hdr.len > 0 && hdr.data[hdr.len - 1] != '\n')
            fputc('\n', stdout); /* a message without a header/body separator */
    }
    buf_free(&hdr);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "gannet: write error: %s\n", strerror(errno));
        return 1;
    }
    return status;
}

static int queue_del(struct q_ctx *c, const char *queue_id)
{
    sqlite3_stmt *st = NULL;
    char blob_id[QUEUE_ID_MAX * 2] = "";
    char qid[QUEUE_ID_MAX * 2] = "";
    bool unlink_blob = false;
    if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return q_dberr(c);
    if (sqlite3_prepare_v2(c->db,
                           "DELETE FROM message WHERE queue_id = ?1 COLLATE NOCASE"
                           " RETURNING blob_id, queue_id",
                           -1, &st, NULL) != SQLITE_OK)
        goto dbfail;
    sqlite3_bind_text(st, 1, queue_id, -1, SQLITE_TRANSIENT);
    int rc;
    int found = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        snprintf(blob_id, sizeof(blob_id), "%s", col(st, 0));
        snprintf(qid, sizeof(qid), "%s", col(st, 1));
        found++;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE)
        goto dbfail;
    if (!found) {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        fprintf(stderr, "gannet: no queued message %s\n", queue_id);
        return 1;
    }
    if (queue_blob_release(c->db, blob_id, &unlink_blob) < 0)
        goto dbfail;
    if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto dbfail;
    /* Only now, after COMMIT, may the file go (queue.h). */
    if (unlink_blob)
        queue_blob_remove(c->db, c->conf->data_dir, blob_id);
    printf("deleted %s\n", qid);
    return 0;
dbfail:
    q_dberr(c);
    sqlite3_finalize(st);
    if (!sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return 1;
}

static int queue_flush(struct q_ctx *c)
{
    if (sqlite3_exec(c->db, "UPDATE queue_rcpt SET next_try = 0 WHERE state = 'queued'", NULL, NULL,
                     NULL) != SQLITE_OK)
        return q_dberr(c);
    int n = sqlite3_changes(c->db);
    printf("%d recipient%s scheduled\n", n, n == 1 ? "" : "s");
    return 0;
}

int cli_queue(const char *config_path, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(queue_usage, stdout);
            return 0;
        }
    if (argc < 2) {
        fprintf(stderr, "gannet queue: missing subcommand (list, show, del or flush)\n");
        return CLI_EX_USAGE;
    }
    const char *sub = argv[1];
    int want;
    if (strcmp(sub, "list") == 0 || strcmp(sub, "flush") == 0)
        want = 0;
    else if (strcmp(sub, "show") == 0 || strcmp(sub, "del") == 0)
        want = 1;
    else {
        fprintf(stderr, "gannet queue: unknown subcommand '%s' (list, show, del or flush)\n", sub);
        return CLI_EX_USAGE;
    }
    for (int i = 2; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "gannet queue %s: unknown option %s\n", sub, argv[i]);
            return CLI_EX_USAGE;
        }
    if (argc - 2 < want) {
        fprintf(stderr, "gannet queue %s: missing ID\n", sub);
        return CLI_EX_USAGE;
    }
    if (argc - 2 > want) {
        fprintf(stderr, "gannet queue %s: unexpected argument '%s'\n", sub, argv[2 + want]);
        return CLI_EX_USAGE;
    }

    struct q_ctx c = {0};
    int status = q_open(config_path, &c);
    if (status == 0) {
        if (strcmp(sub, "list") == 0)
            status = queue_list(&c);
        else if (strcmp(sub, "flush") == 0)
            status = queue_flush(&c);
        else if (strcmp(sub, "show") == 0)
            status = queue_show(&c, argv[2]);
        else
            status = queue_del(&c, argv[2]);
    }
    q_close(&c);
    return status;
}
