/* cli: the admin subcommands of design.md §5 (`gannet [-c CONFIG] COMMAND ...`).
 *
 * Each command is `int cli_<name>(const char *config_path, int argc, char **argv)` where argv[0] is
 * the command word. Contract: exit status 0 on success; EX_USAGE (64) for bad usage with a one-line
 * message on stderr ("gannet domain add: missing DOMAIN"); 1 for runtime errors ("gannet: domain
 * example.test already exists"); EX_CONFIG (78) when the configuration cannot be loaded. Every
 * command and subcommand prints its usage on --help (exit 0). */
#ifndef GANNET_CLI_CLI_H
#define GANNET_CLI_CLI_H

#define CLI_EX_USAGE 64
#define CLI_EX_CONFIG 78

int cli_init(const char *config_path, int argc, char **argv);
int cli_check_config(const char *config_path, int argc, char **argv);
int cli_domain(const char *config_path, int argc, char **argv);
int cli_domain_alias(const char *config_path, int argc, char **argv);
int cli_account(const char *config_path, int argc, char **argv);
int cli_alias(const char *config_path, int argc, char **argv);
int cli_list(const char *config_path, int argc, char **argv);
int cli_route(const char *config_path, int argc, char **argv);
int cli_iprange(const char *config_path, int argc, char **argv);
int cli_mailbox(const char *config_path, int argc, char **argv);
int cli_queue(const char *config_path, int argc, char **argv);
/* `gannet serve` lives with the server (src/server/server.c). */
int server_main(const char *config_path, int argc, char **argv);

#endif
