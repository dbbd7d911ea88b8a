/* conf: the server configuration file (INI, read with inih) and its settings table.
 *
 * Every setting is declared once in conf_settings.def (section, key, type, default, min, max,
 * one-line doc); docs/configuration.md documents the same table and a unit test checks the two
 * agree. Durations accept units (30s, 10m, 24h, 36d; a bare number is seconds). Sizes in KB are
 * plain integers. Booleans accept yes/no/true/false/on/off/1/0.
 *
 * conf_load() collects every error as "file:line: message" (one per line in *errors_r) and returns
 * NULL when there was any; `gannet check-config` prints them and exits 78 (EX_CONFIG). */
#ifndef GANNET_CONF_CONF_H
#define GANNET_CONF_CONF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum conf_protocol { CONF_PROTO_SMTP = 0, CONF_PROTO_POP3, CONF_PROTO_IMAP };
enum conf_security {
    CONF_SECURITY_NONE = 0,
    CONF_SECURITY_STARTTLS,
    CONF_SECURITY_STARTTLS_REQUIRED,
    CONF_SECURITY_TLS
};

struct conf_listener {
    char *name; /* NAME of [listener:NAME] */
    enum conf_protocol protocol;
    char *address; /* as written: "127.0.0.1:2525", "[::1]:2525", "*:25" */
    char *host;    /* parsed host part without brackets ("" or "*" = any) */
    int port;
    enum conf_security security;
    bool require_auth; /* RFC 6409 submission: every MAIL needs AUTH */
    int line;          /* line of the section header, for messages */
};

/* After conf_load()/conf_defaults() every char * below is non-NULL ("" when empty), and the
 * "empty = derived" settings (hostname, database, certificate, private_key) are filled in. */
struct conf {
    char *path;
    /* [server] */
    char *hostname; /* default: gethostname() */
    char *data_dir;
    char *database;
    char *user;
    char *log_level; /* debug | info | warning | error */
    bool directory_cache;
    /* [dns] */
    char *nameservers; /* "" = /etc/resolv.conf; else "ip,ip:port,[v6]:port" (commas only, ready
                        * for ares_set_servers_ports_csv) */
    /* [tls] */
    char *certificate;
    char *private_key;
    /* [smtp] */
    char *welcome;
    unsigned max_message_size_kb; /* 0 = unlimited */
    unsigned timeout_s;
    bool allow_null_sender;
    bool reject_bare_lf;
    unsigned max_recipients;
    bool disconnect_invalid_clients;
    unsigned max_invalid_commands;
    unsigned max_connections; /* 0 = unlimited */
    bool add_delivered_to;    /* prepend Delivered-To: at local delivery */
    /* [autoban] */
    bool autoban_enabled;
    unsigned autoban_max_attempts; /* failed logins within the window that ban the address */
    unsigned autoban_window_s;
    unsigned autoban_ban_s; /* 0 = disconnect only, no ban range */

    /* [delivery] */
    unsigned delivery_retries;
    unsigned delivery_retry_interval_s;
    char *delivery_security;       /* opportunistic | required | none */
    char *delivery_relay_host;     /* "" = MX delivery */
    unsigned delivery_relay_port;
    char *delivery_relay_user;
    char *delivery_relay_password;
    char *delivery_relay_security; /* opportunistic | starttls | tls | none */
    char *delivery_ca_file;        /* "" = system CA store */
    unsigned delivery_max_connections;
    unsigned delivery_max_per_domain;
    unsigned delivery_timeout_s;

    struct conf_listener *listeners;
    size_t listeners_count;
};

/* Load and validate. On any error returns NULL and sets *errors_r to a malloc'ed text of
 * "file:line: message\n" lines (caller frees). */
struct conf *conf_load(const char *path, char **errors_r);
/* A configuration with every default and no listeners (for tools and tests). */
struct conf *conf_defaults(void);
void conf_free(struct conf **conf);

/* Parse a duration ("10m", "2s", "24h", "36d", "90"): returns 0 and seconds, or -1. */
int conf_parse_duration(const char *s, unsigned *seconds_r);
int conf_parse_bool(const char *s, bool *value_r);

/* Same as conf_load(), from text in memory; name is used in messages and as conf->path. */
struct conf *conf_load_string(const char *text, const char *name, char **errors_r);
/* The LOG_LEVEL_* (lib/log.h) that conf->log_level names. */
int conf_log_level(const struct conf *conf);

/* Write the reference table (markdown) of every setting to f; docs/configuration.md embeds it. */
void conf_write_reference(FILE *f);

#endif
