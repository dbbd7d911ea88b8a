/* smtp_cmds: the SMTP command table and its handlers (RFC 5321 §4.1; replies.md).
 *
 * One table row per verb: handler, the states it is allowed in, and the reply when the state is
 * wrong. The dispatcher enforces the table (before HELO/EHLO every command that needs a greeting
 * gets "502 Use HELO/EHLO first"); handlers never re-check the state. Commands policy can
 * influence follow check -> hook -> proceed: synchronous syntax checks reply directly, the
 * directory decision runs as a worker job, and its done callback changes the state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "dir/dir_cache.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "net/conn.h"
#include "net/pool.h"
#include "smtp/smtp_internal.h"
#include "policy/policy_auth.h"
#include "smtp/smtp_parse.h"

#define ST(x) (1u << (x))
#define ST_ANY (ST(SMTP_STATE_CONNECTED) | ST(SMTP_STATE_GREETED) | ST(SMTP_STATE_MAIL) | ST(SMTP_STATE_RCPT))
#define ST_GREETED_ANY (ST(SMTP_STATE_GREETED) | ST(SMTP_STATE_MAIL) | ST(SMTP_STATE_RCPT))

#define SMTP_CMD_TLS_FIRST 1u /* on a starttls-required listener: 530 until TLS is up */

struct smtp_command {
    const char *verb;
    void (*handler)(struct smtp_session *s, const char *args, const char *line);
    unsigned states;           /* ST() mask where the command may run */
    enum reply_id wrong_state; /* reply outside those states (after HELO) */
    unsigned flags;
};

void smtp_banner(struct smtp_session *s)
{
    const struct conf *c = s->srv->conf;
    const char *welcome = c->welcome && *c->welcome ? c->welcome : c->hostname;
    char text[600];
    if (str_iends(welcome, " ESMTP") || str_ieq(welcome, "ESMTP"))
        snprintf(text, sizeof(text), "%s", welcome);
    else
        snprintf(text, sizeof(text), "%s ESMTP", welcome);
    smtp_reply(s, R_BANNER, text);
}

static void smtp_greet(struct smtp_session *s, const char *args, bool esmtp)
{
    char arg[SMTP_CMD_MAX + 1];
    snprintf(arg, sizeof(arg), "%s", args);
    char *helo = str_trim(arg);
    if (!*helo || !addr_helo_is_valid(helo)) {
        smtp_reply(s, esmtp ? R_EHLO_INVALID : R_HELO_INVALID, NULL);
        return;
    }
    /* RFC 5321 §4.1.4: a new greeting resets any transaction in progress. */
    smtp_transaction_reset(s);
    snprintf(s->helo, sizeof(s->helo), "%s", helo);
    s->esmtp = esmtp;
    smtp_state_set(s, SMTP_STATE_GREETED);
    if (!esmtp) {
        smtp_reply(s, R_HELLO, NULL);
        return;
    }
    const struct conf *c = s->srv->conf;
    char text[700];
    snprintf(text, sizeof(text), "250-%s", c->hostname);
    smtp_reply_raw(s, text);
    smtp_reply_raw(s, "250-PIPELINING");
    if (c->max_message_size_kb)
        snprintf(text, sizeof(text), "250-SIZE %llu",
                 (unsigned long long)c->max_message_size_kb * 1024ULL);
    else
        snprintf(text, sizeof(text), "250-SIZE");
    smtp_reply_raw(s, text);
    smtp_reply_raw(s, "250-8BITMIME");
    enum conf_security sec = s->listener->security;
    if ((sec == CONF_SECURITY_STARTTLS || sec == CONF_SECURITY_STARTTLS_REQUIRED) &&
        !smtp_is_tls(s) && s->srv->tls)
        smtp_reply_raw(s, "250-STARTTLS");
    if (smtp_auth_possible(s))
        smtp_reply_raw(s, "250-AUTH PLAIN LOGIN");
    smtp_reply_raw(s, "250 HELP");
}

static void cmd_helo(struct smtp_session *s, const char *args, const char *line)
{
    (void)line;
    smtp_greet(s, args, false);
}

static void cmd_ehlo(struct smtp_session *s, const char *args, const char *line)
{
    (void)line;
    smtp_greet(s, args, true);
}

