/* policy_auth: the credential check behind SMTP AUTH (and later POP3 USER/PASS, IMAP LOGIN),
 * hmailserver-behaviour.md §3.3-§3.5; contract in policy_auth.h.
 *
 *   policy_auth_login(db, d, user, pw, ip, autoban, now, &out)  verify, upgrade, count failures
 *   policy_auth_still_valid(d, account, hash)                   re-validation at the next MAIL
 *
 * The user name is the full address; its domain is resolved through domain aliases, so
 * user@alias.test logs in as user@example.test (the outcome names the stored account). A failure
 * for any reason (unknown user, no '@', disabled account or domain, empty or wrong password)
 * looks the same to the caller and is recorded for auto-ban (policy_autoban.c); the reason is
 * logged for the admin. An unknown user still costs one yescrypt computation, so the time taken
 * does not tell whether the user exists. A successful login with a legacy hash ($6$, $2b$,
 * hMailServer's SHA-256) stores a fresh yescrypt hash, only if the stored hash is still the one
 * verified (an admin's change in between wins). A directory that cannot be read gives
 * POLICY_AUTH_TEMPFAIL and records nothing. Each write is its own transaction; none stays open. */
#include "policy/policy_auth.h"

#include <stdio.h>
#include <string.h>

#include "dir/dir_password.h"
#include "lib/log.h"
#include "lib/str.h"
#include "policy/policy_autoban.h"

/* A yescrypt hash of a password nobody knows, at libxcrypt's default cost, verified against
 * when there is no account hash to verify, so unknown users take as long as known ones. */
static const char dummy_hash[] =
    "$y$j9T$q8CcX2c0rNnU7mKQ0yY1X.$ij4l.lC25dLK9roU4GHeWlqCS6kS04bw7kBOZc3XfB4";

/* The account user logs in as. DIR_OK with *a, DIR_NOTFOUND with *why_r, or a lookup failure. */
static enum dir_result find_account(struct dir *d, const char *user, struct dir_account *a,
                                    const char **why_r)
{
    char local[ADDR_MAX], domain[ADDR_MAX];
    *why_r = "unknown user";
    if (!*user || strlen(user) >= ADDR_MAX || addr_split(user, local, domain) < 0 || !*local ||
        !*domain)
        return DIR_NOTFOUND;
    struct dir_domain dom;
    enum dir_result r = dir_domain_resolve(d, domain, &dom);
    if (r != DIR_OK)
        return r;
    if (!dom.enabled) {
        *why_r = "domain disabled";
        return DIR_NOTFOUND;
    }
    char address[ADDR_MAX + DIR_NAME_MAX];
    if ((size_t)snprintf(address, sizeof(address), "%s@%s", local, dom.name) >= ADDR_MAX)
        return DIR_NOTFOUND;
    if ((r = dir_account_get(d, address, a)) != DIR_OK)
        return r;
    if (!a->enabled) {
        *why_r = "account disabled";
        return DIR_NOTFOUND;
    }
    return DIR_OK;
}

/* Store a yescrypt hash of password in place of old (when still there); out->hash gets the hash
 * the account has afterwards, as far as this login knows. */
static void upgrade_hash(sqlite3 *db, struct dir *d, const struct dir_account *a,
                         const char *password, struct policy_auth_outcome *out)
{
    char fresh[DIR_PASSWORD_HASH_MAX];
    const char *err = NULL;
    if (dir_password_hash(password, fresh, sizeof(fresh), &err) < 0) {
        log_warn("auth: %s: cannot replace the legacy password hash: %s", a->address, err);
        return;
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "UPDATE account SET password_hash = ?1 "
                                "WHERE id = ?2 AND password_hash = ?3",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, fresh, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, a->id);
        sqlite3_bind_text(st, 3, a->password_hash, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        log_warn("auth: %s: cannot replace the legacy password hash: %s", a->address,
                 sqlite3_errmsg(db));
    } else if (sqlite3_changes(db) == 1) {
        log_info("auth: %s: legacy password hash replaced by yescrypt", a->address);
        str_copy(out->hash, sizeof(out->hash), fresh);
    } else {
        /* Changed since it was read: by a concurrent login's upgrade (whose hash this password
         * verifies against too), or by an admin (then the session should not stay valid). */
        struct dir_account now;
        if (dir_account_get(d, a->address, &now) == DIR_OK &&
            dir_password_verify(now.password_hash, password))
            str_copy(out->hash, sizeof(out->hash), now.password_hash);
    }
    explicit_bzero(fresh, sizeof(fresh));
}

void policy_auth_login(sqlite3 *db, struct dir *d, const char *user, const char *password,
                       const struct ipaddr *ip, const struct policy_autoban_conf *autoban,
                       time_t now, struct policy_auth_outcome *out)
{
    memset(out, 0, sizeof(*out));
    if (!user)
        user = "";
    if (!password)
        password = "";
    char shown[ADDR_MAX], ipstr[IPADDR_STRLEN];
    policy_autoban_printable(user, shown, sizeof(shown));
    ipaddr_format(ip, ipstr);

    struct dir_account a;
    const char *why = NULL;
    enum dir_result r = find_account(d, user, &a, &why);
    if (r == DIR_TEMPFAIL || r == DIR_PERMFAIL) {
        log_warn("auth: login as \"%s\" from %s: directory lookup failed (%s)", shown, ipstr,
                 dir_result_name(r));
        out->status = POLICY_AUTH_TEMPFAIL;
        return;
    }
    bool ok = false, hashed = false;
    if (r != DIR_OK) {
        /* why set by find_account */
    } else if (!*password) {
        why = "empty password";
    } else if (!a.password_hash[0]) {
        why = "account has no password";
    } else {
        hashed = true;
        if (!(ok = dir_password_verify(a.password_hash, password)))
            why = "wrong password";
    }
    if (!hashed) /* the same work as a real check, so the time taken tells nothing */
        dir_password_verify(dummy_hash, *password ? password : "-");

    if (ok) {
        out->status = POLICY_AUTH_OK;
        str_copy(out->account, sizeof(out->account), a.address);
        str_copy(out->hash, sizeof(out->hash), a.password_hash);
        if (dir_password_is_legacy(a.password_hash))
            upgrade_hash(db, d, &a, password, out);
        log_info("auth: %s logged in from %s", a.address, ipstr);
        explicit_bzero(&a, sizeof(a));
        return;
    }
    explicit_bzero(&a, sizeof(a));

    out->status = POLICY_AUTH_FAILED;
    log_info("auth: login as \"%s\" from %s failed: %s", shown, ipstr, why);
    bool banned = false;
    const char *err = NULL;
    if (autoban && policy_autoban_record(db, ip, user, autoban, now, &banned, &err) < 0)
        log_error("auth: cannot record the failed login for auto-ban: %s", err);
    if (banned)
        out->status = POLICY_AUTH_BANNED;
}

enum dir_result policy_auth_still_valid(struct dir *d, const char *account, const char *hash)
{
    struct dir_account a;
    enum dir_result r = dir_account_get(d, account, &a);
    if (r != DIR_OK)
        return r;
    bool same = a.enabled && hash && strcmp(a.password_hash, hash) == 0;
    explicit_bzero(&a.password_hash, sizeof(a.password_hash));
    if (!same)
        return DIR_NOTFOUND;
    struct dir_domain dom;
    if ((r = dir_domain_get(d, addr_domain(a.address), &dom)) != DIR_OK)
        return r;
    return dom.enabled ? DIR_OK : DIR_NOTFOUND;
}
