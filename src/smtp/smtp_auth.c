/* smtp_auth: SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms, and STARTTLS
 * (RFC 3207), with the texts of replies.md "STARTTLS and AUTH".
 *
 * AUTH preconditions, in order: TLS required by the client's IP range and the connection is not
 * TLS -> 530; already authenticated -> 503; no mechanism -> 504; unknown mechanism -> 504. The
 * 334 exchange reads lines as responses (never as commands); "*" cancels (501). Credentials are
 * checked on the worker pool (policy_auth_login: yescrypt, auto-ban). A failure is answered
 * SMTP_AUTH_FAIL_DELAY after the credentials arrived, whatever made it fail, so timing does not
 * tell whether the user exists. The password never appears in logs. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/base64.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "net/conn.h"
#include "net/pool.h"
#include "net/tls.h"
#include "policy/policy_auth.h"
#include "smtp/smtp_internal.h"

#define SMTP_AUTH_FAIL_DELAY_MS 1000
#define SMTP_AUTH_MAX 1024 /* decoded credentials */

bool smtp_is_tls(const struct smtp_session *s)
{
    return s->conn && conn_is_tls(s->conn);
}

bool smtp_auth_possible(const struct smtp_session *s)
{
    if (smtp_is_tls(s))
        return true;
    if (s->listener->security == CONF_SECURITY_STARTTLS_REQUIRED)
        return false;
    return !(s->iprange_flags & DIR_IPR_TLS_FOR_AUTH);
}

const char *smtp_protocol_name(const struct smtp_session *s)
{
    bool tls = smtp_is_tls(s);
    if (tls && s->authenticated)
        return "ESMTPSA";
    if (tls)
        return "ESMTPS";
    return s->authenticated ? "ESMTPA" : "ESMTP";
}

void smtp_tls_info(const struct smtp_session *s, char *out, size_t size)
{
    SSL *ssl = s->conn ? conn_ssl(s->conn) : NULL;
    if (ssl)
        tls_describe(ssl, out, size);
    else if (size)
        out[0] = '\0';
}

/* ---- STARTTLS ---- */

void smtp_cmd_starttls(struct smtp_session *s, const char *args, const char *line)
{
    (void)line;
    enum conf_security sec = s->listener->security;
    bool offered = sec == CONF_SECURITY_STARTTLS || sec == CONF_SECURITY_STARTTLS_REQUIRED;
    if (!offered || smtp_is_tls(s) || !s->srv->tls) {
        smtp_reply(s, R_UNIMPLEMENTED, NULL);
        return;
    }
    char a[SMTP_CMD_MAX + 1];
    snprintf(a, sizeof(a), "%s", args);
    if (*str_trim(a)) {
        smtp_reply(s, R_TLS_NO_PARAMS, NULL);
        return;
    }
    SSL *ssl = tls_server_ssl_new(s->srv->tls);
    if (!ssl) {
        smtp_reply(s, R_UNAVAILABLE, NULL);
        return;
    }
    smtp_reply(s, R_TLS_READY, NULL);
    /* RFC 3207 §4.2: forget everything learned before TLS. */
    smtp_transaction_reset(s);
    s->helo[0] = '\0';
    s->authenticated = false;
    s->auth_user[0] = '\0';
    s->auth_hash[0] = '\0';
    smtp_state_set(s, SMTP_STATE_CONNECTED);
    conn_start_tls(s->conn, ssl);
}

/* ---- AUTH ---- */

struct smtp_auth_job {
    uint64_t session_id;
    char user[SMTP_AUTH_MAX];
    char password[SMTP_AUTH_MAX];
    struct ipaddr ip;
    struct policy_autoban_conf autoban;
    struct policy_auth_outcome out;
};

static void smtp_auth_work(void *arg)
{
    struct smtp_auth_job *j = arg;
    const char *err = NULL;
    sqlite3 *db = pool_worker_db(&err);
    struct dir *d = pool_worker_dir(&err);
    if (!db || !d) {
        j->out.status = POLICY_AUTH_TEMPFAIL;
        return;
    }
    policy_auth_login(db, d, j->user, j->password, &j->ip, &j->autoban, time(NULL), &j->out);
}

