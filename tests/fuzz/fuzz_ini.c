/* libFuzzer harness: the INI reader (ini.c) of `attnflow run FILE.ini` (sections,
 * keys, values, overrides), with commands that do nothing (cli_fake.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "cli_fake.h"

static int fd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fake_cli_init();
    fd = memfd_create("fuzz_ini", 0);
    if (fd < 0)
        abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    char *over[] = {"--eps", "2", "--quiet", NULL};
    int rc = cli_run_ini(path, size % 2 ? 3 : 0, over);
    if (rc < 0 || rc > 2)
        abort(); /* the fake commands never fail: only input or usage errors */
    return 0;
}
