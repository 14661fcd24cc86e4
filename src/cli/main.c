/* attnflow <command> [options]: a thin layer over libattnflow. */
#include <stdio.h>
#include <string.h>
#include "attnflow/version.h"
#include "cli.h"
#include "outputs.h"

/* Every command, in the order `attnflow --help` lists them. */
static const cli_command *const commands[] = {
    &cli_cmd_attention,
    &cli_cmd_flow,
    &cli_cmd_train,
    &cli_cmd_convex,
    &cli_cmd_heat,
    &cli_cmd_compare,
    &cli_cmd_gradflow,
    NULL,
};

const cli_command *cli_find_command(const char *name)
{
    for (size_t k = 0; commands[k]; k++)
        if (strcmp(commands[k]->name, name) == 0)
            return commands[k];
    return NULL;
}

static void usage(FILE *fp)
{
    fprintf(fp, "usage: attnflow <command> [options]   (attnflow <command> --help)\n\ncommands:\n");
    for (size_t k = 0; commands[k]; k++)
        fprintf(fp, "  %-10s %s\n", commands[k]->name, commands[k]->summary);
    fprintf(fp, "  %-10s %s\n", "run", "run every [command] section of an INI file (options override)");
    fprintf(fp, "  %-10s %s\n", "version", "print the version");
}

int main(int argc, char **argv)
{
    cli_signals_install(); /* a signal never leaves a temporary file (outputs.h) */
    if (argc < 2) {
        usage(stderr);
        return CLI_EUSAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("attnflow %s\n", af_version());
        return 0;
    }
    if (strcmp(name, "run") == 0) {
        if (argc < 3 || argv[2][0] == '-')
            return cli_fail(CLI_EUSAGE, "usage: attnflow run FILE.ini [--option value ...]");
        return cli_run_ini(argv[2], argc - 3, argv + 3);
    }
    const cli_command *cmd = cli_find_command(name);
    if (!cmd) {
        cli_fail(CLI_EUSAGE, "unknown command '%s'", name);
        usage(stderr);
        return CLI_EUSAGE;
    }
    return cli_dispatch(cmd, argc - 1, argv + 1);
}
