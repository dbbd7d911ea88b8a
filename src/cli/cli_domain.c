/* cli_domain: `gannet domain add|set|del|list` and `gannet domain-alias add|del|list`
 * (design.md §5). Validation and storage are dir_admin's; this file maps options to its structs
 * and prints listings (tab-separated, header line first, ordered by name). Exit status per
 * cli.h: 0, 1 runtime error, 64 usage, 78 configuration. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "dir/dir_admin.h"

static const char domain_usage[] =
    "usage: gannet domain add DOMAIN [OPTIONS]\n"
    "       gannet domain set DOMAIN OPTIONS\n"
    "       gannet domain del DOMAIN\n"
    "       gannet domain list\n"
    "\n"
    "Local domains: Gannet accepts and stores mail for their accounts, aliases and lists.\n"
    "`del` also deletes the domain's aliases, accounts (with their mailboxes), aliases and lists.\n"
    "\n"
    "  --enabled | --disabled       accept mail for the domain (the default) or refuse it\n"
    "  --max-message-size KB        size limit for messages to the domain, 0 = none (default)\n"
    "  --catch-all ADDR|none        address that receives mail for unknown local parts\n"
    "  --plus CHAR|none             plus addressing: the local part is cut at CHAR, one of\n"
    "                               + - _ . = (john+news@d -> john@d); default none\n"
    "\n"
    "list prints: name, enabled, max_message_kb, catch_all, plus (\"-\" = none)\n";

static const char domain_alias_usage[] =
    "usage: gannet domain-alias add ALIAS DOMAIN\n"
    "       gannet domain-alias del ALIAS [DOMAIN]\n"
    "       gannet domain-alias list\n"
    "\n"
    "A domain alias is another name of a local domain: mail to user@ALIAS is handled as\n"
    "mail to user@DOMAIN.\n"
    "\n"
    "list prints: alias, domain\n";

static const struct cli_opt domain_opts[] = {
    {"--enabled", 0, false},   {"--disabled", 0, false}, {"--max-message-size", 1, false},
    {"--catch-all", 1, false}, {"--plus", 1, false},     {NULL, 0, false},
};
static const struct cli_opt no_opts[] = {{NULL, 0, false}};

static int domain_addset(const char *config_path, int argc, char **argv, bool add)
{
    static const char *const pos[] = {"DOMAIN", NULL};
    const char *cmd = add ? "gannet domain add" : "gannet domain set";
    struct cli_args a;
    int rc = cli_args_begin(&a, cmd, domain_usage, domain_opts, pos, 1, argc, argv);
    if (rc >= 0)
        goto out;
    struct dir_admin_domain o = {.enabled = DIR_ADMIN_KEEP, .max_message_kb = DIR_ADMIN_KEEP};
    if ((rc = cli_args_flag(&a, "--enabled", "--disabled", &o.enabled)) != 0 ||
        (rc = cli_args_int(&a, "--max-message-size", 0, 4194304, &o.max_message_kb)) != 0)
        goto out;
    o.catch_all = cli_args_none(&a, "--catch-all");
    o.plus = cli_args_none(&a, "--plus");
    if (!add && o.enabled < 0 && o.max_message_kb < 0 && !o.catch_all && !o.plus) {
        rc = cli_usage_error(cmd, "nothing to change (try --help)");
        goto out;
    }
    struct cli_db c;
    if ((rc = cli_db_open(config_path, &c)) != 0)
        goto out;
    const char *err = NULL;
    int r = add ? dir_admin_domain_add(c.db, a.pos[0], &o, &err)
                : dir_admin_domain_set(c.db, a.pos[0], &o, &err);
    rc = r < 0 ? cli_fail(err) : 0;
    cli_db_close(&c);
out:
    cli_args_free(&a);
    return rc;
}

static int domain_add(const char *config_path, int argc, char **argv)
{
    return domain_addset(config_path, argc, argv, true);
}

static int domain_set(const char *config_path, int argc, char **argv)
{
    return domain_addset(config_path, argc, argv, false);
}

static int domain_del(const char *config_path, int argc, char **argv)
{
    return cli_del_one(config_path, argc, argv, "gannet domain del", domain_usage, "DOMAIN",
                       dir_admin_domain_del);
}

static void print_domain(void *ctx, const struct dir_domain *d)
{
    (void)ctx;
    char plus[2] = {d->plus_char, '\0'};
    printf("%s\t%s\t%u\t%s\t%s\n", d->name, cli_yesno(d->enabled), d->max_message_kb,
           cli_str(d->catch_all), cli_str(plus));
}

static int domain_list(const char *config_path, int argc, char **argv)
{
    static const char *const pos[] = {NULL};
    struct cli_args a;
    int rc = cli_args_begin(&a, "gannet domain list", domain_usage, no_opts, pos, 0, argc, argv);
    if (rc >= 0)
        goto out;
    struct cli_db c;
    if ((rc = cli_db_open(config_path, &c)) != 0)
        goto out;
    const char *err = NULL;
    printf("name\tenabled\tmax_message_kb\tcatch_all\tplus\n");
    rc = dir_admin_domain_list(c.db, print_domain, NULL, &err) < 0 ? cli_fail(err) : 0;
    cli_db_close(&c);
out:
    cli_args_free(&a);
    return rc;
}

int cli_domain(const char *config_path, int argc, char **argv)
{
    static const struct cli_sub subs[] = {
        {"add", domain_add},   {"set", domain_set}, {"del", domain_del},
        {"list", domain_list}, {NULL, NULL},
    };
    return cli_dispatch("gannet domain", domain_usage, subs, config_path, argc, argv);
}

/* ---- domain-alias ---- */

