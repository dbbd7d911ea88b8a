/* cli_check_config: `gannet [-c CONFIG] check-config [--reference]` (design.md §5).
 *
 * Loads CONFIG with conf_load(). Every error goes to stderr as "file:line: message" and the exit
 * status is 78 (EX_CONFIG); otherwise "CONFIG: ok (N listeners)" on stdout and exit 0.
 * --reference writes the markdown table of every setting (the one docs/configuration.md embeds)
 * without reading any file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "conf/conf.h"

static void usage(FILE *f)
{
    fputs("usage: gannet [-c CONFIG] check-config [--reference]\n\n"
          "Read the configuration file and report every error as file:line: message\n"
          "(exit status 78), or print \"CONFIG: ok (N listeners)\" (exit status 0).\n\n"
          "  --reference   print the table of every setting (markdown) and exit\n"
          "  --help        show this help\n",
          f);
}

int cli_check_config(const char *config_path, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--reference") == 0) {
            conf_write_reference(stdout);
            return 0;
        }
        fprintf(stderr, "gannet check-config: unexpected argument '%s' (try --help)\n", argv[i]);
        return CLI_EX_USAGE;
    }
    char *errors = NULL;
    struct conf *conf = conf_load(config_path, &errors);
    if (!conf) {
        fputs(errors, stderr);
        free(errors);
        return CLI_EX_CONFIG;
    }
    printf("%s: ok (%zu listeners)\n", config_path, conf->listeners_count);
    conf_free(&conf);
    return 0;
}
