/* conf: loads and validates the configuration file (INI, read with inih) against the settings
 * table in conf_settings.def, and writes that table as the reference in docs/configuration.md.
 *
 *   conf_load / conf_load_string   parse, validate, fill derived defaults; every error is collected
 *                                  as "file:line: message" (sorted by line), NULL on any error
 *   conf_defaults / conf_free      the all-defaults configuration; free everything
 *   conf_parse_duration / _bool    the value syntaxes shared with other modules
 *   conf_write_reference           the markdown table of every setting
 *
 * inih does the key = value splitting and inline comments (" ; ..."). Its handler gets no line
 * number and it never reports section headers, so the reader fed to ini_parse_stream() does the
 * line work: it counts lines, handles [section] headers itself (inih only sees a blank line),
 * strips leading blanks (so inih never joins a line to the previous value) and notices a
 * key line the handler was not called for (inih's syntax error) so that every error, not only
 * the first, is reported. inih's line buffer limits a line to CONF_LINE_MAX characters. */
#include "conf/conf.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/ipaddr.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#define CONF_FILE_MAX (1024 * 1024) /* larger files are refused, not parsed */
#define CONF_LISTENER_NAME_MAX 64

enum conf_type {
    CONF_T_STR,
    CONF_T_DOMAIN,
    CONF_T_UINT,
    CONF_T_KB,
    CONF_T_DURATION,
    CONF_T_BOOL,
    CONF_T_CHOICE,
    CONF_T_ENUM,
    CONF_T_NAMESERVERS,
    CONF_T_ADDRESS,
};

enum conf_section_id {
#define CONF_SECTION(ID, NAMED, DOC) CONF_SEC_##ID,
#include "conf/conf_settings.def"
#undef CONF_SECTION
    CONF_SEC_COUNT
};

enum conf_setting_index {
#define CONF_SETTING(S, K, F, T, D, MIN, MAX, C, DOC) CONF_IDX_##S##_##K,
#include "conf/conf_settings.def"
#undef CONF_SETTING
    CONF_N_SETTINGS
};

struct conf_section_def {
    const char *id;
    bool named;
    const char *doc;
};

struct conf_setting_def {
    enum conf_section_id section;
    const char *key;
    size_t offset; /* in struct conf, or struct conf_listener for [listener:NAME] */
    enum conf_type type;
    const char *def;
    unsigned long min, max;
    const char *choices;
    const char *doc;
};

/* The struct each section's values live in, and the C type each TYPE stores (checked below). */
#define CONF_STRUCT_server struct conf
#define CONF_STRUCT_dns struct conf
#define CONF_STRUCT_tls struct conf
#define CONF_STRUCT_smtp struct conf
#define CONF_STRUCT_autoban struct conf
#define CONF_STRUCT_delivery struct conf
#define CONF_STRUCT_listener struct conf_listener
#define CONF_IS_STRING(x) _Generic((x), char * : 1, default : 0)
#define CONF_IS_UNSIGNED(x) _Generic((x), unsigned : 1, default : 0)
#define CONF_CHECK_STR(x) CONF_IS_STRING(x)
#define CONF_CHECK_DOMAIN(x) CONF_IS_STRING(x)
#define CONF_CHECK_CHOICE(x) CONF_IS_STRING(x)
#define CONF_CHECK_NAMESERVERS(x) CONF_IS_STRING(x)
#define CONF_CHECK_ADDRESS(x) CONF_IS_STRING(x)
#define CONF_CHECK_UINT(x) CONF_IS_UNSIGNED(x)
#define CONF_CHECK_KB(x) CONF_IS_UNSIGNED(x)
#define CONF_CHECK_DURATION(x) CONF_IS_UNSIGNED(x)
#define CONF_CHECK_BOOL(x) _Generic((x), bool : 1, default : 0)
#define CONF_CHECK_ENUM(x) (sizeof(x) == sizeof(int))

