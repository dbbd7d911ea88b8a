/* dir_admin_net: the routes and IP ranges half of dir_admin.h — validated add/set/del/list,
 * the default IP ranges `gannet init` creates, and the --allow/--deliver/--require-auth comma
 * lists (hmailserver-behaviour.md §2.1 bits, §4.6 routes).
 *
 * IP ranges are stored as family (4/6) plus 16-byte from/to blobs (IPv4 v4-mapped, lib/ipaddr.h)
 * so the SQLite backend matches with blob comparisons. Errors: one line in *err_r. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <strings.h>

#include "dir/dir_admin.h"
#include "dir/dir_admin_int.h"
#include "dir/dir_sqlite.h"
#include "lib/str.h"
#include "mail/addr.h"

#define errf dir_admin_errf
#define q dir_admin_q
#define q_exec dir_admin_exec
#define q_int dir_admin_int
#define col_text dir_admin_col_text

/* ---- flag lists ---- */

struct flag_name {
    const char *name;
    uint32_t bit;
};

static const struct flag_name allow_names[] = {
    {"smtp", DIR_IPR_SMTP}, {"pop3", DIR_IPR_POP3}, {"imap", DIR_IPR_IMAP}, {NULL, 0}};
static const struct flag_name deliver_names[] = {{"ll", DIR_IPR_DELIVER_LL},
                                                 {"le", DIR_IPR_DELIVER_LE},
                                                 {"el", DIR_IPR_DELIVER_EL},
                                                 {"ee", DIR_IPR_DELIVER_EE},
                                                 {NULL, 0}};
static const struct flag_name auth_names[] = {{"ll", DIR_IPR_AUTH_LL},
                                              {"le", DIR_IPR_AUTH_LE},
                                              {"el", DIR_IPR_AUTH_EL},
                                              {"ee", DIR_IPR_AUTH_EE},
                                              {NULL, 0}};

static int parse_flags(const char *s, const struct flag_name *names, const char *what,
                       uint32_t *flags_r, const char **err_r)
{
    uint32_t flags = 0;
    if (str_ieq(s, "none")) {
        *flags_r = 0;
        return 0;
    }
    const char *p = s;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const struct flag_name *f = names;
        for (; f->name; f++)
            if (strlen(f->name) == n && strncasecmp(f->name, p, n) == 0)
                break;
        if (!f->name) {
            char valid[64] = "";
            for (const struct flag_name *g = names; g->name; g++) {
                strcat(valid, g->name);
                strcat(valid, g[1].name ? "," : "");
            }
            *err_r =
                errf("invalid %s \"%.*s\" (a comma list of %s, or none)", what, (int)n, p, valid);
            return -1;
        }
        flags |= f->bit;
        if (!end)
            break;
        p = end + 1;
    }
    *flags_r = flags;
    return 0;
}

int dir_admin_parse_allow(const char *s, uint32_t *flags_r, const char **err_r)
{
    return parse_flags(s, allow_names, "protocol", flags_r, err_r);
}

int dir_admin_parse_deliver(const char *s, uint32_t *flags_r, const char **err_r)
{
    return parse_flags(s, deliver_names, "delivery", flags_r, err_r);
}

int dir_admin_parse_require_auth(const char *s, uint32_t *flags_r, const char **err_r)
{
    return parse_flags(s, auth_names, "delivery", flags_r, err_r);
}

static void format_flags(uint32_t flags, const struct flag_name *names, char *out, size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    for (const struct flag_name *f = names; f->name; f++) {
        if (!(flags & f->bit))
            continue;
        int n = snprintf(out + len, size - len, "%s%s", len ? "," : "", f->name);
        if (n < 0 || (size_t)n >= size - len)
            break;
        len += (size_t)n;
    }
    if (len == 0)
        str_copy(out, size, "none");
}

void dir_admin_format_allow(uint32_t flags, char *out, size_t size)
{
    format_flags(flags, allow_names, out, size);
}

void dir_admin_format_deliver(uint32_t flags, char *out, size_t size)
{
    format_flags(flags, deliver_names, out, size);
}