static void cmd_noop(struct smtp_session *s, const char *args, const char *line)
{
    (void)args;
    (void)line;
    smtp_reply(s, R_250_OK, NULL);
}

static void cmd_rset(struct smtp_session *s, const char *args, const char *line)
{
    (void)args;
    (void)line;
    smtp_transaction_reset(s);
    smtp_reply(s, R_250_OK, NULL);
}

static void cmd_quit(struct smtp_session *s, const char *args, const char *line)
{
    (void)args;
    (void)line;
    smtp_transaction_reset(s);
    smtp_reply(s, R_GOODBYE, NULL);
    smtp_close(s);
}

static void cmd_help(struct smtp_session *s, const char *args, const char *line)
{
    (void)args;
    (void)line;
    smtp_reply(s, R_HELP, "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP");
}

static void cmd_vrfy(struct smtp_session *s, const char *args, const char *line)
{
    (void)args;
    (void)line;
    smtp_reply(s, R_VRFY_DISALLOWED, NULL);
}

static void cmd_turn(struct smtp_session *s, const char *args, const char *line)
{
    (void)args;
    (void)line;
    smtp_reply(s, R_TURN_DISALLOWED, NULL);
}


/* ---- MAIL ---- */

struct smtp_mail_job {
    uint64_t session_id;
    bool revalidate;            /* second and later MAIL of an authenticated session */
    char account[ADDR_MAX];
    char hash[256];
    enum dir_result still_valid;
    char sender[ADDR_MAX];
    unsigned global_kb;
    const char *data_dir;
    unsigned max_kb;
    enum dir_result result;
    bool low_space;
};

/* Refuse new mail while the spool filesystem cannot take 1.5 messages of the maximum size. */
static bool space_is_low(unsigned long long free_bytes, unsigned max_kb)
{
    unsigned long long kb = max_kb ? max_kb : 20480;
    return free_bytes < kb * 1024ULL * 3 / 2;
}

/* Free bytes of the data directory's filesystem (worker thread: statvfs). */
static bool data_dir_free(const char *data_dir, unsigned long long *free_r)
{
    struct statvfs sv;
    if (statvfs(data_dir, &sv) != 0)
        return false;
    *free_r = (unsigned long long)sv.f_bavail * sv.f_frsize;
    return true;
}

static void smtp_mail_work(void *arg)
{
    struct smtp_mail_job *j = arg;
    const char *err = NULL;
    struct dir *d = pool_worker_dir(&err);
    j->result = d ? policy_max_message_kb(d, j->sender, j->global_kb, &j->max_kb) : DIR_TEMPFAIL;
    if (d && j->revalidate)
        j->still_valid = policy_auth_still_valid(d, j->account, j->hash);
    unsigned long long free_bytes;
    if (data_dir_free(j->data_dir, &free_bytes))
        j->low_space = space_is_low(free_bytes, j->max_kb);
}

/* The free space of the data directory, refreshed by a worker at most once a second, so MAIL
 * can be answered without a statvfs on the loop (loop thread only). */
static struct {
    bool known, refreshing;
    time_t checked;
    unsigned long long free_bytes;
} spool_space;

struct spool_space_job {
    const char *data_dir;
    bool ok;
    unsigned long long free_bytes;
};

static void spool_space_work(void *arg)
{
    struct spool_space_job *j = arg;
    j->ok = data_dir_free(j->data_dir, &j->free_bytes);
}

static void spool_space_done(void *arg)
{
    struct spool_space_job *j = arg;
    spool_space.refreshing = false;
    spool_space.known = j->ok;
    spool_space.free_bytes = j->free_bytes;
    spool_space.checked = time(NULL);
    free(j);
}

/* true with the last known figure; starts a refresh when it is older than a second. */
static bool spool_space_get(struct server *srv, unsigned long long *free_r)
{
    time_t now = time(NULL);
    if (!spool_space.refreshing && (!spool_space.known || now - spool_space.checked >= 1)) {
        struct spool_space_job *j = xcalloc(1, sizeof(*j));
        j->data_dir = srv->conf->data_dir;
        spool_space.refreshing = true;
        pool_submit(srv->pool, j, spool_space_work, spool_space_done);
    }
    if (!spool_space.known || now - spool_space.checked > 5)
        return false;
    *free_r = spool_space.free_bytes;
    return true;
}

