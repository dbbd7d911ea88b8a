/* dir_migrations: the database schema as numbered migrations. Never edit a migration that has
 * shipped; add a new one. Migration N sets PRAGMA user_version = N (dir_db.c).
 *
 * Conventions: names and addresses are stored as entered but compared COLLATE NOCASE; booleans
 * are 0/1 integers; times are unix seconds; IP addresses are 16-byte blobs (IPv4 v4-mapped, see
 * lib/ipaddr.h) with a family column, so ranges compare with plain blob ordering. */
#include "dir/dir_db.h"

const char *const dir_migrations[] = {
    /* 1: directory, queue and mailbox store */
    "CREATE TABLE domain ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  enabled INTEGER NOT NULL DEFAULT 1,"
    "  max_message_kb INTEGER NOT NULL DEFAULT 0,"
    "  catch_all TEXT NOT NULL DEFAULT '' COLLATE NOCASE,"
    "  plus_char TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE domain_alias ("
    "  id INTEGER PRIMARY KEY,"
    "  alias TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  domain_id INTEGER NOT NULL REFERENCES domain(id) ON DELETE CASCADE);"
    "CREATE TABLE account ("
    "  id INTEGER PRIMARY KEY,"
    "  domain_id INTEGER NOT NULL REFERENCES domain(id) ON DELETE CASCADE,"
    "  address TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  password_hash TEXT NOT NULL DEFAULT '',"
    "  enabled INTEGER NOT NULL DEFAULT 1,"
    "  quota_mb INTEGER NOT NULL DEFAULT 0,"
    "  forward TEXT NOT NULL DEFAULT '' COLLATE NOCASE,"
    "  keep_copy INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE alias ("
    "  id INTEGER PRIMARY KEY,"
    "  domain_id INTEGER NOT NULL REFERENCES domain(id) ON DELETE CASCADE,"
    "  address TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  target TEXT NOT NULL COLLATE NOCASE,"
    "  enabled INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE list ("
    "  id INTEGER PRIMARY KEY,"
    "  domain_id INTEGER NOT NULL REFERENCES domain(id) ON DELETE CASCADE,"
    "  address TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  enabled INTEGER NOT NULL DEFAULT 1,"
    "  mode TEXT NOT NULL DEFAULT 'public' CHECK (mode IN ('public','members','announce')),"
    "  announcer TEXT NOT NULL DEFAULT '' COLLATE NOCASE,"
    "  require_auth INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE list_member ("
    "  id INTEGER PRIMARY KEY,"
    "  list_id INTEGER NOT NULL REFERENCES list(id) ON DELETE CASCADE,"
    "  address TEXT NOT NULL COLLATE NOCASE,"
    "  UNIQUE (list_id, address));"
    "CREATE TABLE route ("
    "  id INTEGER PRIMARY KEY,"
    "  pattern TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  host TEXT NOT NULL DEFAULT '',"
    "  port INTEGER NOT NULL DEFAULT 25,"
    "  all_addresses INTEGER NOT NULL DEFAULT 1,"
    "  local_recipient INTEGER NOT NULL DEFAULT 0,"
    "  local_sender INTEGER NOT NULL DEFAULT 0,"
    "  auth_user TEXT NOT NULL DEFAULT '',"
    "  auth_password TEXT NOT NULL DEFAULT '',"
    "  security TEXT NOT NULL DEFAULT 'none' CHECK (security IN ('none','starttls','tls')));"
    "CREATE TABLE route_address ("
    "  id INTEGER PRIMARY KEY,"
    "  route_id INTEGER NOT NULL REFERENCES route(id) ON DELETE CASCADE,"
    "  address TEXT NOT NULL COLLATE NOCASE,"
    "  UNIQUE (route_id, address));"
    "CREATE TABLE iprange ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  family INTEGER NOT NULL," /* 4 or 6 */
    "  ip_from BLOB NOT NULL,"
    "  ip_to BLOB NOT NULL,"
    "  priority INTEGER NOT NULL DEFAULT 10,"
    "  flags INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL DEFAULT 0);"
    /* Message blobs: one immutable file per id under <data_dir>/blobs/ (queue/queue_blob.c). */
    "CREATE TABLE blob ("
    "  id TEXT PRIMARY KEY,"
    "  size INTEGER NOT NULL,"
    "  created INTEGER NOT NULL);"
    /* The queue: one row per accepted message, one per envelope recipient. */
    "CREATE TABLE message ("
    "  id INTEGER PRIMARY KEY,"
    "  queue_id TEXT NOT NULL UNIQUE,"
    "  blob_id TEXT NOT NULL REFERENCES blob(id),"
    "  sender TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  received_at INTEGER NOT NULL,"
    "  client_ip TEXT NOT NULL DEFAULT '',"
    "  helo TEXT NOT NULL DEFAULT '',"
    "  auth_user TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE queue_rcpt ("
    "  id INTEGER PRIMARY KEY,"
    "  message_id INTEGER NOT NULL REFERENCES message(id) ON DELETE CASCADE,"
    "  address TEXT NOT NULL,"         /* resolved address */
    "  original TEXT NOT NULL,"        /* the RCPT TO address (Delivered-To) */
    "  kind TEXT NOT NULL CHECK (kind IN ('local','remote')),"
    "  route_id INTEGER,"              /* route that takes this recipient, NULL = MX */
    "  state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued','held','delivered','failed')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_try INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT NOT NULL DEFAULT '',"
    "  hops INTEGER NOT NULL DEFAULT 0);" /* forwarding depth, for loop protection */
    "CREATE INDEX queue_rcpt_pending ON queue_rcpt(state, kind, next_try);"
    "CREATE INDEX queue_rcpt_message ON queue_rcpt(message_id);"
    /* Mailbox store, shaped for IMAP (RFC 9051): folders with UIDVALIDITY/UIDNEXT and a
     * modification sequence (RFC 7162); messages reference blobs. */
    "CREATE TABLE folder ("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL COLLATE NOCASE,"
    "  uidvalidity INTEGER NOT NULL,"
    "  uidnext INTEGER NOT NULL DEFAULT 1,"
    "  highest_modseq INTEGER NOT NULL DEFAULT 1,"
    "  subscribed INTEGER NOT NULL DEFAULT 1,"
    "  UNIQUE (account_id, name));"
    "CREATE TABLE mail ("
    "  id INTEGER PRIMARY KEY,"
    "  folder_id INTEGER NOT NULL REFERENCES folder(id) ON DELETE CASCADE,"
    "  uid INTEGER NOT NULL,"
    "  blob_id TEXT NOT NULL REFERENCES blob(id),"
    "  size INTEGER NOT NULL,"          /* bytes as read: prepended headers + blob */
    "  internal_date INTEGER NOT NULL,"
    "  flags INTEGER NOT NULL DEFAULT 0," /* 1 Seen, 2 Answered, 4 Flagged, 8 Deleted, 16 Draft */
    "  keywords TEXT NOT NULL DEFAULT '',"
    "  modseq INTEGER NOT NULL,"
    "  return_path TEXT NOT NULL DEFAULT '',"
    "  delivered_to TEXT NOT NULL DEFAULT '',"
    "  UNIQUE (folder_id, uid));"
    "CREATE INDEX mail_blob ON mail(blob_id);"
    "CREATE INDEX message_blob ON message(blob_id);",
    /* 2: failed logins for auto-ban (policy/policy_autoban.c); the ban itself is an iprange row.
     * ip is the text form (lib/ipaddr.h ipaddr_format), user as the client typed it. */
    "CREATE TABLE auth_failure ("
    "  id INTEGER PRIMARY KEY,"
    "  ip TEXT NOT NULL,"
    "  user TEXT NOT NULL,"
    "  at INTEGER NOT NULL);"
    "CREATE INDEX auth_failure_ip ON auth_failure(ip, at);"
    "CREATE INDEX auth_failure_at ON auth_failure(at);",
    /* 3: a failed recipient whose bounce has been queued (local delivery failures: quota, unknown
     * or disabled account at delivery time). */
    "ALTER TABLE queue_rcpt ADD COLUMN bounced INTEGER NOT NULL DEFAULT 0;",
    /* 4: blobs stored in an append-only segment file (queue/queue_segment.h) name it here, so the
     * segment can be removed when its last blob goes; NULL = a file of its own. */
    ("ALTER TABLE blob ADD COLUMN segment INTEGER;"
     "CREATE INDEX blob_segment ON blob(segment) WHERE segment IS NOT NULL;"),
};

const int dir_migrations_count = (int)(sizeof(dir_migrations) / sizeof(dir_migrations[0]));
