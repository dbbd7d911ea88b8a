/* cli_route: `gannet route add|set|del|list` (design.md §5, hmailserver-behaviour.md §4.6).
 * A route sends mail for the domains matching its pattern ('*', '?' wildcards) to a fixed host
 * instead of the domain's MX. Listing in creation order (the order routes are tried),
 * tab-separated with a header line. Exit status per cli.h: 0, 1 runtime error, 64 usage,
 * 78 configuration. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "dir/dir_admin.h"

static const char route_usage[] =
    "usage: gannet route add DOMAIN --host HOST [OPTIONS]\n"
    "       gannet route set DOMAIN OPTIONS\n"
    "       gannet route del DOMAIN\n"
    "       gannet route list\n"
    "\n"
    "DOMAIN may contain the wildcards '*' and '?'; the first route (in creation order) whose\n"
    "pattern matches a recipient's domain delivers it.\n"
    "\n"
    "  --host HOST                      where to deliver: a host name or IP address (several\n"
    "                                   separated by '|'); looked up as A/AAAA, not MX\n"
    "  --port N                         TCP port (default 25)\n"
    "  --address ADDR                   deliver only ADDR through this route (repeatable; the\n"
    "                                   list replaces the previous one); without it, all\n"
    "                                   addresses of the domain\n"
    "  --all-addresses                  (set) go back to all addresses\n"
    "  --local-recipient | --no-local-recipient\n"
    "                                   treat recipients of the domain as local (default: no)\n"
    "  --local-sender | --no-local-sender\n"
    "                                   treat senders of the domain as local (default: no)\n"
    "  --auth USER PASSWORD | --no-auth log in to the host with SMTP AUTH\n"
    "  --security none|starttls|tls     connection security to the host (default none)\n"
    "\n"
    "list prints: domain, host, port, security, addresses (\"all\" or a comma list),\n"
    "local_recipient, local_sender, auth_user\n";

static const struct cli_opt route_opts[] = {
    {"--host", 1, false},
    {"--port", 1, false},
    {"--address", 1, true},
    {"--all-addresses", 0, false},
    {"--local-recipient", 0, false},
    {"--no-local-recipient", 0, false},
    {"--local-sender", 0, false},
    {"--no-local-sender", 0, false},
    {"--auth", 2, false},
    {"--no-auth", 0, false},
    {"--security", 1, false},
    {NULL, 0, false},
};
static const struct cli_opt no_opts[] = {{NULL, 0, false}};

static const char *const security_names[] = {"none", "starttls", "tls"};

static int route_addset(const char *config_path, int argc, char **argv, bool add)
{
    static const char *const pos[] = {"DOMAIN", NULL};
    const char *cmd = add ? "gannet route add" : "gannet route set";
    struct cli_args a;
    int rc = cli_args_begin(&a, cmd, route_usage, route_opts, pos, 1, argc, argv);
    if (rc >= 0)
        goto out;
    struct dir_admin_route o = {
        .port = DIR_ADMIN_KEEP, .local_recipient = DIR_ADMIN_KEEP, .local_sender = DIR_ADMIN_KEEP};
    if ((rc = cli_args_flag(&a, "--local-recipient", "--no-local-recipient", &o.local_recipient)) !=
            0 ||
        (rc = cli_args_flag(&a, "--local-sender", "--no-local-sender", &o.local_sender)) != 0 ||
        (rc = cli_args_int(&a, "--port", 1, 65535, &o.port)) != 0)
        goto out;
    o.host = cli_args_get(&a, "--host", 0);
    o.security = cli_args_get(&a, "--security", 0);
    o.addresses_count = cli_args_all(&a, "--address", &o.addresses);
    o.all_addresses = cli_args_has(&a, "--all-addresses");
    if (o.all_addresses && o.addresses_count > 0) {
        rc = cli_usage_error(cmd, "--address and --all-addresses conflict");
        goto out;
    }
    if (cli_args_has(&a, "--auth") && cli_args_has(&a, "--no-auth")) {
        rc = cli_usage_error(cmd, "--auth and --no-auth conflict");
        goto out;
    }
    if (cli_args_has(&a, "--auth")) {
        o.auth_user = cli_args_get(&a, "--auth", 0);
        o.auth_password = cli_args_get(&a, "--auth", 1);
        if (!*o.auth_user || !*o.auth_password) {
            rc = cli_usage_error(cmd, "--auth needs a non-empty USER and PASSWORD");
            goto out;
        }
    } else if (cli_args_has(&a, "--no-auth")) {
        o.auth_user = o.auth_password = "";
    }
    if (add && !o.host) {
        rc = cli_usage_error(cmd, "missing --host");
        goto out;
    }
    if (!add && !o.host && o.port < 0 && o.local_recipient < 0 && o.local_sender < 0 &&
        !o.security && !o.addresses_count && !o.all_addresses && !o.auth_user) {
        rc = cli_usage_error(cmd, "nothing to change (try --help)");
        goto out;
    }
    struct cli_db c;
    if ((rc = cli_db_open(config_path, &c)) != 0)
        goto out;
    const char *err = NULL;
    int r = add ? dir_admin_route_add(c.db, a.pos[0], &o, &err)
                : dir_admin_route_set(c.db, a.pos[0], &o, &err);
    rc = r < 0 ? cli_fail(err) : 0;
    cli_db_close(&c);
out:
    cli_args_free(&a);
    return rc;
}

static int route_add(const char *config_path, int argc, char **argv)
{
    return route_addset(config_path, argc, argv, true);
}

static int route_set(const char *config_path, int argc, char **argv)
{
    return route_addset(config_path, argc, argv, false);
}

static int route_del(const char *config_path, int argc, char **argv)
{
    return cli_del_one(config_path, argc, argv, "gannet route del", route_usage, "DOMAIN",
                       dir_admin_route_del);
}

struct list_ctx {
    sqlite3 *db;
    int failed;
    const char *err;
    size_t count; /* addresses printed for the current route */
};

