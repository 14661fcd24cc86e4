/* A look at an INI file before inih parses it. inih reads lines into a
 * fixed buffer: a longer line is cut into pieces that count as lines of
 * their own, so every later error would name the wrong line, and a NUL byte
 * ends a line silently. Both are refused here, naming the real line. */
#include <stdio.h>
#include <stdlib.h>
#include "attnflow/io.h"
#include "cli.h"

/* Debian's libinih reads lines of up to 199 bytes with their newline. */
#define INI_LINE_MAX 198

int cli_ini_precheck(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0; /* inih reports it */
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    int rc = 0;
    while (!rc && (len = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        af_status st = af_check_text_line(path, lineno, line, (size_t)len);
        size_t text = (size_t)len - (len > 0 && line[len - 1] == '\n')
                      - (len > 1 && line[len - 1] == '\n' && line[len - 2] == '\r');
        if (st)
            rc = cli_fail_status(st);
        else if (text > INI_LINE_MAX)
            rc = cli_fail(CLI_EINPUT, "%s:%zu: line of %zu characters: INI lines hold at most %d",
                          path, lineno, text, INI_LINE_MAX);
    }
    free(line);
    fclose(fp);
    return rc;
}