void dir_admin_format_require_auth(uint32_t flags, char *out, size_t size)
{
    format_flags(flags, auth_names, out, size);
}

/* ---- routes ---- */

static const char *const security_names[] = {"none", "starttls", "tls"};

static int check_pattern(const char *p, const char **err_r)
{
    bool wild = false, ok = *p && strlen(p) < DIR_NAME_MAX;
    for (const char *c = p; ok && *c; c++) {
        if (*c == '*' || *c == '?')
            wild = true;
        else if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.' && *c != '_')
            ok = false;
    }
    if (ok && !wild)
        ok = addr_domain_is_valid(p);
    if (!ok) {
        *err_r = errf("invalid route domain \"%s\" (a domain, '*' and '?' allowed)", p);
        return -1;
    }
    return 0;
}

/* host: "name", "1.2.3.4", "::1", or several of those separated by '|'. */
static int check_host(const char *host, const char **err_r)
{
    bool ok = *host && strlen(host) < DIR_NAME_MAX && !dir_admin_has_ctl(host);
    const char *p = host;
    while (ok) {
        const char *end = strchr(p, '|');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char part[DIR_NAME_MAX];
        struct ipaddr ip;
        memcpy(part, p, n);
        part[n] = '\0';
        ok = n > 0 && (ipaddr_parse(part, &ip) == 0 || addr_domain_is_valid(part));
        if (!end)
            break;
        p = end + 1;
    }
    if (!ok) {
        *err_r = errf("invalid route host \"%s\"", host);
        return -1;
    }
    return 0;
}

#define ROUTE_COLS                                                                                 \
    "id, pattern, host, port, all_addresses, local_recipient, local_sender, auth_user, "           \
    "auth_password, security"

static void route_row(sqlite3_stmt *st, struct dir_route *r)
{
    memset(r, 0, sizeof(*r));
    r->id = sqlite3_column_int64(st, 0);
    col_text(st, 1, r->pattern, sizeof(r->pattern));
    col_text(st, 2, r->host, sizeof(r->host));
    r->port = (unsigned)sqlite3_column_int(st, 3);
    r->all_addresses = sqlite3_column_int(st, 4) != 0;
    r->local_recipient = sqlite3_column_int(st, 5) != 0;
    r->local_sender = sqlite3_column_int(st, 6) != 0;
    col_text(st, 7, r->auth_user, sizeof(r->auth_user));
    col_text(st, 8, r->auth_password, sizeof(r->auth_password));
    const unsigned char *sec = sqlite3_column_text(st, 9);
    for (int i = 0; i < 3; i++)
        if (sec && strcmp((const char *)sec, security_names[i]) == 0)
            r->security = (enum dir_security)i;
}

static bool flag_ok(int v)
{
    return v == DIR_ADMIN_KEEP || v == 0 || v == 1;
}