#define CONF_SETTING(S, K, F, T, D, MIN, MAX, C, DOC)                                              \
    _Static_assert(CONF_CHECK_##T(((CONF_STRUCT_##S *)0)->F),                                      \
                   "conf_settings.def: " #S "." #K ": field " #F " does not hold a " #T);
#include "conf/conf_settings.def"
#undef CONF_SETTING

static const struct conf_section_def sections[CONF_SEC_COUNT] = {
#define CONF_SECTION(ID, NAMED, DOC) {#ID, NAMED, DOC},
#include "conf/conf_settings.def"
#undef CONF_SECTION
};

static const struct conf_setting_def settings[CONF_N_SETTINGS] = {
#define CONF_SETTING(S, K, F, T, D, MIN, MAX, C, DOC)                                              \
    {CONF_SEC_##S, #K, offsetof(CONF_STRUCT_##S, F), CONF_T_##T, D, MIN, MAX, C, DOC},
#include "conf/conf_settings.def"
#undef CONF_SETTING
};

/* The ENUM choices are the enum values in order. */
_Static_assert(CONF_PROTO_SMTP == 0 && CONF_PROTO_POP3 == 1 && CONF_PROTO_IMAP == 2, "protocol");
_Static_assert(CONF_SECURITY_NONE == 0 && CONF_SECURITY_STARTTLS == 1 &&
                   CONF_SECURITY_STARTTLS_REQUIRED == 2 && CONF_SECURITY_TLS == 3,
               "security");

/* ---- value syntaxes ---------------------------------------------------------------------- */

static bool is_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* Decimal digits only; -1 on syntax, -2 when above limit. */
static int parse_ulong(const char *s, unsigned long long limit, unsigned long long *v_r)
{
    if (!is_digits(s))
        return -1;
    unsigned long long v = 0;
    for (; *s; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > limit / 10 || (v == limit / 10 && d > limit % 10))
            return -2;
        v = v * 10 + d;
    }
    *v_r = v;
    return 0;
}

int conf_parse_duration(const char *s, unsigned *seconds_r)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return -1;
    unsigned mult = 1;
    char last = s[n - 1];
    if (last == 's' || last == 'm' || last == 'h' || last == 'd') {
        mult = last == 's' ? 1 : last == 'm' ? 60 : last == 'h' ? 3600 : 86400;
        n--;
    }
    char num[65];
    memcpy(num, s, n);
    num[n] = '\0';
    unsigned long long v;
    if (parse_ulong(num, UINT_MAX, &v) < 0 || v * mult > UINT_MAX)
        return -1;
    *seconds_r = (unsigned)(v * mult);
    return 0;
}

int conf_parse_bool(const char *s, bool *value_r)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (str_ieq(s, yes[i])) {
            *value_r = true;
            return 0;
        }
        if (str_ieq(s, no[i])) {
            *value_r = false;
            return 0;
        }
    }
    return -1;
}

/* "30s" for 30, "10m" for 600: the largest unit that divides evenly. */
static void format_duration(unsigned s, char out[24])
{
    if (s && s % 86400 == 0)
        snprintf(out, 24, "%ud", s / 86400);
    else if (s && s % 3600 == 0)
        snprintf(out, 24, "%uh", s / 3600);
    else if (s && s % 60 == 0)
        snprintf(out, 24, "%um", s / 60);
    else
        snprintf(out, 24, "%us", s);
}

/* Index of s (case-insensitive) in "a|b|c", or -1. */
static int choice_index(const char *choices, const char *s)
{
    size_t slen = strlen(s);
    int i = 0;
    for (const char *p = choices;; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == slen && strncasecmp(p, s, n) == 0)
            return i;
        if (!bar)
            return -1;
        p = bar + 1;
    }
}

/* "a|b|c" as "a, b, c" (with the given quote around each). */
static char *choices_list(const char *choices, const char *quote)
{
    struct buf b;
    buf_init(&b, 0);
    for (const char *p = choices;;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        buf_printf(&b, "%s%s%.*s%s", p == choices ? "" : ", ", quote, (int)n, p, quote);
        if (!bar)
            break;
        p = bar + 1;
    }
    return buf_steal(&b, NULL);
}

static int parse_port(const char *s, int *port_r)
{
    unsigned long long v;
    if (strlen(s) > 5 || parse_ulong(s, 65535, &v) < 0 || v == 0)
        return -1;
    *port_r = (int)v;
    return 0;
}

