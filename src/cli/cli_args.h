/* cli_args: argument parsing and plumbing shared by the directory subcommands (cli_init.c,
 * cli_domain.c, cli_account.c, cli_list.c, cli_route.c, cli_iprange.c).
 *
 * A subcommand declares its options (name, number of values, repeatable) and its positional
 * names; cli_args_parse() fills a struct cli_args or prints one usage line to stderr
 * ("gannet domain add: missing DOMAIN") and returns CLI_EX_USAGE. "--name=value" works for
 * one-value options, "--" ends the options, and a value is taken as given even when it starts
 * with '-' (so `--plus -` works). */
#ifndef GANNET_CLI_CLI_ARGS_H
#define GANNET_CLI_CLI_ARGS_H
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf/conf.h"

#define CLI_ARGS_POS_MAX 4
#define CLI_ARGS_OPTS_MAX 24

struct cli_opt {
    const char *name; /* "--quota" */
    int nargs;        /* 0 (a flag), 1 or 2 values */
    bool repeat;      /* may be given more than once; otherwise the last one counts */
};

struct cli_args {
    const char *cmd; /* "gannet domain add", for messages */
    const struct cli_opt *opts;
    size_t nopts;
    const char *pos[CLI_ARGS_POS_MAX];
    int npos;
    bool help;                            /* --help or -h was given */
    int count[CLI_ARGS_OPTS_MAX];         /* occurrences per option */
    const char **vals[CLI_ARGS_OPTS_MAX]; /* nargs values per occurrence, in order */
};

/* Parse argv[1..argc) (argv[0] is the subcommand word). opts ends with {NULL}. pos_names names
 * the positionals (NULL-terminated, at most CLI_ARGS_POS_MAX); the first min_pos are required.
 * Returns 0 (check a->help), or CLI_EX_USAGE after printing the problem. */
int cli_args_parse(struct cli_args *a, const char *cmd, const struct cli_opt *opts,
                   const char *const *pos_names, int min_pos, int argc, char **argv);
void cli_args_free(struct cli_args *a);
/* cli_args_parse, then --help: prints usage on stdout. Returns -1 when the command should go
 * on, else its exit status (0 after --help, CLI_EX_USAGE). Call cli_args_free() either way. */
int cli_args_begin(struct cli_args *a, const char *cmd, const char *usage,
                   const struct cli_opt *opts, const char *const *pos_names, int min_pos, int argc,
                   char **argv);

bool cli_args_has(const struct cli_args *a, const char *name);
/* The value (index 0 or 1 of a two-value option) of the last occurrence, or NULL. */
const char *cli_args_get(const struct cli_args *a, const char *name, int index);
/* Every value of a repeatable one-value option, in order; returns the count. */
size_t cli_args_all(const struct cli_args *a, const char *name, const char *const **vals_r);
/* An on/off pair (--enabled/--disabled, --keep-copy/--no-keep-copy): *v_r = 1, 0, or -1 when
 * neither was given. Both given: usage error (returns CLI_EX_USAGE), else 0. */
int cli_args_flag(const struct cli_args *a, const char *on, const char *off, int *v_r);
/* An integer option in [min, max]; *v_r untouched when absent. Returns 0 or CLI_EX_USAGE. */
int cli_args_int(const struct cli_args *a, const char *name, int64_t min, int64_t max,
                 int64_t *v_r);

/* Print "CMD: message" to stderr and return CLI_EX_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "gannet: err" to stderr and return 1. */
int cli_fail(const char *err);
/* True for "--help" / "-h". */
bool cli_is_help(const char *arg);

/* The configuration and the migrated database of an admin command. */
struct cli_db {
    struct conf *conf;
    sqlite3 *db;
};
/* Load the configuration and open the existing database (running pending migrations). Prints
 * the problem and returns the exit status (CLI_EX_CONFIG, 1) on failure, 0 on success. */
int cli_db_open(const char *config_path, struct cli_db *c);
void cli_db_close(struct cli_db *c);

/* A `del NAME` subcommand without options: parse, open the database, del_fn(db, NAME). */
int cli_del_one(const char *config_path, int argc, char **argv, const char *cmd, const char *usage,
                const char *pos_name,
                int (*del_fn)(sqlite3 *db, const char *name, const char **err_r));

/* An option value where "none" (any case) means "" (cleared); NULL when absent. */
const char *cli_args_none(const struct cli_args *a, const char *name);

/* A listing's header line, printed before the first row, or by cli_table_end() when there was
 * no row, so that a listing refused before its first row prints nothing on stdout. */
struct cli_table {
    const char *header; /* without the newline */
    bool started;
};
void cli_table_row(struct cli_table *t);
/* After a successful listing: the header if no row was printed. */
void cli_table_end(struct cli_table *t);

/* Table output: a string field ("-" for empty) and yes/no. */
const char *cli_str(const char *s);
const char *cli_yesno(bool b);

/* Dispatch "COMMAND SUB ..." to one of subs (NULL-terminated names/handlers); prints usage on
 * --help and a usage error on a missing or unknown subcommand. */
struct cli_sub {
    const char *name;
    int (*run)(const char *config_path, int argc, char **argv);
};
int cli_dispatch(const char *cmd, const char *usage, const struct cli_sub *subs,
                 const char *config_path, int argc, char **argv);

#endif
