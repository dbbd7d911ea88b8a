/* cli_mailbox: `gannet mailbox list|cat` — read-only views of an account's stored messages.
 *
 *   gannet mailbox list ADDR [--folder NAME]
 *       A header line, then one tab-separated line per message in UID order:
 *         UID<TAB>SIZE<TAB>FLAGS<TAB>FROM<TAB>SUBJECT
 *       SIZE is the size a client sees (prepended Return-Path/Delivered-To + blob); FLAGS is "-"
 *       or the IMAP flag names separated by spaces ("\Seen \Flagged"); FROM and SUBJECT are the
 *       unfolded header values (RFC 5322 §2.2.3; no MIME decoding), tabs and control characters
 *       shown as spaces, "-" when the field is absent.
 *   gannet mailbox cat ADDR UID [--folder NAME]
 *       The stored message, byte for byte, on stdout.
 *
 * The folder defaults to INBOX; an INBOX that has not been created yet lists as empty. Exit codes
 * per cli.h: 0, 1 (no such account / folder / UID, database error), 64 usage, 78 config. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "conf/conf.h"
#include "dir/dir_db.h"
#include "dir/dir_sqlite.h"
#include "lib/buf.h"
#include "lib/str.h"
#include "store/store.h"

#define MAX_HEADER_BYTES (1024 * 1024) /* read at most this much of a blob for From/Subject */

static const char mailbox_usage[] =
    "usage: gannet mailbox list ADDR [--folder NAME]\n"
    "       gannet mailbox cat ADDR UID [--folder NAME]\n"
    "\n"
    "  list   one line per message: UID, SIZE, FLAGS, FROM, SUBJECT (tab-separated, with a\n"
    "         header line; \"-\" for no flags or an absent field)\n"
    "  cat    write the stored message, byte for byte, to stdout\n"
    "  --folder NAME   the folder to read (default INBOX)\n";

struct mb_ctx {
    struct conf *conf;
    sqlite3 *db;
    struct dir *dir;
};

static int mb_open(const char *config_path, struct mb_ctx *c)
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
    c->dir = dir_sqlite_new(c->db);
    return 0;
}

static void mb_close(struct mb_ctx *c)
{
    dir_close(&c->dir);
    dir_db_close(&c->db);
    conf_free(&c->conf);
}

/* The account id for addr; prints the error and returns -1 when there is none. */
static int mb_account(struct mb_ctx *c, const char *addr, int64_t *id_r)
{
    struct dir_account a;
    enum dir_result r = dir_account_get(c->dir, addr, &a);
    if (r == DIR_NOTFOUND) {
        fprintf(stderr, "gannet: no such account %s\n", addr);
        return -1;
    }
    if (r != DIR_OK) {
        fprintf(stderr, "gannet: account lookup for %s failed: %s\n", addr, dir_result_name(r));
        return -1;
    }
    *id_r = a.id;
    return 0;
}

static void flags_format(uint32_t flags, char *out, size_t size)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {{STORE_FLAG_SEEN, "\\Seen"},
                 {STORE_FLAG_ANSWERED, "\\Answered"},
                 {STORE_FLAG_FLAGGED, "\\Flagged"},
                 {STORE_FLAG_DELETED, "\\Deleted"},
                 {STORE_FLAG_DRAFT, "\\Draft"}};
    out[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!(flags & names[i].bit))
            continue;
        int n = snprintf(out + len, size - len, "%s%s", len ? " " : "", names[i].name);
        if (n < 0 || (size_t)n >= size - len)
            break;
        len += (size_t)n;
    }
    if (!len)
        snprintf(out, size, "-");
}

struct list_ctx {
    const char *data_dir;
    int status;
};

static int list_one(void *ctx, const struct store_mail *m)
{
    struct list_ctx *lc = ctx;
    struct buf hdr;
    buf_init(&hdr, 0);
    char *from = NULL, *subject = NULL;
    const char *err = NULL;
    if (store_blob_header_section(lc->data_dir, m->blob_id, MAX_HEADER_BYTES, &hdr, &err) < 0) {
        fprintf(stderr, "gannet: %s\n", err);
        lc->status = 1;
    } else {
        from = store_header_value(hdr.data, hdr.len, "From");
        subject = store_header_value(hdr.data, hdr.len, "Subject");
    }
    char flags[80];
    flags_format(m->flags, flags, sizeof(flags));
    printf("%" PRIu32 "\t%" PRIu64 "\t%s\t%s\t%s\n", m->uid, m->size, flags,
           from && *from ? from : "-", subject && *subject ? subject : "-");
    free(from);
    free(subject);
    buf_free(&hdr);
    return 0;
}