/* RFC 1123 host name: dot-separated labels of letters, digits, '-' (and '_', seen in the wild). */
static bool hostname_is_valid(const char *s)
{
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > 253)
        return false;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || label > 63 || p[-1] == '-')
                return false;
            if (*p == '\0')
                return true;
            label = 0;
            continue;
        }
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '-' || *p == '_';
        if (!ok || (label == 0 && *p == '-'))
            return false;
        label++;
    }
}

/* One nameserver: "1.2.3.4", "1.2.3.4:53", "::1", "[::1]", "[::1]:53". */
static bool nameserver_is_valid(const char *tok)
{
    struct ipaddr ip;
    int port;
    char host[IPADDR_STRLEN];
    if (tok[0] == '[') {
        const char *close = strchr(tok, ']');
        if (!close || (size_t)(close - tok - 1) >= sizeof(host))
            return false;
        memcpy(host, tok + 1, (size_t)(close - tok - 1));
        host[close - tok - 1] = '\0';
        if (ipaddr_parse(host, &ip) < 0 || ip.family != AF_INET6)
            return false;
        return close[1] == '\0' || (close[1] == ':' && parse_port(close + 2, &port) == 0);
    }
    const char *colon = strchr(tok, ':');
    if (colon && strchr(colon + 1, ':')) /* two or more colons: a bare IPv6 address */
        return ipaddr_parse(tok, &ip) == 0 && ip.family == AF_INET6;
    size_t hlen = colon ? (size_t)(colon - tok) : strlen(tok);
    if (hlen >= sizeof(host))
        return false;
    memcpy(host, tok, hlen);
    host[hlen] = '\0';
    if (ipaddr_parse(host, &ip) < 0 || ip.family != AF_INET)
        return false;
    return !colon || parse_port(colon + 1, &port) == 0;
}

/* ---- loading ----------------------------------------------------------------------------- */

struct conf_error {
    int line;
    size_t seq;
    char *msg;
};

struct conf_loader {
    struct conf *conf;
    const char *name;
    const char *text;
    size_t len, pos;
    int lineno;
    bool line_is_kv;                      /* the line just handed to inih is a key line */
    bool handler_called;                  /* ... and inih called the handler for it */
    int section;                          /* CONF_SEC_*, or SECTION_NONE / SECTION_SKIP */
    size_t listener;                      /* index of the current listener */
    char *label;                          /* "[smtp]", "[listener:mx]" for messages */
    int set_line[CONF_N_SETTINGS];        /* singleton sections: line each key was set on */
    int (*listener_set)[CONF_N_SETTINGS]; /* the same per listener */
    struct conf_error *errors;
    size_t errors_count, errors_cap;
};

#define SECTION_NONE (-1) /* before the first [section] */
#define SECTION_SKIP (-2) /* inside an unknown or broken section: its keys are not checked */

