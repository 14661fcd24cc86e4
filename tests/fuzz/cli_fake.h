/* For the harnesses of the CLI readers: the real option tables of every
 * command with a run function that does nothing, so that an INI file or an
 * option list is parsed exactly as `attnflow` parses it, without running
 * any mathematics. Replaces main.c's cli_find_command. The error lines
 * are silenced by libFuzzer's -close_fd_mask (scripts/run_fuzz.sh). */
#ifndef AF_FUZZ_CLI_FAKE_H
#define AF_FUZZ_CLI_FAKE_H

#include <string.h>
#include <unistd.h>
#include "cli/cli.h"

static cli_command fake_commands[7];

static int fake_run(const cli_args *a)
{
    /* read every value, as a command would */
    volatile size_t len = 0;
    for (size_t k = 0; k < a->nopts; k++)
        if (a->value[k])
            len += strlen(a->value[k]);
    (void)len;
    return 0;
}

const cli_command *cli_find_command(const char *name)
{
    for (size_t k = 0; k < sizeof fake_commands / sizeof fake_commands[0]; k++)
        if (fake_commands[k].name && strcmp(fake_commands[k].name, name) == 0)
            return &fake_commands[k];
    return NULL;
}

const char *const *cli_command_names(void)
{
    static const char *names[8];
    for (size_t k = 0; k < 7; k++)
        names[k] = fake_commands[k].name;
    return names;
}

__attribute__((unused)) static void fake_cli_init(void)
{
    const cli_command *real[] = {&cli_cmd_attention, &cli_cmd_flow,    &cli_cmd_train,
                                 &cli_cmd_convex,    &cli_cmd_heat,    &cli_cmd_compare,
                                 &cli_cmd_gradflow};
    for (size_t k = 0; k < 7; k++) {
        fake_commands[k] = *real[k];
        fake_commands[k].run = fake_run;
    }
}

#endif