static int mailbox_list(struct mb_ctx *c, const char *addr, const char *folder)
{
    int64_t account_id;
    if (mb_account(c, addr, &account_id) < 0)
        return 1;
    struct store_folder f;
    const char *err = NULL;
    int r = store_folder_get(c->db, account_id, folder, &f, &err);
    if (r < 0) {
        fprintf(stderr, "gannet: %s\n", err);
        return 1;
    }
    if (r == 0 && !str_ieq(folder, "INBOX")) {
        fprintf(stderr, "gannet: no folder %s in %s\n", folder, addr);
        return 1;
    }
    printf("UID\tSIZE\tFLAGS\tFROM\tSUBJECT\n");
    if (r == 0)
        return 0;
    struct list_ctx lc = {.data_dir = c->conf->data_dir, .status = 0};
    if (store_mail_list(c->db, f.id, list_one, &lc, &err) < 0) {
        fprintf(stderr, "gannet: %s\n", err);
        return 1;
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "gannet: write error: %s\n", strerror(errno));
        return 1;
    }
    return lc.status;
}

static int mailbox_cat(struct mb_ctx *c, const char *addr, uint32_t uid, const char *folder)
{
    int64_t account_id;
    if (mb_account(c, addr, &account_id) < 0)
        return 1;
    struct store_folder f;
    struct store_mail m;
    const char *err = NULL;
    int r = store_folder_get(c->db, account_id, folder, &f, &err);
    if (r > 0)
        r = store_mail_get(c->db, f.id, uid, &m, &err);
    if (r < 0) {
        fprintf(stderr, "gannet: %s\n", err);
        return 1;
    }
    if (r == 0) {
        fprintf(stderr, "gannet: no message with UID %" PRIu32 " in %s of %s\n", uid, folder, addr);
        return 1;
    }
    struct buf out;
    buf_init(&out, 0);
    if (store_mail_read(c->conf->data_dir, &m, &out, &err) < 0) {
        fprintf(stderr, "gannet: %s\n", err);
        buf_free(&out);
        return 1;
    }
    size_t len = out.len;
    size_t w = fwrite(out.data, 1, len, stdout);
    buf_free(&out);
    if (w != len || fflush(stdout) != 0) {
        fprintf(stderr, "gannet: write error: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

static int parse_uid(const char *s, uint32_t *uid_r)
{
    if (!*s || *s == '-' || *s == '+')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v == 0 || v > UINT32_MAX)
        return -1;
    *uid_r = (uint32_t)v;
    return 0;
}

int cli_mailbox(const char *config_path, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(mailbox_usage, stdout);
            return 0;
        }
    if (argc < 2) {
        fprintf(stderr, "gannet mailbox: missing subcommand (list or cat)\n");
        return CLI_EX_USAGE;
    }
    const char *sub = argv[1];
    bool is_list = strcmp(sub, "list") == 0, is_cat = strcmp(sub, "cat") == 0;
    if (!is_list && !is_cat) {
        fprintf(stderr, "gannet mailbox: unknown subcommand '%s' (list or cat)\n", sub);
        return CLI_EX_USAGE;
    }
    const char *folder = "INBOX";
    const char *pos[2] = {NULL, NULL};
    int npos = 0, want = is_list ? 1 : 2;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--folder") == 0) {
            if (i + 1 >= argc || !*argv[i + 1]) {
                fprintf(stderr, "gannet mailbox %s: --folder needs a NAME\n", sub);
                return CLI_EX_USAGE;
            }
            folder = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "gannet mailbox %s: unknown option %s\n", sub, argv[i]);
            return CLI_EX_USAGE;
        } else if (npos < want) {
            pos[npos++] = argv[i];
        } else {
            fprintf(stderr, "gannet mailbox %s: unexpected argument '%s'\n", sub, argv[i]);
            return CLI_EX_USAGE;
        }
    }
    if (npos < 1) {
        fprintf(stderr, "gannet mailbox %s: missing ADDR\n", sub);
        return CLI_EX_USAGE;
    }
    uint32_t uid = 0;
    if (is_cat) {
        if (npos < 2) {
            fprintf(stderr, "gannet mailbox cat: missing UID\n");
            return CLI_EX_USAGE;
        }
        if (parse_uid(pos[1], &uid) < 0) {
            fprintf(stderr, "gannet mailbox cat: invalid UID '%s'\n", pos[1]);
            return CLI_EX_USAGE;
        }
    }

    struct mb_ctx c = {0};
    int status = mb_open(config_path, &c);
    if (status == 0)
        status = is_list ? mailbox_list(&c, pos[0], folder) : mailbox_cat(&c, pos[0], uid, folder);
    mb_close(&c);
    return status;
}
