/* attnflow <command> [options]: a thin layer over libattnflow. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "attnflow/version.h"
#include "cli.h"
#include "outputs.h"
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

const char *const *cli_command_names(void)
{
    static const char *names[sizeof commands / sizeof commands[0]];
    for (size_t k = 0; commands[k]; k++)
        names[k] = commands[k]->name;
    return names;
}

static void usage(FILE *fp)
{
    fprintf(fp, "usage: attnflow <command> [options]   (attnflow help <command>, or "
            "attnflow <command> --help)\n\ncommands:\n");
    for (size_t k = 0; commands[k]; k++)
        fprintf(fp, "  %-10s %s\n", commands[k]->name, commands[k]->summary);
    fprintf(fp, "  %-10s %s\n", "run", "run every [command] section of an INI file (options override)");
    fprintf(fp, "  %-10s %s\n", "help", "help CMD: the options of a command");
    fprintf(fp, "  %-10s %s\n", "version", "print the version");
}

/* "unknown command 'x'" with a suggestion, then the list of commands. */
static int unknown_command(const char *name)
{
    const char *names[sizeof commands / sizeof commands[0] + 3];
    size_t n = 0;
    for (const char *const *c = cli_command_names(); *c; c++)
        names[n++] = *c;
    names[n++] = "run";
    names[n++] = "help";
    names[n++] = "version";
    const char *best = cli_closest(name, names, n);
    if (best)
        cli_fail(CLI_EUSAGE, "unknown command '%s' (did you mean %s?)", name, best);
    else
        cli_fail(CLI_EUSAGE, "unknown command '%s'", name);
    usage(stderr);
    return CLI_EUSAGE;
}

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* attnflow help [CMD] */
static int help(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[2], "help") == 0) { /* `help help` is the global usage */
        usage(stdout);
        return 0;
    }
    if (argc > 3)
        return cli_fail(CLI_EUSAGE, "help: one command at a time ('%s' is one too many)", argv[3]);
    if (strcmp(argv[2], "run") == 0) {
        cli_print_run_help(stdout);
        return 0;
    }
    const cli_command *cmd = cli_find_command(argv[2]);
    if (!cmd)
        return unknown_command(argv[2]);
    cli_print_help(cmd, stdout);
    return 0;
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
    cli_signals_install(); /* a signal never leaves a temporary file (outputs.h) */
    if (argc < 2) {
        usage(stderr);
        return CLI_EUSAGE;
    }
    const char *name = argv[1];
    if (is_help(name) || strcmp(name, "help") == 0)
        return help(argc, argv);
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
        for (int i = 2; i < argc; i++)
            if (is_help(argv[i])) {
                cli_print_run_help(stdout);
                return 0;
            }
        if (argc < 3 || argv[2][0] == '-')
            return cli_fail(CLI_EUSAGE, "usage: attnflow run FILE.ini [--option [value] ...]");
        return cli_run_ini(argv[2], argc - 3, argv + 3);
    }
    const cli_command *cmd = cli_find_command(name);
    if (!cmd)
        return unknown_command(name);
    return cli_dispatch(cmd, argc - 1, argv + 1);
}
