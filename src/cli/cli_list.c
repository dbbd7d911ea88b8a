/* cli_list: `gannet list add|set|del|list` (distribution lists) and
 * `gannet list member add|del|list` (design.md §5, hmailserver-behaviour.md §4.3). Listings:
 * tab-separated with a header line; lists by address, members in the order they were added
 * (the order they are expanded). Exit status per cli.h: 0, 1 runtime error, 64 usage,
 * 78 configuration. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "dir/dir_admin.h"

static const char list_usage[] =
    "usage: gannet list add ADDR [OPTIONS]\n"
    "       gannet list set ADDR OPTIONS\n"
    "       gannet list del ADDR\n"
    "       gannet list list [DOMAIN]\n"
    "       gannet list member add LIST ADDR\n"
    "       gannet list member del LIST ADDR\n"
    "       gannet list member list LIST\n"
    "\n"
    "A distribution list is a local address whose mail goes to every member. The list's\n"
    "domain must exist (`gannet domain add`); members may be any addresses, lists included.\n"
    "\n"
    "  --mode public|members|announce     who may send to the list: anyone (default), only\n"
    "                                     members, or only the announcer\n"
    "  --announcer ADDR|none              the one sender allowed in announce mode\n"
    "  --require-auth | --no-require-auth senders must use SMTP AUTH (default: no)\n"
    "  --enabled | --disabled             the list accepts mail (default) or not\n"
    "\n"
    "list prints: address, enabled, mode, announcer, require_auth, members (a count)\n"
    "member list prints: address\n";

static const struct cli_opt list_opts[] = {
    {"--mode", 1, false},
    {"--announcer", 1, false},
    {"--require-auth", 0, false},
    {"--no-require-auth", 0, false},
    {"--enabled", 0, false},
    {"--disabled", 0, false},
    {NULL, 0, false},
};
static const struct cli_opt no_opts[] = {{NULL, 0, false}};

static const char *const mode_names[] = {"public", "members", "announce"};

static int list_addset(const char *config_path, int argc, char **argv, bool add)
{
    static const char *const pos[] = {"ADDR", NULL};
    const char *cmd = add ? "gannet list add" : "gannet list set";
    struct cli_args a;
    int rc = cli_args_begin(&a, cmd, list_usage, list_opts, pos, 1, argc, argv);
    if (rc >= 0)
        goto out;
    struct dir_admin_list o = {.enabled = DIR_ADMIN_KEEP, .require_auth = DIR_ADMIN_KEEP};
    if ((rc = cli_args_flag(&a, "--enabled", "--disabled", &o.enabled)) != 0 ||
        (rc = cli_args_flag(&a, "--require-auth", "--no-require-auth", &o.require_auth)) != 0)
        goto out;
    o.mode = cli_args_get(&a, "--mode", 0);
    o.announcer = cli_args_none(&a, "--announcer");
    if (!add && o.enabled < 0 && o.require_auth < 0 && !o.mode && !o.announcer) {
        rc = cli_usage_error(cmd, "nothing to change (try --help)");
        goto out;
    }
    struct cli_db c;
    if ((rc = cli_db_open(config_path, &c)) != 0)
        goto out;
    const char *err = NULL;
    int r = add ? dir_admin_list_add(c.db, a.pos[0], &o, &err)
                : dir_admin_list_set(c.db, a.pos[0], &o, &err);
    rc = r < 0 ? cli_fail(err) : 0;
    cli_db_close(&c);
out:
    cli_args_free(&a);
    return rc;
}

static int list_add(const char *config_path, int argc, char **argv)
{
    return list_addset(config_path, argc, argv, true);
}

static int list_set(const char *config_path, int argc, char **argv)
{
    return list_addset(config_path, argc, argv, false);
}

static int list_del(const char *config_path, int argc, char **argv)
{
    return cli_del_one(config_path, argc, argv, "gannet list del", list_usage, "ADDR",
                       dir_admin_list_del);
}

static void print_list(void *ctx, const struct dir_list *l, unsigned members)
{
    cli_table_row(ctx);
    printf("%s\t%s\t%s\t%s\t%s\t%u\n", l->address, cli_yesno(l->enabled), mode_names[l->mode],
           cli_str(l->announcer), cli_yesno(l->require_auth), members);
}

static int list_list(const char *config_path, int argc, char **argv)
{
    static const char *const pos[] = {"DOMAIN", NULL};
    struct cli_args a;
    int rc = cli_args_begin(&a, "gannet list list", list_usage, no_opts, pos, 0, argc, argv);
    if (rc >= 0)
        goto out;
    struct cli_db c;
    if ((rc = cli_db_open(config_path, &c)) != 0)
        goto out;
    const char *err = NULL;
    struct cli_table t = {"address\tenabled\tmode\tannouncer\trequire_auth\tmembers", false};
    if (dir_admin_list_list(c.db, a.npos ? a.pos[0] : NULL, print_list, &t, &err) < 0)
        rc = cli_fail(err);
    else
        cli_table_end(&t);
    cli_db_close(&c);
out:
    cli_args_free(&a);
    return rc;
}

/* ---- members ---- */

static int member_change(const char *config_path, int argc, char **argv, bool add)
{
    static const char *const pos[] = {"LIST", "ADDR", NULL};
    struct cli_args a;
    int rc = cli_args_begin(&a, add ? "gannet list member add" : "gannet list member del",
                            list_usage, no_opts, pos, 2, argc, argv);
    if (rc >= 0)
        goto out;
    struct cli_db c;
    if ((rc = cli_db_open(config_path, &c)) != 0)
        goto out;
    const char *err = NULL;
    int r = add ? dir_admin_list_member_add(c.db, a.pos[0], a.pos[1], &err)
                : dir_admin_list_member_del(c.db, a.pos[0], a.pos[1], &err);
    rc = r < 0 ? cli_fail(err) : 0;
    cli_db_close(&c);
out:
    cli_args_free(&a);
    return rc;
}

static int member_add(const char *config_path, int argc, char **argv)
{
    return member_change(config_path, argc, argv, true);
}

static int member_del(const char *config_path, int argc, char **argv)
{
    return member_change(config_path, argc, argv, false);
}

static void print_member(void *ctx, const char *address)
{
    cli_table_row(ctx);
    printf("%s\n", address);
}

static int member_list(const char *config_path, int argc, char **argv)
{
    static const char *const pos[] = {"LIST", NULL};
    struct cli_args a;
    int rc = cli_args_begin(&a, "gannet list member list", list_usage, no_opts, pos, 1, argc, argv);
    if (rc >= 0)
        goto out;
    struct cli_db c;
    if ((rc = cli_db_open(config_path, &c)) != 0)
        goto out;
    const char *err = NULL;
    struct cli_table t = {"address", false};
    if (dir_admin_list_member_list(c.db, a.pos[0], print_member, &t, &err) < 0)
        rc = cli_fail(err);
    else
        cli_table_end(&t);
    cli_db_close(&c);
out:
    cli_args_free(&a);
    return rc;
}

static int list_member(const char *config_path, int argc, char **argv)
{
    static const struct cli_sub subs[] = {
        {"add", member_add},
        {"del", member_del},
        {"list", member_list},
        {NULL, NULL},
    };
    return cli_dispatch("gannet list member", list_usage, subs, config_path, argc, argv);
}

int cli_list(const char *config_path, int argc, char **argv)
{
    static const struct cli_sub subs[] = {
        {"add", list_add},   {"set", list_set},       {"del", list_del},
        {"list", list_list}, {"member", list_member}, {NULL, NULL},
    };
    return cli_dispatch("gannet list", list_usage, subs, config_path, argc, argv);
}