static void smtp_auth_answer(struct smtp_session *s, struct smtp_auth_job *j)
{
    switch (j->out.status) {
    case POLICY_AUTH_OK:
        s->authenticated = true;
        snprintf(s->auth_user, sizeof(s->auth_user), "%s", j->out.account);
        snprintf(s->auth_hash, sizeof(s->auth_hash), "%s", j->out.hash);
        log_sess(s->id, "authenticated as %s", s->auth_user);
        smtp_reply(s, R_AUTH_OK, NULL);
        break;
    case POLICY_AUTH_BANNED:
        log_sess(s->id, "authentication failed for %s; too many failures, [%s] banned", j->user,
                 conn_peer_str(s->conn));
        smtp_reply(s, R_AUTH_BANNED, NULL);
        smtp_close(s);
        break;
    case POLICY_AUTH_TEMPFAIL:
        smtp_reply(s, R_TEMP_LOOKUP, NULL);
        break;
    default:
        log_sess(s->id, "authentication failed for %s", j->user);
        smtp_reply(s, R_AUTH_FAILED, NULL);
        break;
    }
}

static void smtp_auth_delayed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct smtp_auth_job *j = arg;
    struct smtp_session *s = smtp_job_session(j->session_id);
    if (s && s->conn)
        smtp_auth_answer(s, j);
    free(j);
    if (s)
        smtp_job_finish(s);
}

static void smtp_auth_done(void *arg)
{
    struct smtp_auth_job *j = arg;
    explicit_bzero(j->password, sizeof(j->password));
    struct smtp_session *s = smtp_job_session(j->session_id);
    if (s && s->conn && j->out.status != POLICY_AUTH_OK && j->out.status != POLICY_AUTH_TEMPFAIL) {
        /* Answer failures at a fixed time after the credentials arrived. */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed_ms = (now.tv_sec - s->auth_started.tv_sec) * 1000 +
                          (now.tv_nsec - s->auth_started.tv_nsec) / 1000000;
        long wait_ms = SMTP_AUTH_FAIL_DELAY_MS - elapsed_ms;
        if (wait_ms < 0)
            wait_ms = 0;
        struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};
        event_base_once(s->srv->base, -1, EV_TIMEOUT, smtp_auth_delayed, j, &tv);
        return; /* the job stays counted until the answer is sent */
    }
    if (s && s->conn)
        smtp_auth_answer(s, j);
    free(j);
    if (s)
        smtp_job_finish(s);
}

static void smtp_auth_check(struct smtp_session *s, const char *user, const char *password)
{
    struct smtp_auth_job *j = xcalloc(1, sizeof(*j));
    j->session_id = s->id;
    snprintf(j->user, sizeof(j->user), "%s", user);
    snprintf(j->password, sizeof(j->password), "%s", password);
    j->ip = *conn_peer_ip(s->conn);
    const struct conf *c = s->srv->conf;
    j->autoban.enabled = c->autoban_enabled;
    j->autoban.max_attempts = c->autoban_max_attempts;
    j->autoban.window_s = c->autoban_window_s;
    j->autoban.ban_s = c->autoban_ban_s;
    clock_gettime(CLOCK_MONOTONIC, &s->auth_started);
    s->auth_step = SMTP_AUTH_NONE;
    smtp_job_start(s, j, smtp_auth_work, smtp_auth_done);
}

/* A malformed exchange counts as a failed login (and toward auto-ban) with no user known. */
static void smtp_auth_malformed(struct smtp_session *s)
{
    smtp_auth_check(s, "", "");
}

