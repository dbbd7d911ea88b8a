/* cli_iprange: `gannet iprange add|set|del|list` (design.md §5, hmailserver-behaviour.md §2).
 * An IP range says what clients in it may do: connect with which protocols, deliver in which
 * directions, where SMTP AUTH is required, whether anti-spam applies, whether AUTH needs TLS.
 * The range of the highest priority containing the client address applies. Listing: highest
 * priority first, tab-separated with a header line. Exit status per cli.h: 0, 1 runtime error,
 * 64 usage, 78 configuration. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "conf/conf.h"
#include "dir/dir_admin.h"
#include "lib/str.h"

static const char iprange_usage[] =
    "usage: gannet iprange add NAME --from IP [--to IP] [OPTIONS]\n"
    "       gannet iprange set NAME OPTIONS\n"
    "       gannet iprange del NAME\n"
    "       gannet iprange list\n"
    "\n"
    "  --from IP, --to IP                 the range, both IPv4 or both IPv6 (--to defaults to\n"
    "                                     --from: a single address)\n"
    "  --priority N                       the highest priority containing a client wins\n"
    "                                     (default 10)\n"
    "  --allow smtp,pop3,imap|none        protocols clients may connect with (default all)\n"
    "  --deliver ll,le,el,ee|none         allowed deliveries (default all)\n"
    "  --require-auth ll,le,el,ee|none    deliveries that need SMTP AUTH (default ll,le,ee)\n"
    "  --antispam | --no-antispam         run anti-spam checks (default on)\n"
    "  --require-tls-auth | --no-require-tls-auth\n"
    "                                     AUTH/USER/LOGIN only over TLS (default off)\n"
    "  --expires DURATION|never           stop applying after DURATION from now (30m, 24h, 7d);\n"
    "                                     never = no expiry (the default)\n"
    "\n"
    "ll = local sender to local recipient, le = local to external, el = external to local,\n"
    "ee = external to external (relaying). A sender or recipient is local when its domain is a\n"
    "local domain (or a route says so).\n"
    "\n"
    "list prints: name, from, to, priority, allow, deliver, require_auth, antispam, tls_auth,\n"
    "expires (\"never\" or UTC time)\n";

static const struct cli_opt iprange_opts[] = {
    {"--from", 1, false},
    {"--to", 1, false},
    {"--priority", 1, false},
    {"--allow", 1, false},
    {"--deliver", 1, false},
    {"--require-auth", 1, false},
    {"--antispam", 0, false},
    {"--no-antispam", 0, false},
    {"--require-tls-auth", 0, false},
    {"--no-require-tls-auth", 0, false},
    {"--expires", 1, false},
    {NULL, 0, false},
};
static const struct cli_opt no_opts[] = {{NULL, 0, false}};

/* Apply a comma-list option to o->flags under mask. Returns 0, or CLI_EX_USAGE. */
static int flag_list(const struct cli_args *a, const char *name, uint32_t mask,
                     int (*parse)(const char *s, uint32_t *flags_r, const char **err_r),
                     struct dir_admin_iprange *o)
{
    const char *v = cli_args_get(a, name, 0);
    if (!v)
        return 0;
    uint32_t flags = 0;
    const char *err = NULL;
    if (parse(v, &flags, &err) < 0)
        return cli_usage_error(a->cmd, "%s: %s", name, err);
    o->flags |= flags;
    o->flags_mask |= mask;
    return 0;
}

/* An on/off option for one bit. */
static int flag_bit(const struct cli_args *a, const char *on, const char *off, uint32_t bit,
                    struct dir_admin_iprange *o)
{
    int v;
    int rc = cli_args_flag(a, on, off, &v);
    if (rc != 0 || v < 0)
        return rc;
    o->flags_mask |= bit;
    if (v)
        o->flags |= bit;
    return 0;
}

