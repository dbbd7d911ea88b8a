/* cli_args: option parsing, database opening and subcommand dispatch for the directory commands
 * (see cli_args.h). Usage problems print one line and return CLI_EX_USAGE (64); runtime
 * problems print "gannet: ..." and return 1; configuration problems return CLI_EX_CONFIG (78). */
#include "cli/cli_args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "dir/dir_cache.h"
#include "dir/dir_db.h"
#include "lib/str.h"
#include "lib/xalloc.h"

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_EX_USAGE;
}

int cli_fail(const char *err)
{
    fprintf(stderr, "gannet: %s\n", err);
    return 1;
}

bool cli_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

static int find_opt(const struct cli_args *a, const char *name, size_t len)
{
    for (size_t i = 0; i < a->nopts; i++)
        if (strlen(a->opts[i].name) == len && strncmp(a->opts[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

int cli_args_parse(struct cli_args *a, const char *cmd, const struct cli_opt *opts,
                   const char *const *pos_names, int min_pos, int argc, char **argv)
{
    memset(a, 0, sizeof(*a));
    a->cmd = cmd;
    a->opts = opts;
    while (opts[a->nopts].name)
        a->nopts++;
    if (a->nopts > CLI_ARGS_OPTS_MAX)
        abort(); /* a programming error in an option table */
    int max_pos = 0;
    while (pos_names[max_pos])
        max_pos++;
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (a->npos >= max_pos)
                return cli_usage_error(cmd, "unexpected argument \"%s\"", arg);
            a->pos[a->npos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (cli_is_help(arg)) {
            a->help = true;
            return 0;
        }
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        int o = find_opt(a, arg, len);
        if (o < 0)
            return cli_usage_error(cmd, "unknown option %.*s (try --help)", (int)len, arg);
        const struct cli_opt *opt = &opts[o];
        if (eq && opt->nargs != 1)
            return cli_usage_error(cmd, "option %s does not take \"=\"", opt->name);
        if (a->count[o] > 0 && !opt->repeat)
            a->count[o] = 0; /* the last occurrence counts */
        if (!a->vals[o] && opt->nargs > 0)
            a->vals[o] = xcalloc((size_t)argc * (size_t)opt->nargs, sizeof(char *));
        if (eq) {
            a->vals[o][a->count[o]] = eq + 1;
        } else {
            if (i + opt->nargs >= argc)
                return cli_usage_error(cmd, "option %s needs %s", opt->name,
                                       opt->nargs == 1 ? "a value" : "two values");
            for (int k = 0; k < opt->nargs; k++)
                a->vals[o][a->count[o] * opt->nargs + k] = argv[++i];
        }
        a->count[o]++;
    }
    if (a->npos < min_pos)
        return cli_usage_error(cmd, "missing %s", pos_names[a->npos]);
    return 0;
}

int cli_args_begin(struct cli_args *a, const char *cmd, const char *usage,
                   const struct cli_opt *opts, const char *const *pos_names, int min_pos, int argc,
                   char **argv)
{
    int rc = cli_args_parse(a, cmd, opts, pos_names, min_pos, argc, argv);
    if (rc != 0)
        return rc;
    if (a->help) {
        fputs(usage, stdout);
        return 0;
    }
    return -1;
}

void cli_args_free(struct cli_args *a)
{
    for (size_t i = 0; i < CLI_ARGS_OPTS_MAX; i++)
        XFREE(&a->vals[i]);
}

static int opt_index(const struct cli_args *a, const char *name)
{
    int o = find_opt(a, name, strlen(name));
    if (o < 0)
        abort(); /* asking for an option the table does not declare */
    return o;
}

bool cli_args_has(const struct cli_args *a, const char *name)
{
    return a->count[opt_index(a, name)] > 0;
}

const char *cli_args_get(const struct cli_args *a, const char *name, int index)
{
    int o = opt_index(a, name);
    if (a->count[o] == 0 || index >= a->opts[o].nargs)
        return NULL;
    return a->vals[o][(a->count[o] - 1) * a->opts[o].nargs + index];
}

size_t cli_args_all(const struct cli_args *a, const char *name, const char *const **vals_r)
{
    int o = opt_index(a, name);
    *vals_r = a->vals[o];
    return (size_t)a->count[o];
}

const char *cli_args_none(const struct cli_args *a, const char *name)
{
    const char *v = cli_args_get(a, name, 0);
    return v && str_ieq(v, "none") ? "" : v;
}

int cli_args_flag(const struct cli_args *a, const char *on, const char *off, int *v_r)
{
    bool y = cli_args_has(a, on), n = cli_args_has(a, off);
    if (y && n)
        return cli_usage_error(a->cmd, "%s and %s conflict", on, off);
    *v_r = y ? 1 : n ? 0 : -1;
    return 0;
}

int cli_args_int(const struct cli_args *a, const char *name, int64_t min, int64_t max, int64_t *v_r)
{
    const char *s = cli_args_get(a, name, 0);
    if (!s)
        return 0;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max)
        return cli_usage_error(a->cmd, "invalid %s value \"%s\" (%lld..%lld)", name, s,
                               (long long)min, (long long)max);
    *v_r = v;
    return 0;
}

int cli_db_open(const char *config_path, struct cli_db *c)
{
    memset(c, 0, sizeof(*c));
    char *errors = NULL;
    c->conf = conf_load(config_path, &errors);
    if (!c->conf) {
        fputs(errors ? errors : "gannet: cannot load the configuration\n", stderr);
        free(errors);
        return CLI_EX_CONFIG;
    }
    free(errors);
    const char *err = NULL;
    if (access(c->conf->database, F_OK) != 0) {
        fprintf(stderr, "gannet: database %s does not exist (run gannet init)\n",
                c->conf->database);
        cli_db_close(c);
        return 1;
    }
    c->db = dir_db_open(c->conf->database, false, &err);
    if (!c->db || dir_db_migrate(c->db, &err) < 0) {
        fprintf(stderr, "gannet: %s\n", err);
        cli_db_close(c);
        return 1;
    }
    return 0;
}

void cli_db_close(struct cli_db *c)
{
    /* A running server drops its directory cache on the next lookup (dir/dir_cache.h). */
    if (c->conf)
        dir_cache_bump_if_changed(c->db, c->conf->data_dir);
    dir_db_close(&c->db);
    conf_free(&c->conf);
}

int cli_del_one(const char *config_path, int argc, char **argv, const char *cmd, const char *usage,
                const char *pos_name,
                int (*del_fn)(sqlite3 *db, const char *name, const char **err_r))
{
    static const struct cli_opt no_opts[] = {{NULL, 0, false}};
    const char *const pos[] = {pos_name, NULL};
    struct cli_args a;
    int rc = cli_args_begin(&a, cmd, usage, no_opts, pos, 1, argc, argv);
    if (rc >= 0)
        goto out;
    struct cli_db c;
    if ((rc = cli_db_open(config_path, &c)) != 0)
        goto out;
    const char *err = NULL;
    rc = del_fn(c.db, a.pos[0], &err) < 0 ? cli_fail(err) : 0;
    cli_db_close(&c);
out:
    cli_args_free(&a);
    return rc;
}

void cli_table_row(struct cli_table *t)
{
    if (!t->started)
        printf("%s\n", t->header);
    t->started = true;
}

void cli_table_end(struct cli_table *t)
{
    cli_table_row(t);
}

const char *cli_str(const char *s)
{
    return s && *s ? s : "-";
}

const char *cli_yesno(bool b)
{
    return b ? "yes" : "no";
}

int cli_dispatch(const char *cmd, const char *usage, const struct cli_sub *subs,
                 const char *config_path, int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "%s: missing subcommand (", cmd);
        for (const struct cli_sub *s = subs; s->name; s++)
            fprintf(stderr, "%s%s", s->name, s[1].name ? ", " : "");
        fprintf(stderr, "; try --help)\n");
        return CLI_EX_USAGE;
    }
    if (cli_is_help(argv[1])) {
        fputs(usage, stdout);
        return 0;
    }
    for (const struct cli_sub *s = subs; s->name; s++)
        if (strcmp(argv[1], s->name) == 0)
            return s->run(config_path, argc - 1, argv + 1);
    return cli_usage_error(cmd, "unknown subcommand \"%s\" (try --help)", argv[1]);
}