static void smtp_mail_reply(struct smtp_session *s, struct smtp_mail_job *j)
{
    struct smtp_mail_args *ma = (struct smtp_mail_args *)(j + 1);
    bool lookup_failed = j->result == DIR_TEMPFAIL || j->result == DIR_PERMFAIL ||
                         (j->revalidate && (j->still_valid == DIR_TEMPFAIL ||
                                            j->still_valid == DIR_PERMFAIL));
    if (lookup_failed) {
        smtp_reply(s, R_TEMP_LOOKUP, NULL);
    } else if (j->revalidate && j->still_valid != DIR_OK) {
        log_sess(s->id, "credentials of %s changed since AUTH; authentication dropped",
                 s->auth_user);
        s->authenticated = false;
        s->auth_user[0] = '\0';
        s->auth_hash[0] = '\0';
        smtp_reply(s, R_REAUTH, NULL);
    } else if (j->low_space) {
        smtp_reply(s, R_STORAGE_LOW, NULL);
    } else if (ma->size_given && j->max_kb && ma->size / 1024 > j->max_kb) {
        char text[200];
        snprintf(text, sizeof(text),
                 "Message size exceeds fixed maximum message size. Size: %llu KB, Max size: "
                 "%u KB",
                 (unsigned long long)(ma->size / 1024), j->max_kb);
        smtp_reply(s, R_SIZE_EXCEEDED, text);
    } else {
        snprintf(s->sender, sizeof(s->sender), "%s", j->sender);
        s->max_kb = j->max_kb;
        s->mail_count++;
        log_sess(s->id, "MAIL FROM:<%s>", s->sender);
        smtp_state_set(s, SMTP_STATE_MAIL);
        smtp_reply(s, R_250_OK, NULL);
    }
}

static void smtp_mail_done(void *arg)
{
    struct smtp_mail_job *j = arg;
    struct smtp_session *s = smtp_job_session(j->session_id);
    if (s && s->conn)
        smtp_mail_reply(s, j);
    free(j);
    if (s)
        smtp_job_finish(s);
}

/* MAIL answered on the loop: everything it needs is in the directory cache. */
static bool smtp_mail_fast(struct smtp_session *s, struct smtp_mail_job *j)
{
    struct dir *d = s->srv->loop_dir;
    unsigned long long free_bytes;
    if (!d || j->revalidate || !spool_space_get(s->srv, &free_bytes))
        return false;
    j->result = policy_max_message_kb(d, j->sender, j->global_kb, &j->max_kb);
    if (dir_cache_take_miss(d))
        return false;
    j->low_space = space_is_low(free_bytes, j->max_kb);
    smtp_mail_reply(s, j);
    return true;
}

static void cmd_mail(struct smtp_session *s, const char *args, const char *line)
{
    (void)args;
    if (s->listener->require_auth && !s->authenticated) {
        smtp_reply(s, R_AUTH_REQUIRED, NULL); /* submission listener (RFC 6409) */
        return;
    }
    /* The job and the parsed arguments in one allocation. */
    struct smtp_mail_job *j = xcalloc(1, sizeof(*j) + sizeof(struct smtp_mail_args));
    struct smtp_mail_args *ma = (struct smtp_mail_args *)(j + 1);
    enum smtp_parse_status st = smtp_parse_mail(line, ma);
    enum reply_id fail = R__COUNT;
    if (st == SMTP_PARSE_SYNTAX)
        fail = R_MAIL_SYNTAX;
    else if (!ma->address[0] && !s->srv->conf->allow_null_sender)
        fail = R_SENDER_REQUIRED;
    else if (st == SMTP_PARSE_INVALID_ADDR)
        fail = R_SENDER_INVALID;
    else if (st == SMTP_PARSE_BAD_PARAM)
        fail = R_UNSUPPORTED_EXT;
    if (fail != R__COUNT) {
        smtp_reply(s, fail, fail == R_UNSUPPORTED_EXT ? ma->bad_param : NULL);
        free(j);
        return;
    }
    j->session_id = s->id;
    snprintf(j->sender, sizeof(j->sender), "%s", ma->address);
    j->global_kb = s->srv->conf->max_message_size_kb;
    j->data_dir = s->srv->conf->data_dir;
    if (s->authenticated && s->mail_count > 0) {
        j->revalidate = true;
        snprintf(j->account, sizeof(j->account), "%s", s->auth_user);
        snprintf(j->hash, sizeof(j->hash), "%s", s->auth_hash);
    }
    if (smtp_mail_fast(s, j)) {
        free(j);
        return;
    }
    smtp_job_start(s, j, smtp_mail_work, smtp_mail_done);
}