static int route_apply(struct dir_route *r, const struct dir_admin_route *o, const char **err_r)
{
    if (!flag_ok(o->local_recipient) || !flag_ok(o->local_sender)) {
        *err_r = "invalid flag value";
        return -1;
    }
    if (o->host) {
        if (check_host(o->host, err_r) < 0)
            return -1;
        str_copy(r->host, sizeof(r->host), o->host);
    }
    if (o->port != DIR_ADMIN_KEEP) {
        if (o->port < 1 || o->port > 65535) {
            *err_r = errf("invalid port %lld (1..65535)", (long long)o->port);
            return -1;
        }
        r->port = (unsigned)o->port;
    }
    if (o->local_recipient != DIR_ADMIN_KEEP)
        r->local_recipient = o->local_recipient;
    if (o->local_sender != DIR_ADMIN_KEEP)
        r->local_sender = o->local_sender;
    if (o->auth_user) {
        const char *pw = o->auth_password ? o->auth_password : "";
        if (dir_admin_has_ctl(o->auth_user) || strlen(o->auth_user) >= sizeof(r->auth_user) ||
            (*o->auth_user && !*pw)) {
            *err_r = "invalid route AUTH user name";
            return -1;
        }
        if (dir_admin_has_ctl(pw) || strlen(pw) >= sizeof(r->auth_password)) {
            *err_r = "invalid route AUTH password";
            return -1;
        }
        str_copy(r->auth_user, sizeof(r->auth_user), o->auth_user);
        str_copy(r->auth_password, sizeof(r->auth_password), *o->auth_user ? pw : "");
    }
    if (o->security) {
        int s = -1;
        for (int i = 0; i < 3; i++)
            if (str_ieq(o->security, security_names[i]))
                s = i;
        if (s < 0) {
            *err_r = errf("invalid security \"%s\" (none, starttls or tls)", o->security);
            return -1;
        }
        r->security = (enum dir_security)s;
    }
    if (o->all_addresses && o->addresses_count > 0) {
        *err_r = "a route takes either all addresses or an address list, not both";
        return -1;
    }
    for (size_t i = 0; i < o->addresses_count; i++)
        if (dir_admin_check_address(o->addresses[i], err_r) < 0)
            return -1;
    if (o->all_addresses)
        r->all_addresses = true;
    if (o->addresses_count > 0)
        r->all_addresses = false;
    return 0;
}

static int route_write_addresses(sqlite3 *db, int64_t id, const struct dir_admin_route *o,
                                 const char **err_r)
{
    if (!o->all_addresses && o->addresses_count == 0)
        return 0;
    if (q_exec(db, err_r, "DELETE FROM route_address WHERE route_id = ?1", "i", id) < 0)
        return -1;
    for (size_t i = 0; i < o->addresses_count; i++)
        if (q_exec(db, err_r,
                   "INSERT OR IGNORE INTO route_address (route_id, address) VALUES (?1, ?2)", "it",
                   id, o->addresses[i]) < 0)
            return -1;
    return 0;
}

static int route_add_tx(sqlite3 *db, const char *pattern, const struct dir_admin_route *o,
                        const char **err_r)
{
    int r = q_int(db, err_r, NULL, "SELECT id FROM route WHERE pattern = ?1", "t", pattern);
    if (r < 0)
        return -1;
    if (r == 1) {
        *err_r = errf("route %s already exists", pattern);
        return -1;
    }
    if (!o->host) {
        *err_r = "missing route host";
        return -1;
    }
    struct dir_route rt = {.port = 25, .all_addresses = true};
    if (route_apply(&rt, o, err_r) < 0)
        return -1;
    if (q_exec(db, err_r,
               "INSERT INTO route (pattern, host, port, all_addresses, local_recipient, "
               "local_sender, auth_user, auth_password, security) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
               "ttiiiittt", pattern, rt.host, (int64_t)rt.port, (int64_t)rt.all_addresses,
               (int64_t)rt.local_recipient, (int64_t)rt.local_sender, rt.auth_user,
               rt.auth_password, security_names[rt.security]) < 0)
        return -1;
    return route_write_addresses(db, sqlite3_last_insert_rowid(db), o, err_r);
}

int dir_admin_route_add(sqlite3 *db, const char *pattern, const struct dir_admin_route *o,
                        const char **err_r)
{
    if (check_pattern(pattern, err_r) < 0 || dir_admin_tx_begin(db, err_r) < 0)
        return -1;
    return dir_admin_tx_end(db, route_add_tx(db, pattern, o, err_r), err_r);
}

static int route_set_tx(sqlite3 *db, const char *pattern, const struct dir_admin_route *o,
                        const char **err_r)
{
    sqlite3_stmt *st =
        q(db, err_r, "SELECT " ROUTE_COLS " FROM route WHERE pattern = ?1", "t", pattern);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        if (dir_admin_step_done(db, st, rc, err_r) == 0)
            *err_r = errf("no such route %s", pattern);
        return -1;
    }
    struct dir_route rt;
    route_row(st, &rt);
    sqlite3_finalize(st);
    if (route_apply(&rt, o, err_r) < 0)
        return -1;
    if (q_exec(db, err_r,
               "UPDATE route SET host = ?2, port = ?3, all_addresses = ?4, local_recipient = ?5, "
               "local_sender = ?6, auth_user = ?7, auth_password = ?8, security = ?9 "
               "WHERE id = ?1",
               "itiiiittt", rt.id, rt.host, (int64_t)rt.port, (int64_t)rt.all_addresses,
               (int64_t)rt.local_recipient, (int64_t)rt.local_sender, rt.auth_user,
               rt.auth_password, security_names[rt.security]) < 0)
        return -1;
    return route_write_addresses(db, rt.id, o, err_r);
}

