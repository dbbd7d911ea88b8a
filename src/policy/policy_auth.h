/* policy_auth: checking login credentials (SMTP AUTH now; POP3 and IMAP later) and auto-ban
 * (hmailserver-behaviour.md §3.3-§3.5). Runs on a worker thread: password hashing is slow on
 * purpose and the directory is a database.
 *
 * The user name is the full address; its domain may be a domain alias. Login fails (never saying
 * why to the client) for an unknown user, a wrong password, a disabled account or a disabled
 * domain. A successful login with a legacy hash ($6$, $2b$, hMailServer's salted SHA-256) replaces
 * it with yescrypt. Each failure is recorded for auto-ban; the failure that reaches
 * max_attempts within window creates an expiring IP range "Auto-ban: <user>" (priority 100,
 * nothing allowed) that closes new connections from that address until it expires. */
#ifndef GANNET_POLICY_AUTH_H
#define GANNET_POLICY_AUTH_H
#include <sqlite3.h>
#include <stdbool.h>
#include <time.h>

#include "dir/dir.h"
#include "lib/ipaddr.h"
#include "mail/addr.h"

struct policy_autoban_conf {
    bool enabled;
    unsigned max_attempts; /* failures within window that ban the address (default 3) */
    unsigned window_s;     /* default 30 minutes */
    unsigned ban_s;        /* default 60 minutes */
};

enum policy_auth_status {
    POLICY_AUTH_OK = 0,
    POLICY_AUTH_FAILED,   /* 535 Authentication failed. Restarting authentication process. */
    POLICY_AUTH_BANNED,   /* 535 Authentication failed. Too many invalid logon attempts. + close */
    POLICY_AUTH_TEMPFAIL, /* the directory could not be read: 454-style temporary failure */
};

struct policy_auth_outcome {
    enum policy_auth_status status;
    char account[ADDR_MAX];   /* the account address logged in as (canonical form) */
    char hash[256];           /* the password hash at login time, for re-validation */
};

/* Check user/password for a client at ip. db and d are the worker's handles. */
void policy_auth_login(sqlite3 *db, struct dir *d, const char *user, const char *password,
                       const struct ipaddr *ip, const struct policy_autoban_conf *autoban,
                       time_t now, struct policy_auth_outcome *out);

/* Re-validation on the second and later MAIL of a session (§1.7 step 9): DIR_OK while the
 * account still exists, is enabled, its domain is enabled and its hash is still `hash`;
 * DIR_NOTFOUND when any of that changed; TEMPFAIL/PERMFAIL on database errors. */
enum dir_result policy_auth_still_valid(struct dir *d, const char *account, const char *hash);

#endif
