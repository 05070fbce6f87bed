/* cli/ctl.h - the `ember` control subcommands (cli/ctl.c) as main.c calls them. */
#ifndef EMBER_CLI_CTL_H
#define EMBER_CLI_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Exit statuses of the control subcommands (ember(1)). */
#define CLI_EXIT_REFUSED 1 /* the VM answered an error (code and message on stderr) */
#define CLI_EXIT_USAGE	 2 /* bad arguments */
#define CLI_EXIT_NOVM	 3 /* nobody serves at SOCKET (or it went away) */

/* Is word the first word of a control subcommand (or "list")? */
bool cli_ctl_is_command(const char *word);
/* Runs one: argv[0] is its first word. Returns the exit status. */
int cli_ctl_main(int argc, char **argv);
/* The subcommands' usage, from the command table. */
void cli_ctl_usage(FILE *f);
/* The socket path of `--socket ARG`: ARG itself when it has a '/', else
 * the per-user directory's ARG.sock (created when create). 0 or -errno. */
int cli_socket_path(const char *arg, bool create, char *buf, size_t len);

#endif /* EMBER_CLI_CTL_H */
