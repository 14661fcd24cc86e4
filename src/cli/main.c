/* attnflow <command> [options]: a thin layer over libattnflow. */
#include <stdio.h>
#include <string.h>
#include "attnflow/version.h"
#include "cli.h"
#include "mpi_comm.h"

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

/* Commands that run across MPI ranks (the others refuse more than one). */
static const cli_command *const distributed[] = {&cli_cmd_attention, &cli_cmd_flow, NULL};

static int run(int argc, char **argv);

int main(int argc, char **argv)
{
    int rc = cli_mpi_init(&argc, &argv);
    if (!rc)
        rc = run(argc, argv);
    return cli_mpi_finalize(rc);
}

static int run(int argc, char **argv)
{
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
    if (cli_mpi_size() > 1) {
        size_t k = 0;
        while (distributed[k] && strcmp(distributed[k]->name, name) != 0)
            k++;
        if (!distributed[k])
            return cli_fail(CLI_EUSAGE, "'%s' runs on one process; under mpirun only 'attention' "
                                        "and 'flow' are distributed (%d ranks given)",
                            name, cli_mpi_size());
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