static int domain_alias_add(const char *config_path, int argc, char **argv)
{
    static const char *const pos[] = {"ALIAS", "DOMAIN", NULL};
    struct cli_args a;
    int rc = cli_args_begin(&a, "gannet domain-alias add", domain_alias_usage, no_opts, pos, 2,
                            argc, argv);
    if (rc >= 0)
        goto out;
    struct cli_db c;
    if ((rc = cli_db_open(config_path, &c)) != 0)
        goto out;
    const char *err = NULL;
    rc = dir_admin_domain_alias_add(c.db, a.pos[0], a.pos[1], &err) < 0 ? cli_fail(err) : 0;
    cli_db_close(&c);
out:
    cli_args_free(&a);
    return rc;
}

static int domain_alias_del(const char *config_path, int argc, char **argv)
{
    static const char *const pos[] = {"ALIAS", "DOMAIN", NULL};
    struct cli_args a;
    int rc = cli_args_begin(&a, "gannet domain-alias del", domain_alias_usage, no_opts, pos, 1,
                            argc, argv);
    if (rc >= 0)
        goto out;
    struct cli_db c;
    if ((rc = cli_db_open(config_path, &c)) != 0)
        goto out;
    const char *err = NULL;
    rc = dir_admin_domain_alias_del(c.db, a.pos[0], a.npos > 1 ? a.pos[1] : NULL, &err) < 0
             ? cli_fail(err)
             : 0;
    cli_db_close(&c);
out:
    cli_args_free(&a);
    return rc;
}

static void print_domain_alias(void *ctx, const char *alias, const char *domain)
{
    (void)ctx;
    printf("%s\t%s\n", alias, domain);
}

static int domain_alias_list(const char *config_path, int argc, char **argv)
{
    static const char *const pos[] = {NULL};
    struct cli_args a;
    int rc = cli_args_begin(&a, "gannet domain-alias list", domain_alias_usage, no_opts, pos, 0,
                            argc, argv);
    if (rc >= 0)
        goto out;
    struct cli_db c;
    if ((rc = cli_db_open(config_path, &c)) != 0)
        goto out;
    const char *err = NULL;
    printf("alias\tdomain\n");
    rc = dir_admin_domain_alias_list(c.db, print_domain_alias, NULL, &err) < 0 ? cli_fail(err) : 0;
    cli_db_close(&c);
out:
    cli_args_free(&a);
    return rc;
}

int cli_domain_alias(const char *config_path, int argc, char **argv)
{
    static const struct cli_sub subs[] = {
        {"add", domain_alias_add},
        {"del", domain_alias_del},
        {"list", domain_alias_list},
        {NULL, NULL},
    };
    return cli_dispatch("gannet domain-alias", domain_alias_usage, subs, config_path, argc, argv);
}