static void err_add(struct conf_loader *ld, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err_add(struct conf_loader *ld, int line, const char *fmt, ...)
{
    if (ld->errors_count == ld->errors_cap) {
        ld->errors_cap = ld->errors_cap ? ld->errors_cap * 2 : 8;
        ld->errors = xrealloc(ld->errors, ld->errors_cap * sizeof(*ld->errors));
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = xstrdup("(out of memory)");
    va_end(ap);
    ld->errors[ld->errors_count] = (struct conf_error){line, ld->errors_count, msg};
    ld->errors_count++;
}

static int error_cmp(const void *a, const void *b)
{
    const struct conf_error *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void *setting_field(void *base, const struct conf_setting_def *s)
{
    return (char *)base + s->offset;
}

/* Parse value for setting s into base (struct conf or struct conf_listener). On error returns -1
 * with *msg_r a malloc'ed message (without the "[section] key: " prefix). */
static int setting_set(const struct conf_setting_def *s, void *base, const char *value,
                       char **msg_r)
{
    void *field = setting_field(base, s);
    unsigned long long v;
    unsigned secs;
    bool b;
    int idx;
    char lo[24], hi[24];
    switch (s->type) {
    case CONF_T_STR:
    case CONF_T_DOMAIN: {
        size_t n = strlen(value);
        if (n < s->min) {
            *msg_r = xstrdup("must not be empty");
            return -1;
        }
        if (n > s->max) {
            *msg_r = xasprintf("too long (at most %lu characters)", s->max);
            return -1;
        }
        if (s->type == CONF_T_DOMAIN && n > 0 && !hostname_is_valid(value)) {
            *msg_r = xasprintf("invalid host name \"%s\"", value);
            return -1;
        }
        free(*(char **)field);
        *(char **)field = xstrdup(value);
        return 0;
    }
    case CONF_T_UINT:
    case CONF_T_KB: {
        const char *digits = value[0] == '-' ? value + 1 : value; /* "-1": out of range */
        int r = parse_ulong(digits, ULLONG_MAX, &v);
        if (r == -1) {
            *msg_r = xasprintf("invalid number \"%s\"", value);
            return -1;
        }
        if (r == -2 || digits != value || v < s->min || v > s->max) {
            *msg_r = xasprintf("must be between %lu and %lu", s->min, s->max);
            return -1;
        }
        *(unsigned *)field = (unsigned)v;
        return 0;
    }
    case CONF_T_DURATION:
        if (conf_parse_duration(value, &secs) < 0) {
            *msg_r = xasprintf("invalid duration \"%s\" (use e.g. 30s, 10m, 24h, 36d)", value);
            return -1;
        }
        if (secs < s->min || secs > s->max) {
            format_duration((unsigned)s->min, lo);
            format_duration((unsigned)s->max, hi);
            *msg_r = xasprintf("must be between %s and %s", lo, hi);
            return -1;
        }
        *(unsigned *)field = secs;
        return 0;
    case CONF_T_BOOL:
        if (conf_parse_bool(value, &b) < 0) {
            *msg_r = xasprintf("invalid boolean \"%s\" (use yes or no)", value);
            return -1;
        }
        *(bool *)field = b;
        return 0;
    case CONF_T_CHOICE:
    case CONF_T_ENUM:
        idx = choice_index(s->choices, value);
        if (idx < 0) {
            char *list = choices_list(s->choices, "");
            *msg_r = xasprintf("must be one of %s", list);
            free(list);
            return -1;
        }
        if (s->type == CONF_T_ENUM) {
            *(int *)field = idx;
        } else {
            free(*(char **)field);
            *(char **)field = str_lower(xstrdup(value));
        }
        return 0;
    case CONF_T_NAMESERVERS: {
        struct buf out;
        buf_init(&out, 0);
        buf_append(&out, "", 0);
        char *copy = xstrdup(value), *save = NULL;
        for (char *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
            if (!nameserver_is_valid(tok)) {
                *msg_r =
                    xasprintf("invalid nameserver \"%s\" (use ip, ip:port or [ipv6]:port)", tok);
                free(copy);
                buf_free(&out);
                return -1;
            }
            buf_printf(&out, "%s%s", out.len ? "," : "", tok);
        }
        free(copy);
        free(*(char **)field);
        *(char **)field = buf_steal(&out, NULL);
        return 0;
    }
    case CONF_T_ADDRESS: {
        /* host:port | [ipv6]:port | *:port; host is an IP literal, "*" or "localhost". */
        struct conf_listener *l = base;
        const char *hs, *he, *port;
        struct ipaddr ip;
        bool bracket = value[0] == '[';
        if (bracket) {
            hs = value + 1;
            he = strchr(hs, ']');
            port = he && he[1] == ':' ? he + 2 : NULL;
        } else {
            hs = value;
            he = strrchr(value, ':');
            port = he ? he + 1 : NULL;
        }
        if (!he || !port || he == hs || !*port) {
            *msg_r =
                xasprintf("invalid address \"%s\" (use host:port, [ipv6]:port or *:port)", value);
            return -1;
        }
        char *host = xstrndup(hs, (size_t)(he - hs));
        bool host_ok = bracket ? ipaddr_parse(host, &ip) == 0 && ip.family == AF_INET6
                               : strcmp(host, "*") == 0 || str_ieq(host, "localhost") ||
                                     (ipaddr_parse(host, &ip) == 0 && ip.family == AF_INET);
        if (!host_ok) {
            if (!bracket && strchr(host, ':'))
                *msg_r = xasprintf("invalid address \"%s\" (write an IPv6 address in brackets: "
                                   "[::1]:2525)",
                                   value);
            else
                *msg_r = xasprintf("invalid host \"%s\" (use an IP address, * or localhost)", host);
            free(host);
            return -1;
        }
        int p;
        if (parse_port(port, &p) < 0) {
            *msg_r = xasprintf("invalid port \"%s\" (must be between 1 and 65535)", port);
            free(host);
            return -1;
        }
        if (!bracket)
            str_lower(host);
        free(l->address);
        free(l->host);
        l->address = xstrdup(value);
        l->host = host;
        l->port = p;
        return 0;
    }
    }
    abort();
}

static void section_defaults(enum conf_section_id sec, void *base)
{
    for (size_t i = 0; i < CONF_N_SETTINGS; i++) {
        const struct conf_setting_def *s = &settings[i];
        if (s->section != sec || s->type == CONF_T_ADDRESS)
            continue;
        char *msg = NULL;
        if (setting_set(s, base, s->def, &msg) < 0) {
            fprintf(stderr, "conf_settings.def: [%s] %s: bad default: %s\n", sections[sec].id,
                    s->key, msg);
            abort();
        }
    }
}

static char *path_join(const char *dir, const char *file)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    return xasprintf("%.*s%s%s", (int)n, dir, (n && dir[n - 1] == '/') ? "" : "/", file);
}

/* Fill the settings whose empty value means "derive it". */
static void conf_finish(struct conf *conf)
{
    if (!*conf->hostname) {
        char host[256] = "";
        if (gethostname(host, sizeof(host) - 1) < 0 || !*host)
            str_copy(host, sizeof(host), "localhost");
        free(conf->hostname);
        conf->hostname = xstrdup(host);
    }
    if (!*conf->database) {
        free(conf->database);
        conf->database = path_join(conf->data_dir, "gannet.db");
    }
    if (!*conf->certificate) {
        free(conf->certificate);
        conf->certificate = path_join(conf->data_dir, "tls/cert.pem");
    }
    if (!*conf->private_key) {
        free(conf->private_key);
        conf->private_key = path_join(conf->data_dir, "tls/key.pem");
    }
}

static struct conf *conf_new(const char *path)
{
    struct conf *conf = xcalloc(1, sizeof(*conf));
    conf->path = xstrdup(path);
    for (int sec = 0; sec < CONF_SEC_COUNT; sec++)
        if (!sections[sec].named)
            section_defaults((enum conf_section_id)sec, conf);
    return conf;
}

struct conf *conf_defaults(void)
{
    struct conf *conf = conf_new("");
    conf_finish(conf);
    return conf;
}

static void free_strings(enum conf_section_id sec, void *base)
{
    for (size_t i = 0; i < CONF_N_SETTINGS; i++) {
        const struct conf_setting_def *s = &settings[i];
        if (s->section != sec)
            continue;
        switch (s->type) {
        case CONF_T_STR:
        case CONF_T_DOMAIN:
        case CONF_T_CHOICE:
        case CONF_T_NAMESERVERS:
        case CONF_T_ADDRESS:
            XFREE((char **)setting_field(base, s));
            break;
        default:
            break;
        }
    }
}

void conf_free(struct conf **confp)
{
    struct conf *conf = *confp;
    if (!conf)
        return;
    for (size_t i = 0; i < conf->listeners_count; i++) {
        free_strings(CONF_SEC_listener, &conf->listeners[i]);
        free(conf->listeners[i].name);
        free(conf->listeners[i].host);
    }
    free(conf->listeners);
    for (int sec = 0; sec < CONF_SEC_COUNT; sec++)
        if (!sections[sec].named)
            free_strings((enum conf_section_id)sec, conf);
    free(conf->path);
    free(conf);
    *confp = NULL;
}

static bool listener_name_is_valid(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

static void listener_add(struct conf_loader *ld, const char *name)
{
    struct conf *conf = ld->conf;
    size_t n = conf->listeners_count;
    conf->listeners = xrealloc(conf->listeners, (n + 1) * sizeof(*conf->listeners));
    ld->listener_set = xrealloc(ld->listener_set, (n + 1) * sizeof(*ld->listener_set));
    struct conf_listener *l = &conf->listeners[n];
    memset(l, 0, sizeof(*l));
    memset(ld->listener_set[n], 0, sizeof(ld->listener_set[n]));
    l->name = xstrdup(name);
    l->line = ld->lineno;
    section_defaults(CONF_SEC_listener, l);
    conf->listeners_count = n + 1;
    ld->listener = n;
}

/* A "[...]" line: text is the line with blanks trimmed, starting with '['. */
static void section_begin(struct conf_loader *ld, char *text)
{
    ld->section = SECTION_SKIP;
    XFREE(&ld->label);
    char *close = strchr(text, ']');
    if (!close) {
        err_add(ld, ld->lineno, "malformed section header %s (missing \"]\")", text);
        return;
    }
    char *after = close + 1;
    while (*after == ' ' || *after == '\t')
        after++;
    if (*after && *after != ';' && *after != '#') {
        err_add(ld, ld->lineno, "unexpected text after section header: %s", after);
        return;
    }
    *close = '\0';
    char *id = str_trim(text + 1), *name = NULL, *colon = strchr(id, ':');
    if (colon) {
        *colon = '\0';
        str_trim(id);
        name = str_trim(colon + 1);
    }
    int sec = -1;
    for (int i = 0; i < CONF_SEC_COUNT; i++)
        if (str_ieq(id, sections[i].id) && sections[i].named == (name != NULL))
            sec = i;
    if (sec < 0) {
        for (int i = 0; i < CONF_SEC_COUNT; i++)
            if (!name && sections[i].named && str_ieq(id, sections[i].id)) {
                err_add(ld, ld->lineno, "section [%s] needs a name: [%s:NAME]", id, sections[i].id);
                return;
            }
        err_add(ld, ld->lineno, "unknown section [%s%s%s]", id, name ? ":" : "", name ? name : "");
        return;
    }
    if (!sections[sec].named) {
        ld->section = sec;
        ld->label = xasprintf("[%s]", sections[sec].id);
        return;
    }
    /* [listener:NAME], the only named section so far. */
    if (!*name || strlen(name) > CONF_LISTENER_NAME_MAX || !listener_name_is_valid(name)) {
        err_add(ld, ld->lineno,
                "invalid listener name \"%s\" (use up to %d letters, digits, '.', '-' and '_')",
                name, CONF_LISTENER_NAME_MAX);
        return;
    }
    for (size_t i = 0; i < ld->conf->listeners_count; i++)
        if (str_ieq(ld->conf->listeners[i].name, name)) {
            err_add(ld, ld->lineno, "duplicate section [%s:%s] (first on line %d)",
                    sections[sec].id, name, ld->conf->listeners[i].line);
            return;
        }
    listener_add(ld, name);
    ld->section = sec;
    ld->label = xasprintf("[%s:%s]", sections[sec].id, name);
}

static int handler(void *user, const char *inih_section, const char *key, const char *value)
{
    struct conf_loader *ld = user;
    (void)inih_section; /* inih never sees our headers; ld->section is the truth */
    ld->handler_called = true;
    if (ld->section == SECTION_SKIP)
        return 1;
    if (!*key) {
        err_add(ld, ld->lineno, "missing key name before \"=\"");
        return 1;
    }
    if (ld->section == SECTION_NONE) {
        err_add(ld, ld->lineno, "key \"%s\" outside of any [section]", key);
        return 1;
    }
    const struct conf_setting_def *s = NULL;
    size_t idx = 0;
    for (size_t i = 0; i < CONF_N_SETTINGS && !s; i++)
        if (settings[i].section == (enum conf_section_id)ld->section &&
            str_ieq(settings[i].key, key)) {
            s = &settings[i];
            idx = i;
        }
    if (!s) {
        err_add(ld, ld->lineno, "unknown key \"%s\" in %s", key, ld->label);
        return 1;
    }
    bool listener = ld->section == CONF_SEC_listener;
    int *set_line = listener ? &ld->listener_set[ld->listener][idx] : &ld->set_line[idx];
    if (*set_line) {
        err_add(ld, ld->lineno, "%s %s: set twice (first on line %d)", ld->label, s->key,
                *set_line);
        return 1;
    }
    *set_line = ld->lineno;
    void *base = listener ? (void *)&ld->conf->listeners[ld->listener] : (void *)ld->conf;
    char *msg = NULL;
    if (setting_set(s, base, value, &msg) < 0) {
        err_add(ld, ld->lineno, "%s %s: %s", ld->label, s->key, msg);
        free(msg);
        return 1;
    }
    if (s->type == CONF_T_ADDRESS) {
        const struct conf_listener *l = &ld->conf->listeners[ld->listener];
        for (size_t i = 0; i < ld->listener; i++) {
            const struct conf_listener *o = &ld->conf->listeners[i];
            if (o->host && o->port == l->port && str_ieq(o->host, l->host)) {
                err_add(ld, ld->lineno, "%s address: %s is already used by [listener:%s]",
                        ld->label, l->address, o->name);
                break;
            }
        }
    }
    return 1;
}

/* After inih processed a key line: no handler call means inih found no "=" or ":". */
static void check_previous_line(struct conf_loader *ld)
{
    if (ld->line_is_kv && !ld->handler_called)
        err_add(ld, ld->lineno, "expected \"key = value\", \"[section]\" or a comment");
    ld->line_is_kv = false;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* ini_reader: hand inih the next line, or a blank line for what we handle ourselves. */
static char *reader(char *str, int num, void *stream)
{
    struct conf_loader *ld = stream;
    check_previous_line(ld);
    if (ld->pos >= ld->len)
        return NULL;
    const char *p = ld->text + ld->pos;
    const char *nl = memchr(p, '\n', ld->len - ld->pos);
    size_t n = nl ? (size_t)(nl - p) : ld->len - ld->pos;
    ld->pos += n + (nl ? 1 : 0);
    ld->lineno++;
    if (ld->lineno == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3;
        n -= 3;
    }
    while (n > 0 && is_blank(*p)) {
        p++;
        n--;
    }
    while (n > 0 && is_blank(p[n - 1]))
        n--;
    str[0] = '\n';
    str[1] = '\0';
    if (n == 0 || *p == ';' || *p == '#')
        return str;
    if (*p == '[') {
        char *line = xstrndup(p, n);
        section_begin(ld, line);
        free(line);
        return str;
    }
    if (n + 2 > (size_t)num) {
        err_add(ld, ld->lineno, "line too long (at most %d characters)", num - 2);
        return str;
    }
    memcpy(str, p, n);
    str[n] = '\n';
    str[n + 1] = '\0';
    ld->line_is_kv = true;
    ld->handler_called = false;
    return str;
}

static struct conf *load_text(const char *text, size_t len, const char *name, char **errors_r)
{
    struct conf_loader ld = {0};
    ld.conf = conf_new(name);
    ld.name = name;
    ld.text = text;
    ld.len = len;
    ld.section = SECTION_NONE;
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int line = 1;
        for (const char *p = text; p < nul; p++)
            line += *p == '\n';
        err_add(&ld, line, "contains a NUL byte");
    } else {
        int r = ini_parse_stream(reader, &ld, handler, &ld);
        check_previous_line(&ld);
        if (r != 0 && ld.errors_count == 0)
            err_add(&ld, r > 0 ? r : 0, "cannot parse (inih error %d)", r);
    }
    for (size_t i = 0; i < ld.conf->listeners_count; i++)
        if (!ld.listener_set[i][CONF_IDX_listener_address]) /* not "invalid": missing */
            err_add(&ld, ld.conf->listeners[i].line,
                    "[listener:%s] address: missing (every listener needs one, e.g. "
                    "127.0.0.1:2525)",
                    ld.conf->listeners[i].name);

    struct conf *conf = ld.conf;
    if (ld.errors_count) {
        qsort(ld.errors, ld.errors_count, sizeof(*ld.errors), error_cmp);
        struct buf out;
        buf_init(&out, 0);
        for (size_t i = 0; i < ld.errors_count; i++) {
            if (ld.errors[i].line > 0)
                buf_printf(&out, "%s:%d: %s\n", name, ld.errors[i].line, ld.errors[i].msg);
            else
                buf_printf(&out, "%s: %s\n", name, ld.errors[i].msg);
            free(ld.errors[i].msg);
        }
        if (errors_r)
            *errors_r = buf_steal(&out, NULL);
        else
            buf_free(&out);
        conf_free(&conf);
    } else {
        conf_finish(conf);
        if (errors_r)
            *errors_r = NULL;
    }
    free(ld.errors);
    free(ld.label);
    free(ld.listener_set);
    return conf;
}

struct conf *conf_load_string(const char *text, const char *name, char **errors_r)
{
    return load_text(text, strlen(text), name, errors_r);
}

struct conf *conf_load(const char *path, char **errors_r)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errors_r)
            *errors_r = xasprintf("%s: cannot read: %s\n", path, strerror(errno));
        return NULL;
    }
    struct buf text;
    buf_init(&text, CONF_FILE_MAX);
    char chunk[8192];
    size_t n;
    bool too_large = false;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (buf_append(&text, chunk, n) < 0) {
            too_large = true;
            break;
        }
    int read_errno = ferror(f) ? errno : 0;
    fclose(f);
    if (too_large || read_errno) {
        if (errors_r)
            *errors_r = too_large ? xasprintf("%s: cannot read: larger than %d bytes\n", path,
                                              CONF_FILE_MAX)
                                  : xasprintf("%s: cannot read: %s\n", path,
                                              strerror(read_errno ? read_errno : EIO));
        buf_free(&text);
        return NULL;
    }
    struct conf *conf = load_text(text.data ? text.data : "", text.len, path, errors_r);
    buf_free(&text);
    return conf;
}