int dir_admin_route_set(sqlite3 *db, const char *pattern, const struct dir_admin_route *o,
                        const char **err_r)
{
    if (dir_admin_tx_begin(db, err_r) < 0)
        return -1;
    return dir_admin_tx_end(db, route_set_tx(db, pattern, o, err_r), err_r);
}

int dir_admin_route_del(sqlite3 *db, const char *pattern, const char **err_r)
{
    int n = q_exec(db, err_r, "DELETE FROM route WHERE pattern = ?1", "t", pattern);
    if (n < 0)
        return -1;
    if (n == 0) {
        *err_r = errf("no such route %s", pattern);
        return -1;
    }
    return 0;
}

int dir_admin_route_list(sqlite3 *db, void (*fn)(void *ctx, const struct dir_route *r), void *ctx,
                         const char **err_r)
{
    sqlite3_stmt *st = q(db, err_r, "SELECT " ROUTE_COLS " FROM route ORDER BY id", "");
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct dir_route r;
        route_row(st, &r);
        fn(ctx, &r);
    }
    return dir_admin_step_done(db, st, rc, err_r);
}

int dir_admin_route_addresses(sqlite3 *db, int64_t route_id,
                              void (*fn)(void *ctx, const char *address), void *ctx,
                              const char **err_r)
{
    sqlite3_stmt *st = q(db, err_r,
                         "SELECT address FROM route_address WHERE route_id = ?1 "
                         "ORDER BY id",
                         "i", route_id);
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(st, 0));
    return dir_admin_step_done(db, st, rc, err_r);
}

/* ---- IP ranges ---- */

#define IPRANGE_COLS "id, name, family, ip_from, ip_to, priority, flags, expires"

static void col_ip(sqlite3_stmt *st, int col, int af, struct ipaddr *ip)
{
    memset(ip, 0, sizeof(*ip));
    ip->family = af;
    const void *b = sqlite3_column_blob(st, col);
    if (b && sqlite3_column_bytes(st, col) == 16)
        memcpy(ip->b, b, 16);
}

static void iprange_row(sqlite3_stmt *st, struct dir_iprange *r)
{
    memset(r, 0, sizeof(*r));
    r->id = sqlite3_column_int64(st, 0);
    col_text(st, 1, r->name, sizeof(r->name));
    int af = sqlite3_column_int(st, 2) == 6 ? AF_INET6 : AF_INET;
    col_ip(st, 3, af, &r->from);
    col_ip(st, 4, af, &r->to);
    r->priority = sqlite3_column_int(st, 5);
    r->flags = (uint32_t)sqlite3_column_int64(st, 6);
    r->expires = sqlite3_column_int64(st, 7);
}

static int check_iprange_name(const char *name, const char **err_r)
{
    if (!*name || strlen(name) > DIR_IPRANGE_NAME_MAX || dir_admin_has_ctl(name)) {
        *err_r =
            errf("invalid IP range name \"%s\" (1..%d characters)", name, DIR_IPRANGE_NAME_MAX);
        return -1;
    }
    return 0;
}

static int parse_ip(const char *s, struct ipaddr *ip, const char **err_r)
{
    if (ipaddr_parse(s, ip) < 0) {
        *err_r = errf("invalid IP address \"%s\"", s);
        return -1;
    }
    return 0;
}