static int iprange_addset(const char *config_path, int argc, char **argv, bool add)
{
    static const char *const pos[] = {"NAME", NULL};
    const char *cmd = add ? "gannet iprange add" : "gannet iprange set";
    struct cli_args a;
    int rc = cli_args_begin(&a, cmd, iprange_usage, iprange_opts, pos, 1, argc, argv);
    if (rc >= 0)
        goto out;
    struct dir_admin_iprange o = {0};
    o.from = cli_args_get(&a, "--from", 0);
    o.to = cli_args_get(&a, "--to", 0);
    int64_t priority = 0;
    if ((rc = cli_args_int(&a, "--priority", -1000000, 1000000, &priority)) != 0 ||
        (rc = flag_list(&a, "--allow", DIR_IPR_ALLOW_MASK, dir_admin_parse_allow, &o)) != 0 ||
        (rc = flag_list(&a, "--deliver", DIR_IPR_DELIVER_MASK, dir_admin_parse_deliver, &o)) != 0 ||
        (rc = flag_list(&a, "--require-auth", DIR_IPR_AUTH_MASK, dir_admin_parse_require_auth,
                        &o)) != 0 ||
        (rc = flag_bit(&a, "--antispam", "--no-antispam", DIR_IPR_ANTISPAM, &o)) != 0 ||
        (rc = flag_bit(&a, "--require-tls-auth", "--no-require-tls-auth", DIR_IPR_TLS_FOR_AUTH,
                       &o)) != 0)
        goto out;
    o.has_priority = cli_args_has(&a, "--priority");
    o.priority = (int)priority;
    const char *exp = cli_args_get(&a, "--expires", 0);
    if (exp) {
        unsigned secs = 0;
        o.has_expires = true;
        if (str_ieq(exp, "never") || str_ieq(exp, "none"))
            o.expires = 0;
        else if (conf_parse_duration(exp, &secs) == 0 && secs > 0)
            o.expires = (int64_t)time(NULL) + secs;
        else {
            rc =
                cli_usage_error(cmd, "invalid --expires value \"%s\" (30m, 24h, 7d or never)", exp);
            goto out;
        }
    }
    if (add && !o.from) {
        rc = cli_usage_error(cmd, "missing --from");
        goto out;
    }
    if (!add && !o.from && !o.to && !o.has_priority && !o.flags_mask && !o.has_expires) {
        rc = cli_usage_error(cmd, "nothing to change (try --help)");
        goto out;
    }
    struct cli_db c;
    if ((rc = cli_db_open(config_path, &c)) != 0)
        goto out;
    const char *err = NULL;
    int r = add ? dir_admin_iprange_add(c.db, a.pos[0], &o, &err)
                : dir_admin_iprange_set(c.db, a.pos[0], &o, &err);
    rc = r < 0 ? cli_fail(err) : 0;
    cli_db_close(&c);
out:
    cli_args_free(&a);
    return rc;
}

static int iprange_add(const char *config_path, int argc, char **argv)
{
    return iprange_addset(config_path, argc, argv, true);
}

static int iprange_set(const char *config_path, int argc, char **argv)
{
    return iprange_addset(config_path, argc, argv, false);
}

static int iprange_del(const char *config_path, int argc, char **argv)
{
    return cli_del_one(config_path, argc, argv, "gannet iprange del", iprange_usage, "NAME",
                       dir_admin_iprange_del);
}

static void print_iprange(void *ctx, const struct dir_iprange *r)
{
    (void)ctx;
    char from[IPADDR_STRLEN], to[IPADDR_STRLEN], allow[64], deliver[64], auth[64], exp[32];
    ipaddr_format(&r->from, from);
    ipaddr_format(&r->to, to);
    dir_admin_format_allow(r->flags, allow, sizeof(allow));
    dir_admin_format_deliver(r->flags, deliver, sizeof(deliver));
    dir_admin_format_require_auth(r->flags, auth, sizeof(auth));
    if (r->expires == 0) {
        str_copy(exp, sizeof(exp), "never");
    } else {
        time_t t = (time_t)r->expires;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    printf("%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r->name, from, to, r->priority, allow,
           deliver, auth, cli_yesno(r->flags & DIR_IPR_ANTISPAM),
           cli_yesno(r->flags & DIR_IPR_TLS_FOR_AUTH), exp);
}

static int iprange_list(const char *config_path, int argc, char **argv)
{
    static const char *const pos[] = {NULL};
    struct cli_args a;
    int rc = cli_args_begin(&a, "gannet iprange list", iprange_usage, no_opts, pos, 0, argc, argv);
    if (rc >= 0)
        goto out;
    struct cli_db c;
    if ((rc = cli_db_open(config_path, &c)) != 0)
        goto out;
    const char *err = NULL;
    printf("name\tfrom\tto\tpriority\tallow\tdeliver\trequire_auth\tantispam\ttls_auth\t"
           "expires\n");
    rc = dir_admin_iprange_list(c.db, print_iprange, NULL, &err) < 0 ? cli_fail(err) : 0;
    cli_db_close(&c);
out:
    cli_args_free(&a);
    return rc;
}

int cli_iprange(const char *config_path, int argc, char **argv)
{
    static const struct cli_sub subs[] = {
        {"add", iprange_add},   {"set", iprange_set}, {"del", iprange_del},
        {"list", iprange_list}, {NULL, NULL},
    };
    return cli_dispatch("gannet iprange", iprange_usage, subs, config_path, argc, argv);
}