int conf_log_level(const struct conf *conf)
{
    static const int levels[] = {LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR};
    int i = choice_index(settings[CONF_IDX_server_log_level].choices, conf->log_level);
    return i >= 0 && i < 4 ? levels[i] : LOG_LEVEL_INFO;
}

/* ---- reference --------------------------------------------------------------------------- */

/* Markdown table cell text: '|' and '*' escaped, '<' '>' as entities. */
static void md_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|' || *s == '*')
            fprintf(f, "\\%c", *s);
        else if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else
            fputc(*s, f);
    }
}

static void md_type(FILE *f, const struct conf_setting_def *s)
{
    char lo[24], hi[24];
    switch (s->type) {
    case CONF_T_STR:
        fputs("text", f);
        break;
    case CONF_T_DOMAIN:
        fputs("host name", f);
        break;
    case CONF_T_UINT:
        fprintf(f, "number, %lu–%lu", s->min, s->max);
        break;
    case CONF_T_KB:
        fprintf(f, "size in KB, %lu–%lu", s->min, s->max);
        break;
    case CONF_T_DURATION:
        format_duration((unsigned)s->min, lo);
        format_duration((unsigned)s->max, hi);
        fprintf(f, "duration, %s–%s", lo, hi);
        break;
    case CONF_T_BOOL:
        fputs("yes/no", f);
        break;
    case CONF_T_CHOICE:
    case CONF_T_ENUM: {
        char *list = choices_list(s->choices, "`");
        fputs("one of ", f);
        fputs(list, f);
        free(list);
        break;
    }
    case CONF_T_NAMESERVERS:
        fputs("address list", f);
        break;
    case CONF_T_ADDRESS:
        fputs("host:port", f);
        break;
    }
}

void conf_write_reference(FILE *f)
{
    fputs("| Section | Key | Type | Default | Description |\n"
          "|---|---|---|---|---|\n",
          f);
    for (size_t i = 0; i < CONF_N_SETTINGS; i++) {
        const struct conf_setting_def *s = &settings[i];
        const struct conf_section_def *sec = &sections[s->section];
        fprintf(f, "| `[%s%s]` | `%s` | ", sec->id, sec->named ? ":NAME" : "", s->key);
        md_type(f, s);
        if (s->type == CONF_T_ADDRESS)
            fputs(" | (required) | ", f);
        else if (*s->def)
            fprintf(f, " | `%s` | ", s->def);
        else
            fputs(" | (empty) | ", f);
        md_text(f, s->doc);
        fputs(" |\n", f);
    }
}
