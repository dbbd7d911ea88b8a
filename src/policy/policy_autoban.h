/* policy_autoban: counting failed logins per client address and banning the address
 * (hmailserver-behaviour.md §3.5), shared by SMTP AUTH, POP3 and IMAP.
 *
 * Failures live in the auth_failure table (ip, user, at). The failure that brings an address to
 * max_attempts within window clears that address's failures and creates an expiring IP range
 * (the iprange table) for that one address: priority 100, no protocol allowed, named
 * "Auto-ban: <user>" — or "Auto-ban: <user> (<ip>)" when that name is taken (another address
 * guessed the same user) — shown by `gannet iprange list`, removable with `gannet iprange del`.
 * The range expires at now + ban + 1 (now is in whole seconds: the ban lasts at least ban
 * seconds). With ban = 0 the session is closed but no range is created.
 *
 * Every function runs its own transaction on db and never leaves one open; call it on a worker
 * thread (db is the worker's handle). */
#ifndef GANNET_POLICY_AUTOBAN_H
#define GANNET_POLICY_AUTOBAN_H
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "lib/ipaddr.h"
#include "policy/policy_auth.h" /* struct policy_autoban_conf */

#define POLICY_AUTOBAN_PRIORITY 100
#define POLICY_AUTOBAN_PREFIX "Auto-ban: "

/* Record one failed login of user (as the client typed it) from ip at now. Does nothing when
 * c->enabled is false. *banned_r is true when this failure reached c->max_attempts failures from
 * ip within c->window_s (the ban range, if any, is committed when this returns). Failures older
 * than the window (from any address) are deleted on the way. Returns 0, or -1 with *err_r
 * (thread-local text) and nothing changed. */
int policy_autoban_record(sqlite3 *db, const struct ipaddr *ip, const char *user,
                          const struct policy_autoban_conf *c, time_t now, bool *banned_r,
                          const char **err_r);

/* Housekeeping for a periodic job: delete failures older than c->window_s and auto-ban ranges
 * (named POLICY_AUTOBAN_PREFIX...) that have expired. Returns the number of rows deleted, or -1
 * with *err_r. */
int policy_autoban_prune(sqlite3 *db, const struct policy_autoban_conf *c, time_t now,
                         const char **err_r);

/* Copy s into out (size bytes) for a log line or a range name: control characters become '?',
 * and truncation never splits a UTF-8 sequence. */
void policy_autoban_printable(const char *s, char *out, size_t size);

#endif