static int iprange_apply(struct dir_iprange *r, const struct dir_admin_iprange *o,
                         const char **err_r)
{
    if (o->from && parse_ip(o->from, &r->from, err_r) < 0)
        return -1;
    if (o->to && parse_ip(o->to, &r->to, err_r) < 0)
        return -1;
    if (r->from.family != r->to.family) {
        *err_r = errf("IP range \"%s\": from and to must both be IPv4 or both IPv6", r->name);
        return -1;
    }
    if (ipaddr_cmp(&r->from, &r->to) > 0) {
        char a[IPADDR_STRLEN], b[IPADDR_STRLEN];
        ipaddr_format(&r->from, a);
        ipaddr_format(&r->to, b);
        *err_r = errf("IP range \"%s\": from %s is above to %s", r->name, a, b);
        return -1;
    }
    if (o->has_priority)
        r->priority = o->priority;
    r->flags = (r->flags & ~o->flags_mask) | (o->flags & o->flags_mask);
    if (o->has_expires) {
        if (o->expires < 0) {
            *err_r = "invalid expiry time";
            return -1;
        }
        r->expires = o->expires;
    }
    return 0;
}

static int iprange_insert(sqlite3 *db, const struct dir_iprange *r, const char **err_r)
{
    return q_exec(db, err_r,
                  "INSERT INTO iprange (name, family, ip_from, ip_to, priority, flags, expires) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                  "tibbiii", r->name, (int64_t)dir_sqlite_family(r->from.family), r->from.b,
                  r->to.b, (int64_t)r->priority, (int64_t)r->flags, r->expires) < 0
               ? -1
               : 0;
}

static int iprange_add_tx(sqlite3 *db, const char *name, const struct dir_admin_iprange *o,
                          const char **err_r)
{
    int r = q_int(db, err_r, NULL, "SELECT id FROM iprange WHERE name = ?1", "t", name);
    if (r < 0)
        return -1;
    if (r == 1) {
        *err_r = errf("IP range \"%s\" already exists", name);
        return -1;
    }
    if (!o->from) {
        *err_r = "missing IP range start address (--from)";
        return -1;
    }
    struct dir_iprange ipr = {.priority = 10, .flags = DIR_IPR_DEFAULT_FLAGS};
    str_copy(ipr.name, sizeof(ipr.name), name);
    /* --to defaults to --from: a range of one address. */
    struct dir_admin_iprange o2 = *o;
    if (!o2.to)
        o2.to = o2.from;
    if (iprange_apply(&ipr, &o2, err_r) < 0)
        return -1;
    return iprange_insert(db, &ipr, err_r);
}

int dir_admin_iprange_add(sqlite3 *db, const char *name, const struct dir_admin_iprange *o,
                          const char **err_r)
{
    if (check_iprange_name(name, err_r) < 0 || dir_admin_tx_begin(db, err_r) < 0)
        return -1;
    return dir_admin_tx_end(db, iprange_add_tx(db, name, o, err_r), err_r);
}

static int iprange_set_tx(sqlite3 *db, const char *name, const struct dir_admin_iprange *o,
                          const char **err_r)
{
    sqlite3_stmt *st =
        q(db, err_r, "SELECT " IPRANGE_COLS " FROM iprange WHERE name = ?1", "t", name);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        if (dir_admin_step_done(db, st, rc, err_r) == 0)
            *err_r = errf("no such IP range \"%s\"", name);
        return -1;
    }
    struct dir_iprange ipr;
    iprange_row(st, &ipr);
    sqlite3_finalize(st);
    if (iprange_apply(&ipr, o, err_r) < 0)
        return -1;
    return q_exec(db, err_r,
                  "UPDATE iprange SET family = ?2, ip_from = ?3, ip_to = ?4, priority = ?5, "
                  "flags = ?6, expires = ?7 WHERE id = ?1",
                  "iibbiii", ipr.id, (int64_t)dir_sqlite_family(ipr.from.family), ipr.from.b,
                  ipr.to.b, (int64_t)ipr.priority, (int64_t)ipr.flags, ipr.expires) < 0
               ? -1
               : 0;
}

