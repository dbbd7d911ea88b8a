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

#endif