/* ---- RCPT ---- */

struct smtp_rcpt_job {
    uint64_t session_id;
    char sender[ADDR_MAX];
    char rcpt[ADDR_MAX];
    bool authenticated;
    uint32_t iprange_flags;
    struct policy_rcpt_result res;
};

static void smtp_rcpt_work(void *arg)
{
    struct smtp_rcpt_job *j = arg;
    const char *err = NULL;
    struct dir *d = pool_worker_dir(&err);
    if (!d) {
        j->res.verdict = POLICY_TEMPFAIL;
        j->res.reply = R_TEMP_LOOKUP;
        return;
    }
    struct policy_rcpt_request req = {
        .sender = j->sender,
        .rcpt = j->rcpt,
        .authenticated = j->authenticated,
        .iprange_flags = j->iprange_flags,
    };
    policy_rcpt_check(d, &req, &j->res);
}

static void smtp_rcpt_add(struct smtp_session *s, const struct policy_recipient *r)
{
    for (size_t i = 0; i < s->rcpts_count; i++)
        if (s->rcpts[i].local == r->local && str_ieq(s->rcpts[i].address, r->address))
            return; /* duplicates collapse: one copy per mailbox */
    if (s->rcpts_count == s->rcpts_cap) {
        s->rcpts_cap = s->rcpts_cap ? s->rcpts_cap * 2 : 4;
        s->rcpts = xrealloc(s->rcpts, s->rcpts_cap * sizeof(*s->rcpts));
    }
    s->rcpts[s->rcpts_count++] = *r;
}

static void smtp_rcpt_reply(struct smtp_session *s, struct smtp_rcpt_job *j)
{
    if (j->res.verdict == POLICY_ACCEPT) {
        for (size_t i = 0; i < j->res.recipients_count; i++)
            smtp_rcpt_add(s, &j->res.recipients[i]);
        if (s->rcpt_commands++ == 0)
            snprintf(s->first_rcpt, sizeof(s->first_rcpt), "%s", j->rcpt);
        log_sess(s->id, "RCPT TO:<%s>", j->rcpt);
        smtp_state_set(s, SMTP_STATE_RCPT);
        smtp_reply(s, R_250_OK, NULL);
    } else {
        if (j->res.verdict == POLICY_TEMPFAIL)
            log_warn("policy: directory %s while resolving <%s> (sender <%s>): answering 451",
                     dir_result_name(j->res.fail), j->rcpt, j->sender);
        log_sess(s->id, "RCPT TO:<%s> rejected", j->rcpt);
        smtp_reply(s, j->res.reply, NULL);
    }
}

static void smtp_rcpt_done(void *arg)
{
    struct smtp_rcpt_job *j = arg;
    struct smtp_session *s = smtp_job_session(j->session_id);
    if (s && s->conn)
        smtp_rcpt_reply(s, j);
    policy_rcpt_result_free(&j->res);
    free(j);
    if (s)
        smtp_job_finish(s);
}

/* RCPT decided on the loop: every lookup the policy made was in the directory cache. */
static bool smtp_rcpt_fast(struct smtp_session *s, struct smtp_rcpt_job *j)
{
    struct dir *d = s->srv->loop_dir;
    if (!d)
        return false;
    struct policy_rcpt_request req = {
        .sender = j->sender,
        .rcpt = j->rcpt,
        .authenticated = j->authenticated,
        .iprange_flags = j->iprange_flags,
    };
    policy_rcpt_check(d, &req, &j->res);
    if (dir_cache_take_miss(d)) {
        policy_rcpt_result_free(&j->res);
        memset(&j->res, 0, sizeof(j->res));
        return false;
    }
    smtp_rcpt_reply(s, j);
    policy_rcpt_result_free(&j->res);
    return true;
}