int dir_admin_iprange_set(sqlite3 *db, const char *name, const struct dir_admin_iprange *o,
                          const char **err_r)
{
    if (dir_admin_tx_begin(db, err_r) < 0)
        return -1;
    return dir_admin_tx_end(db, iprange_set_tx(db, name, o, err_r), err_r);
}

int dir_admin_iprange_del(sqlite3 *db, const char *name, const char **err_r)
{
    int n = q_exec(db, err_r, "DELETE FROM iprange WHERE name = ?1", "t", name);
    if (n < 0)
        return -1;
    if (n == 0) {
        *err_r = errf("no such IP range \"%s\"", name);
        return -1;
    }
    return 0;
}

int dir_admin_iprange_list(sqlite3 *db, void (*fn)(void *ctx, const struct dir_iprange *r),
                           void *ctx, const char **err_r)
{
    sqlite3_stmt *st =
        q(db, err_r, "SELECT " IPRANGE_COLS " FROM iprange ORDER BY priority DESC, id", "");
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct dir_iprange r;
        iprange_row(st, &r);
        fn(ctx, &r);
    }
    return dir_admin_step_done(db, st, rc, err_r);
}

/* design.md §5. hMailServer's defaults (behaviour §2.2) have no IPv6 range; Gannet adds the
 * IPv6 twins so ::1 and IPv6 clients are treated like their IPv4 counterparts. */
static const struct {
    const char *name, *from, *to;
    int priority;
    uint32_t flags;
} default_ranges[] = {
    {"My computer", "127.0.0.1", "127.0.0.1", 30,
     DIR_IPR_ALLOW_MASK | DIR_IPR_DELIVER_MASK | DIR_IPR_AUTH_EE | DIR_IPR_ANTISPAM},
    {"My computer (IPv6)", "::1", "::1", 30,
     DIR_IPR_ALLOW_MASK | DIR_IPR_DELIVER_MASK | DIR_IPR_AUTH_EE | DIR_IPR_ANTISPAM},
    {"Internet", "0.0.0.0", "255.255.255.255", 10,
     DIR_IPR_ALLOW_MASK | DIR_IPR_DELIVER_MASK | DIR_IPR_AUTH_LL | DIR_IPR_AUTH_LE |
         DIR_IPR_AUTH_EE | DIR_IPR_ANTISPAM | DIR_IPR_TLS_FOR_AUTH},
    {"Internet (IPv6)", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 10,
     DIR_IPR_ALLOW_MASK | DIR_IPR_DELIVER_MASK | DIR_IPR_AUTH_LL | DIR_IPR_AUTH_LE |
         DIR_IPR_AUTH_EE | DIR_IPR_ANTISPAM | DIR_IPR_TLS_FOR_AUTH},
};

static int iprange_defaults_tx(sqlite3 *db, int *created_r, const char **err_r)
{
    int64_t count = 0;
    if (q_int(db, err_r, &count, "SELECT count(*) FROM iprange", "") < 0)
        return -1;
    if (count > 0)
        return 0;
    for (size_t i = 0; i < sizeof(default_ranges) / sizeof(default_ranges[0]); i++) {
        struct dir_iprange r = {.priority = default_ranges[i].priority,
                                .flags = default_ranges[i].flags};
        str_copy(r.name, sizeof(r.name), default_ranges[i].name);
        if (ipaddr_parse(default_ranges[i].from, &r.from) < 0 ||
            ipaddr_parse(default_ranges[i].to, &r.to) < 0) {
            *err_r = "internal error: bad default IP range";
            return -1;
        }
        if (iprange_insert(db, &r, err_r) < 0)
            return -1;
        (*created_r)++;
    }
    return 0;
}

int dir_admin_iprange_defaults(sqlite3 *db, int *created_r, const char **err_r)
{
    *created_r = 0;
    if (dir_admin_tx_begin(db, err_r) < 0)
        return -1;
    int ret = dir_admin_tx_end(db, iprange_defaults_tx(db, created_r, err_r), err_r);
    if (ret < 0)
        *created_r = 0;
    return ret;
}
