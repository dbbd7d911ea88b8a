/* smtp_internal: the session structure shared by smtp_session.c (lifecycle, I/O, dispatch,
 * replies), smtp_cmds.c (command handlers) and smtp_data.c (DATA stream and durable commit). */
#ifndef GANNET_SMTP_INTERNAL_H
#define GANNET_SMTP_INTERNAL_H
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "conf/conf.h"
#include "lib/buf.h"
#include "mail/addr.h"
#include "mail/reply.h"
#include "policy/policy.h"
#include "server/server.h"

#define SMTP_CMD_MAX 510             /* command line, without CRLF */
#define SMTP_CMD_HARD_MAX 250000     /* bytes without a line end in command mode */
#define SMTP_DATA_LINE_MAX 100000    /* bytes of one line inside DATA */

enum smtp_state {
    SMTP_STATE_CONNECTED = 0, /* banner sent, no HELO/EHLO yet */
    SMTP_STATE_GREETED,       /* HELO/EHLO done, no transaction */
    SMTP_STATE_MAIL,          /* MAIL accepted */
    SMTP_STATE_RCPT,          /* at least one RCPT accepted */
    SMTP_STATE_DATA,          /* receiving the message */
};

struct smtp_data;

enum smtp_auth_step {
    SMTP_AUTH_NONE = 0,     /* lines are commands */
    SMTP_AUTH_LOGIN_USER,   /* after 334 VXNlcm5hbWU6 */
    SMTP_AUTH_LOGIN_PASS,   /* after 334 UGFzc3dvcmQ6 */
    SMTP_AUTH_PLAIN,        /* after "334 " */
};

struct smtp_session {
    uint64_t id;
    char tag[24];
    struct server *srv;
    const struct conf_listener *listener;
    struct conn *conn;     /* NULL once the connection is gone */
    enum smtp_state state;
    unsigned jobs;         /* worker jobs in flight for this session */
    bool admitted;
    int admission;         /* connect-time checks still running (IP range, reverse DNS) */
    bool refused;          /* the IP range refused the client */
    char ptr[256];         /* reverse DNS name of the client, "" = none */
    bool quitting;         /* a final reply was sent; close after flush */
    bool shutdown_pending; /* server shutdown: 421 as soon as no job is in flight */
    struct buf line;
    uint32_t iprange_flags;
    char iprange_name[64];
    char helo[256];
    bool esmtp;
    bool authenticated;
    char auth_user[ADDR_MAX];  /* the account logged in as */
    char auth_hash[256];       /* its password hash at login, for re-validation */
    enum smtp_auth_step auth_step;
    char auth_login_user[ADDR_MAX];
    struct timespec auth_started;
    unsigned mail_count;       /* MAIL commands accepted in this session */
    unsigned invalid_count;

    /* The transaction */
    char sender[ADDR_MAX];
    unsigned max_kb; /* effective max message size for this sender, 0 = unlimited */
    struct policy_recipient *rcpts;
    size_t rcpts_count, rcpts_cap;
    unsigned rcpt_commands; /* accepted RCPT commands */
    char first_rcpt[ADDR_MAX];
    struct smtp_data *data;
    struct timespec data_started;
};

/* smtp_session.c */
void smtp_reply(struct smtp_session *s, enum reply_id id, const char *arg);
void smtp_reply_raw(struct smtp_session *s, const char *text); /* already "<code> <text>" */
void smtp_state_set(struct smtp_session *s, enum smtp_state st);
void smtp_transaction_reset(struct smtp_session *s);
/* Run work on the pool; done(job) runs on the loop. The session is kept alive meanwhile and its
 * input processing is paused; smtp_job_finish() in done resumes it. */
void smtp_job_start(struct smtp_session *s, void *job, void (*work)(void *), void (*done)(void *));
/* The same for work that is not a pool job (the group committer): pause and keep the session
 * until the matching smtp_job_finish(). */
void smtp_job_hold(struct smtp_session *s);
/* In a done callback: find the session (NULL if the connection is gone — then clean up). */
struct smtp_session *smtp_job_session(uint64_t id);
void smtp_job_finish(struct smtp_session *s);
void smtp_close(struct smtp_session *s);

/* smtp_cmds.c */
void smtp_command_dispatch(struct smtp_session *s, char *line);
void smtp_banner(struct smtp_session *s);

/* smtp_auth.c (RFC 4954 AUTH, RFC 4616 PLAIN, LOGIN) and STARTTLS (RFC 3207) */
bool smtp_is_tls(const struct smtp_session *s);
bool smtp_auth_possible(const struct smtp_session *s);
void smtp_cmd_auth(struct smtp_session *s, const char *args, const char *line);
void smtp_auth_input(struct smtp_session *s, const char *line);
void smtp_cmd_starttls(struct smtp_session *s, const char *args, const char *line);
/* "ESMTP", "ESMTPS", "ESMTPA" or "ESMTPSA", and the TLS description (or "") */
const char *smtp_protocol_name(const struct smtp_session *s);
void smtp_tls_info(const struct smtp_session *s, char *out, size_t size);

/* smtp_data.c */
void smtp_data_begin(struct smtp_session *s); /* after the DATA command passed its checks */
/* Consume DATA bytes from the connection; returns when input is exhausted or a job is pending. */
void smtp_data_input(struct smtp_session *s);
void smtp_data_free(struct smtp_session *s);

#endif
