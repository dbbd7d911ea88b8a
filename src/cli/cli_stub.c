/* cli_stub: TEMPORARY placeholders for subcommands not written yet. When you implement a command
 * in its own file, delete its stub here. This file disappears when it is empty. */
#include <stdio.h>

#include "cli/cli.h"

#define STUB(fn)                                                                                   \
    int fn(const char *config_path, int argc, char **argv)                                         \
    {                                                                                              \
        (void)config_path;                                                                         \
        (void)argc;                                                                                \
        fprintf(stderr, "gannet %s: not implemented yet\n", argv[0]);                              \
        return 1;                                                                                  \
    }
