/* cli_account: `gannet account add|set|del|list` and `gannet alias add|set|del|list`
 * (design.md §5). Passwords are hashed by dir_admin (yescrypt); `account add` without
 * --password reads one line from stdin when stdin is not a terminal, so scripts can keep the
 * password out of the process list. --password-hash stores an existing hash (yescrypt, $6$,
 * $2b$/$2y$, hMailServer's salted SHA-256) for accounts moved from another server. Listings:
 * tab-separated, header line, ordered by address. Exit status per cli.h: 0, 1 runtime error, 64
 * usage, 78 configuration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "dir/dir_admin.h"

static const char account_usage[] =
    "usage: gannet account add ADDR [--password PW | --password-hash HASH] [OPTIONS]\n"
    "       gannet account set ADDR OPTIONS\n"
    "       gannet account del ADDR\n"
    "       gannet account list [DOMAIN]\n"
    "\n"
    "Accounts receive mail and log in (SMTP AUTH, POP3, IMAP) with their address as user name.\n"
    "The address's domain must exist (`gannet domain add`). `del` also deletes the mailbox.\n"
    "\n"
    "  --password PW                  the password (stored as a yescrypt hash); on `add`\n"
    "                                 without it, one line is read from stdin if it is not a\n"
    "                                 terminal\n"
    "  --password-hash HASH           store an existing hash instead (moving from another\n"
    "                                 server): yescrypt $y$, SHA-512 $6$, bcrypt $2b$/$2y$,\n"
    "                                 or hMailServer's 70-character salted SHA-256; replaced\n"
    "                                 by yescrypt at the next login\n"
    "  --enabled | --disabled         the account may receive mail and log in (default) or not\n"
    "  --quota MB                     mailbox size limit, 0 = unlimited (default)\n"
    "  --forward ADDR|none            forward every message to ADDR\n"
    "  --keep-copy | --no-keep-copy   when forwarding, also keep the message (default: no)\n"
    "\n"
    "list prints: address, enabled, quota_mb, forward, keep_copy, password (set or not)\n";

static const char alias_usage[] =
    "usage: gannet alias add ADDR TARGET [--enabled|--disabled]\n"
    "       gannet alias set ADDR [TARGET] [--enabled|--disabled]\n"
    "       gannet alias del ADDR\n"
    "       gannet alias list [DOMAIN]\n"
    "\n"
    "An alias is a local address whose mail goes to TARGET (local or external). The alias's\n"
    "domain must exist (`gannet domain add`).\n"
    "\n"
    "list prints: address, target, enabled\n";

static const struct cli_opt account_opts[] = {
    {"--password", 1, false},  {"--password-hash", 1, false}, {"--enabled", 0, false},
    {"--disabled", 0, false},  {"--quota", 1, false},         {"--forward", 1, false},
    {"--keep-copy", 0, false}, {"--no-keep-copy", 0, false},  {NULL, 0, false},
};
static const struct cli_opt enabled_opts[] = {
    {"--enabled", 0, false}, {"--disabled", 0, false}, {NULL, 0, false}};
static const struct cli_opt no_opts[] = {{NULL, 0, false}};

/* One line from stdin without its line ending, or NULL at end of input. Caller frees. */
static char *read_password_line(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n <= 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

static int account_addset(const char *config_path, int argc, char **argv, bool add)
{
    static const char *const pos[] = {"ADDR", NULL};
    const char *cmd = add ? "gannet account add" : "gannet account set";
    char *stdin_pw = NULL;
    struct cli_args a;
    int rc = cli_args_begin(&a, cmd, account_usage, account_opts, pos, 1, argc, argv);
    if (rc >= 0)
        goto out;
    struct dir_admin_account o = {
        .enabled = DIR_ADMIN_KEEP, .quota_mb = DIR_ADMIN_KEEP, .keep_copy = DIR_ADMIN_KEEP};
    if ((rc = cli_args_flag(&a, "--enabled", "--disabled", &o.enabled)) != 0 ||
        (rc = cli_args_flag(&a, "--keep-copy", "--no-keep-copy", &o.keep_copy)) != 0 ||
        (rc = cli_args_int(&a, "--quota", 0, (int64_t)1 << 40, &o.quota_mb)) != 0)
        goto out;
    o.forward = cli_args_none(&a, "--forward");
    o.password = cli_args_get(&a, "--password", 0);
    const char *hash = cli_args_get(&a, "--password-hash", 0);
    if (o.password && hash) {
        rc = cli_usage_error(cmd, "--password and --password-hash exclude each other");
        goto out;
    }
    if (!add && !o.password && !hash && o.enabled < 0 && o.keep_copy < 0 && o.quota_mb < 0 &&
        !o.forward) {
        rc = cli_usage_error(cmd, "nothing to change (try --help)");
        goto out;
    }
    if (add && !o.password && !hash) {
        if (isatty(STDIN_FILENO) || !(stdin_pw = read_password_line())) {
            rc = cli_usage_error(cmd, "missing --password");
            goto out;
        }
        o.password = stdin_pw;
    }
    struct cli_db c;
    if ((rc = cli_db_open(config_path, &c)) != 0)
        goto out;
    const char *err = NULL;
    int r;
    if (hash)
        r = add ? dir_admin_account_add_hashed(c.db, a.pos[0], &o, hash, &err)
                : dir_admin_account_set_hashed(c.db, a.pos[0], &o, hash, &err);
    else
        r = add ? dir_admin_account_add(c.db, a.pos[0], &o, &err)
                : dir_admin_account_set(c.db, a.pos[0], &o, &err);
    rc = r < 0 ? cli_fail(err) : 0;
    cli_db_close(&c);
out:
    if (stdin_pw) {
        explicit_bzero(stdin_pw, strlen(stdin_pw));
        free(stdin_pw);
    }
    cli_args_free(&a);
    return rc;
}

static int account_add(const char *config_path, int argc, char **argv)
{
    return account_addset(config_path, argc, argv, true);
}

static int account_set(const char *config_path, int argc, char **argv)
{
    return account_addset(config_path, argc, argv, false);
}

static int account_del(const char *config_path, int argc, char **argv)
{
    return cli_del_one(config_path, argc, argv, "gannet account del", account_usage, "ADDR",
                       dir_admin_account_del);
}

static void print_account(void *ctx, const struct dir_account *ac)
{
    cli_table_row(ctx);
    printf("%s\t%s\t%llu\t%s\t%s\t%s\n", ac->address, cli_yesno(ac->enabled),
           (unsigned long long)ac->quota_mb, cli_str(ac->forward), cli_yesno(ac->keep_copy),
           ac->password_hash[0] ? "set" : "-");
}

static int account_list(const char *config_path, int argc, char **argv)
{
    static const char *const pos[] = {"DOMAIN", NULL};
    struct cli_args a;
    int rc = cli_args_begin(&a, "gannet account list", account_usage, no_opts, pos, 0, argc, argv);
    if (rc >= 0)
        goto out;
    struct cli_db c;
    if ((rc = cli_db_open(config_path, &c)) != 0)
        goto out;
    const char *err = NULL;
    struct cli_table t = {"address\tenabled\tquota_mb\tforward\tkeep_copy\tpassword", false};
    if (dir_admin_account_list(c.db, a.npos ? a.pos[0] : NULL, print_account, &t, &err) < 0)
        rc = cli_fail(err);
    else
        cli_table_end(&t);
    cli_db_close(&c);
out:
    cli_args_free(&a);
    return rc;
}

int cli_account(const char *config_path, int argc, char **argv)
{
    static const struct cli_sub subs[] = {
        {"add", account_add},   {"set", account_set}, {"del", account_del},
        {"list", account_list}, {NULL, NULL},
    };
    return cli_dispatch("gannet account", account_usage, subs, config_path, argc, argv);
}

/* ---- aliases ---- */

static int alias_addset(const char *config_path, int argc, char **argv, bool add)
{
    static const char *const pos[] = {"ADDR", "TARGET", NULL};
    const char *cmd = add ? "gannet alias add" : "gannet alias set";
    struct cli_args a;
    int rc = cli_args_begin(&a, cmd, alias_usage, enabled_opts, pos, add ? 2 : 1, argc, argv);
    if (rc >= 0)
        goto out;
    struct dir_admin_alias o = {.enabled = DIR_ADMIN_KEEP};
    if ((rc = cli_args_flag(&a, "--enabled", "--disabled", &o.enabled)) != 0)
        goto out;
    o.target = a.npos > 1 ? a.pos[1] : NULL;
    if (!add && !o.target && o.enabled < 0) {
        rc = cli_usage_error(cmd, "nothing to change (try --help)");
        goto out;
    }
    struct cli_db c;
    if ((rc = cli_db_open(config_path, &c)) != 0)
        goto out;
    const char *err = NULL;
    int r = add ? dir_admin_alias_add(c.db, a.pos[0], &o, &err)
                : dir_admin_alias_set(c.db, a.pos[0], &o, &err);
    rc = r < 0 ? cli_fail(err) : 0;
    cli_db_close(&c);
out:
    cli_args_free(&a);
    return rc;
}

static int alias_add(const char *config_path, int argc, char **argv)
{
    return alias_addset(config_path, argc, argv, true);
}

static int alias_set(const char *config_path, int argc, char **argv)
{
    return alias_addset(config_path, argc, argv, false);
}

static int alias_del(const char *config_path, int argc, char **argv)
{
    return cli_del_one(config_path, argc, argv, "gannet alias del", alias_usage, "ADDR",
                       dir_admin_alias_del);
}

static void print_alias(void *ctx, const struct dir_alias *al)
{
    cli_table_row(ctx);
    printf("%s\t%s\t%s\n", al->address, al->target, cli_yesno(al->enabled));
}

static int alias_list(const char *config_path, int argc, char **argv)
{
    static const char *const pos[] = {"DOMAIN", NULL};
    struct cli_args a;
    int rc = cli_args_begin(&a, "gannet alias list", alias_usage, no_opts, pos, 0, argc, argv);
    if (rc >= 0)
        goto out;
    struct cli_db c;
    if ((rc = cli_db_open(config_path, &c)) != 0)
        goto out;
    const char *err = NULL;
    struct cli_table t = {"address\ttarget\tenabled", false};
    if (dir_admin_alias_list(c.db, a.npos ? a.pos[0] : NULL, print_alias, &t, &err) < 0)
        rc = cli_fail(err);
    else
        cli_table_end(&t);
    cli_db_close(&c);
out:
    cli_args_free(&a);
    return rc;
}

int cli_alias(const char *config_path, int argc, char **argv)
{
    static const struct cli_sub subs[] = {
        {"add", alias_add},   {"set", alias_set}, {"del", alias_del},
        {"list", alias_list}, {NULL, NULL},
    };
    return cli_dispatch("gannet alias", alias_usage, subs, config_path, argc, argv);
}