static void cmd_rcpt(struct smtp_session *s, const char *args, const char *line)
{
    (void)args;
    struct smtp_rcpt_args ra;
    enum smtp_parse_status st = smtp_parse_rcpt(line, &ra);
    if (st == SMTP_PARSE_SYNTAX) {
        smtp_reply(s, R_RCPT_SYNTAX, NULL);
        return;
    }
    if (st == SMTP_PARSE_BAD_PARAM) {
        smtp_reply(s, R_UNSUPPORTED_EXT, ra.bad_param);
        return;
    }
    if (st != SMTP_PARSE_OK) {
        smtp_reply(s, R_RCPT_INVALID, NULL);
        return;
    }
    if (s->rcpt_commands >= s->srv->conf->max_recipients) {
        smtp_reply(s, R_TOO_MANY_RCPTS, NULL);
        return;
    }
    struct smtp_rcpt_job *j = xcalloc(1, sizeof(*j));
    j->session_id = s->id;
    snprintf(j->sender, sizeof(j->sender), "%s", s->sender);
    snprintf(j->rcpt, sizeof(j->rcpt), "%s", ra.address);
    j->authenticated = s->authenticated;
    j->iprange_flags = s->iprange_flags;
    if (smtp_rcpt_fast(s, j)) {
        free(j);
        return;
    }
    smtp_job_start(s, j, smtp_rcpt_work, smtp_rcpt_done);
}

static void cmd_data(struct smtp_session *s, const char *args, const char *line)
{
    (void)args;
    (void)line;
    smtp_data_begin(s);
}

/* clang-format off */
static const struct smtp_command smtp_commands[] = {
    {"HELO",     cmd_helo,          ST_ANY,                  R__COUNT, 0},
    {"EHLO",     cmd_ehlo,          ST_ANY,                  R__COUNT, 0},
    {"MAIL",     cmd_mail,          ST(SMTP_STATE_GREETED),  R_RESET_FIRST, SMTP_CMD_TLS_FIRST},
    {"RCPT",     cmd_rcpt,          ST(SMTP_STATE_MAIL) | ST(SMTP_STATE_RCPT), R_NEED_SENDER, SMTP_CMD_TLS_FIRST},
    {"DATA",     cmd_data,          ST(SMTP_STATE_RCPT),     R_NEED_SENDER_RCPT, SMTP_CMD_TLS_FIRST},
    {"RSET",     cmd_rset,          ST_ANY,                  R__COUNT, SMTP_CMD_TLS_FIRST},
    {"NOOP",     cmd_noop,          ST_ANY,                  R__COUNT, 0},
    {"QUIT",     cmd_quit,          ST_ANY,                  R__COUNT, 0},
    {"HELP",     cmd_help,          ST_ANY,                  R__COUNT, SMTP_CMD_TLS_FIRST},
    {"VRFY",     cmd_vrfy,          ST_ANY,                  R__COUNT, 0},
    {"TURN",     cmd_turn,          ST_ANY,                  R__COUNT, 0},
    {"STARTTLS", smtp_cmd_starttls, ST_GREETED_ANY,          R__COUNT, 0},
    {"AUTH",     smtp_cmd_auth,     ST_GREETED_ANY,          R__COUNT, SMTP_CMD_TLS_FIRST},
};
/* clang-format on */

void smtp_command_dispatch(struct smtp_session *s, char *line)
{
    char verb[SMTP_VERB_MAX];
    const char *args = "";
    smtp_parse_verb(line, verb, &args);
    const struct smtp_command *cmd = NULL;
    for (size_t i = 0; i < sizeof(smtp_commands) / sizeof(smtp_commands[0]); i++)
        if (strcmp(verb, smtp_commands[i].verb) == 0) {
            cmd = &smtp_commands[i];
            break;
        }
    if (!cmd) {
        smtp_reply(s, R_UNIMPLEMENTED, NULL);
        return;
    }
    if ((cmd->flags & SMTP_CMD_TLS_FIRST) &&
        s->listener->security == CONF_SECURITY_STARTTLS_REQUIRED && !smtp_is_tls(s)) {
        smtp_reply(s, R_TLS_FIRST, NULL);
        return;
    }
    if (!(cmd->states & ST(s->state))) {
        smtp_reply(s, s->state == SMTP_STATE_CONNECTED ? R_HELO_FIRST : cmd->wrong_state, NULL);
        return;
    }
    cmd->handler(s, args, line);
}