static void print_address(void *ctx, const char *address)
{
    struct list_ctx *lc = ctx;
    printf("%s%s", lc->count++ ? "," : "", address);
}

static void print_route(void *ctx, const struct dir_route *r)
{
    struct list_ctx *lc = ctx;
    printf("%s\t%s\t%u\t%s\t", r->pattern, r->host, r->port, security_names[r->security]);
    if (r->all_addresses) {
        fputs("all", stdout);
    } else {
        lc->count = 0;
        if (dir_admin_route_addresses(lc->db, r->id, print_address, lc, &lc->err) < 0)
            lc->failed = 1;
        if (lc->count == 0)
            fputs("-", stdout);
    }
    printf("\t%s\t%s\t%s\n", cli_yesno(r->local_recipient), cli_yesno(r->local_sender),
           cli_str(r->auth_user));
}

static int route_list(const char *config_path, int argc, char **argv)
{
    static const char *const pos[] = {NULL};
    struct cli_args a;
    int rc = cli_args_begin(&a, "gannet route list", route_usage, no_opts, pos, 0, argc, argv);
    if (rc >= 0)
        goto out;
    struct cli_db c;
    if ((rc = cli_db_open(config_path, &c)) != 0)
        goto out;
    struct list_ctx lc = {.db = c.db};
    const char *err = NULL;
    printf("domain\thost\tport\tsecurity\taddresses\tlocal_recipient\tlocal_sender\tauth_user\n");
    if (dir_admin_route_list(c.db, print_route, &lc, &err) < 0)
        rc = cli_fail(err);
    else
        rc = lc.failed ? cli_fail(lc.err) : 0;
    cli_db_close(&c);
out:
    cli_args_free(&a);
    return rc;
}

int cli_route(const char *config_path, int argc, char **argv)
{
    static const struct cli_sub subs[] = {
        {"add", route_add},   {"set", route_set}, {"del", route_del},
        {"list", route_list}, {NULL, NULL},
    };
    return cli_dispatch("gannet route", route_usage, subs, config_path, argc, argv);
}
