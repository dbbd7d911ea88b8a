/* main: the `gannet` program — parses the global -c option and dispatches to the subcommand
 * table below (design.md §5). Every subcommand owns its own arguments and --help. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/log.h"

struct command {
    const char *name;
    int (*run)(const char *config_path, int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"init", cli_init, "create the data dir, database and default IP ranges (idempotent)"},
    {"serve", server_main, "run the server in the foreground, logging to stderr"},
    {"check-config", cli_check_config, "validate the configuration file"},
    {"domain", cli_domain, "add, change, delete and list domains"},
    {"domain-alias", cli_domain_alias, "add and delete domain aliases"},
    {"account", cli_account, "add, change, delete and list accounts"},
    {"alias", cli_alias, "add, change, delete and list aliases"},
    {"list", cli_list, "distribution lists and their members"},
    {"route", cli_route, "routes for domains delivered to a fixed host"},
    {"iprange", cli_iprange, "IP ranges: who may connect, relay, and must authenticate"},
    {"mailbox", cli_mailbox, "list and read stored messages"},
    {"queue", cli_queue, "inspect and manage the mail queue"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: gannet [-c CONFIG] COMMAND [ARGS...]\n\n"
               "CONFIG defaults to $GANNET_CONFIG or /etc/gannet/gannet.conf.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun `gannet COMMAND --help` for a command's options.\n");
}

int main(int argc, char **argv)
{
    const char *config_path = getenv("GANNET_CONFIG");
    if (!config_path || !*config_path)
        config_path = "/etc/gannet/gannet.conf";
    log_init("gannet", LOG_LEVEL_INFO);
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            config_path = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "gannet: unknown option %s\n", argv[i]);
            return CLI_EX_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return CLI_EX_USAGE;
    }
    for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++)
        if (strcmp(argv[i], commands[c].name) == 0)
            return commands[c].run(config_path, argc - i, argv + i);
    fprintf(stderr, "gannet: unknown command '%s' (try gannet --help)\n", argv[i]);
    return CLI_EX_USAGE;
}
