/* store: the mailbox store — folders and messages of each account, shaped for IMAP from the start
 * (UIDVALIDITY, UIDNEXT, per-message UID, flags, internal date, size, modification sequence;
 * RFC 9051, RFC 7162). Metadata lives in the database (tables folder, mail); bodies are blobs
 * shared with the queue (queue.h). A mailbox copy is read as
 *   "Return-Path: <sender>\r\n" [ "Delivered-To: <rcpt>\r\n" ] + blob bytes
 * (the prepended headers are kept in the row, never written into the blob). */
#ifndef GANNET_STORE_STORE_H
#define GANNET_STORE_STORE_H
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "lib/buf.h"

#define STORE_FLAG_SEEN 1
#define STORE_FLAG_ANSWERED 2
#define STORE_FLAG_FLAGGED 4
#define STORE_FLAG_DELETED 8
#define STORE_FLAG_DRAFT 16

/* Find or create folder `name` of the account (INBOX created with a fresh UIDVALIDITY). */
int store_folder_ensure(sqlite3 *db, int64_t account_id, const char *name, int64_t *folder_id_r,
                        const char **err_r);
/* Append a message to a folder inside the caller's transaction: next UID, modseq bump, row.
 * delivered_to may be NULL. size = length of the prepended headers + blob_size. */
int store_append(sqlite3 *db, int64_t folder_id, const char *blob_id, uint64_t blob_size,
                 const char *return_path, const char *delivered_to, time_t internal_date,
                 uint32_t flags, uint32_t *uid_r, const char **err_r);
/* Current total size in bytes of every message of the account (for quota). */
int store_account_size(sqlite3 *db, int64_t account_id, uint64_t *size_r, const char **err_r);
/* Read a stored message as the client sees it (prepended headers + blob) into out. */
int store_message_read(sqlite3 *db, const char *data_dir, int64_t account_id, const char *folder,
                       uint32_t uid, struct buf *out, const char **err_r);

/* ---- lookups used by the CLI, POP3 and IMAP (added by the store module) ---- */

#define STORE_FOLDER_NAME_MAX 256
#define STORE_BLOB_ID_MAX 64

struct store_folder {
    int64_t id;
    int64_t account_id;
    char name[STORE_FOLDER_NAME_MAX];
    uint32_t uidvalidity;
    uint32_t uidnext;
    uint64_t highest_modseq;
};

struct store_mail {
    int64_t id;
    int64_t folder_id;
    uint32_t uid;
    char blob_id[STORE_BLOB_ID_MAX];
    uint64_t size; /* prepended headers + blob, as read */
    time_t internal_date;
    uint32_t flags; /* STORE_FLAG_* */
    uint64_t modseq;
    char return_path[256];  /* envelope sender, "" = null sender */
    char delivered_to[256]; /* "" = no Delivered-To line */
};

/* Look a folder up without creating it: returns 1 (found, *out filled), 0 (no such folder), -1. */
int store_folder_get(sqlite3 *db, int64_t account_id, const char *name, struct store_folder *out,
                     const char **err_r);
/* One message by UID: returns 1 (found), 0 (no such UID), -1. */
int store_mail_get(sqlite3 *db, int64_t folder_id, uint32_t uid, struct store_mail *out,
                   const char **err_r);
/* Call fn for every message of the folder in UID order; fn returning non-zero stops the walk.
 * Returns the number of messages visited, or -1. */
int store_mail_list(sqlite3 *db, int64_t folder_id,
                    int (*fn)(void *ctx, const struct store_mail *mail), void *ctx,
                    const char **err_r);
/* Append the lines a mailbox copy starts with: "Return-Path: <sender>\r\n" (RFC 5322 §3.6.7,
 * "<>" for the null sender) and, when delivered_to is non-empty, "Delivered-To: rcpt\r\n".
 * Returns the number of bytes appended, or -1 when out is full. */
int store_prefix_format(const char *return_path, const char *delivered_to, struct buf *out);
/* Read one stored message (prepended headers + blob bytes) into out. */
int store_mail_read(const char *data_dir, const struct store_mail *mail, struct buf *out,
                    const char **err_r);

/* The header section of a blob (up to and including the first empty line, or the whole blob
 * when it has none), at most max bytes (0 = no limit), appended to out. */
int store_blob_header_section(const char *data_dir, const char *blob_id, size_t max,
                              struct buf *out, const char **err_r);
/* The unfolded value (RFC 5322 §2.2.3) of the first header field called name (ASCII case-
 * insensitive) in hdr[0..len), with CR/LF removed, other control characters shown as spaces and
 * outer blanks trimmed; malloc'ed (caller frees), NULL when absent. No MIME decoding. */
char *store_header_value(const char *hdr, size_t len, const char *name);

#endif