/* RFC 4616: [authzid] NUL authcid NUL passwd. An authzid other than the authcid is refused. */
static void smtp_auth_plain(struct smtp_session *s, const char *b64)
{
    unsigned char buf[SMTP_AUTH_MAX + 4];
    long n = base64_decode(b64, buf, sizeof(buf));
    if (n <= 0) {
        smtp_auth_malformed(s);
        return;
    }
    const char *authzid = (const char *)buf;
    const char *p1 = memchr(buf, '\0', (size_t)n);
    const char *p2 = p1 ? memchr(p1 + 1, '\0', (size_t)(n - (p1 + 1 - (const char *)buf))) : NULL;
    if (!p1 || !p2) {
        smtp_auth_malformed(s);
        return;
    }
    const char *authcid = p1 + 1;
    const char *password = p2 + 1;
    if (*authzid && !str_ieq(authzid, authcid)) {
        log_sess(s->id, "AUTH PLAIN: authorization identity %s differs from %s", authzid, authcid);
        smtp_auth_malformed(s);
        return;
    }
    smtp_auth_check(s, authcid, password);
    explicit_bzero(buf, sizeof(buf));
}

void smtp_auth_input(struct smtp_session *s, const char *line)
{
    if (strcmp(line, "*") == 0) {
        s->auth_step = SMTP_AUTH_NONE;
        smtp_reply(s, R_AUTH_CANCELLED, NULL);
        return;
    }
    unsigned char buf[SMTP_AUTH_MAX + 4];
    switch (s->auth_step) {
    case SMTP_AUTH_PLAIN:
        smtp_auth_plain(s, line);
        break;
    case SMTP_AUTH_LOGIN_USER: {
        long n = base64_decode(line, buf, sizeof(buf));
        if (n <= 0 || memchr(buf, '\0', (size_t)n) || (size_t)n >= sizeof(s->auth_login_user)) {
            smtp_auth_malformed(s);
            return;
        }
        memcpy(s->auth_login_user, buf, (size_t)n + 1);
        s->auth_step = SMTP_AUTH_LOGIN_PASS;
        smtp_reply(s, R_AUTH_PASSWORD, NULL);
        break;
    }
    case SMTP_AUTH_LOGIN_PASS: {
        long n = base64_decode(line, buf, sizeof(buf));
        if (n < 0 || memchr(buf, '\0', (size_t)n)) {
            smtp_auth_malformed(s);
            return;
        }
        smtp_auth_check(s, s->auth_login_user, (const char *)buf);
        explicit_bzero(buf, sizeof(buf));
        break;
    }
    case SMTP_AUTH_NONE:
        break;
    }
}

void smtp_cmd_auth(struct smtp_session *s, const char *args, const char *line)
{
    (void)line;
    if (!smtp_auth_possible(s)) {
        smtp_reply(s, R_AUTH_NEED_TLS, NULL);
        return;
    }
    if (s->authenticated) {
        smtp_reply(s, R_AUTH_ALREADY, NULL);
        return;
    }
    char a[SMTP_CMD_MAX + 1];
    snprintf(a, sizeof(a), "%s", args);
    char *mech = str_trim(a);
    if (!*mech) {
        smtp_reply(s, R_AUTH_NO_TYPE, NULL);
        return;
    }
    char *initial = strchr(mech, ' ');
    if (initial) {
        *initial++ = '\0';
        initial = str_trim(initial);
    }
    if (str_ieq(mech, "PLAIN")) {
        if (initial && *initial) {
            if (strcmp(initial, "=") == 0) /* RFC 4954: "=" is an empty initial response */
                smtp_auth_malformed(s);
            else
                smtp_auth_plain(s, initial);
            return;
        }
        s->auth_step = SMTP_AUTH_PLAIN;
        smtp_reply(s, R_AUTH_EMPTY_CHALLENGE, NULL);
    } else if (str_ieq(mech, "LOGIN")) {
        if (initial && *initial) {
            s->auth_step = SMTP_AUTH_LOGIN_USER;
            smtp_auth_input(s, initial);
            return;
        }
        s->auth_step = SMTP_AUTH_LOGIN_USER;
        smtp_reply(s, R_AUTH_USERNAME, NULL);
    } else {
        smtp_reply(s, R_AUTH_UNSUPPORTED, NULL);
    }
}
