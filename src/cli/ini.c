/* INI reading with line numbers (see ini.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "attnflow/io.h"
#include "cli.h"
#include "ini.h"

static char *strip(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'
                   || s[len - 1] == '\n'))
        s[--len] = '\0';
    return s;
}

/* ';' at the start of a value or after a blank starts a comment. */
static void cut_inline_comment(char *v)
{
    for (char *p = v; *p; p++)
        if (*p == ';' && (p == v || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            return;
        }
}

static int read_line(const char *path, char *raw, size_t len, long line, char *section,
                     size_t section_cap, cli_ini_section_fn on_section, cli_ini_key_fn on_key,
                     void *user)
{
    /* NUL and control bytes: path:line:column, like every text reader */
    if (af_check_text_line(path, (size_t)line, raw, len) != AF_SUCCESS)
        return cli_fail(CLI_EINPUT, "%s", af_last_error());
    if (len > CLI_INI_MAX_LINE)
        return cli_fail(CLI_EINPUT, "%s:%ld: line longer than %d bytes", path, line,
                        CLI_INI_MAX_LINE);
    if (line == 1 && (unsigned char)raw[0] == 0xEF && (unsigned char)raw[1] == 0xBB
        && (unsigned char)raw[2] == 0xBF)
        raw += 3; /* UTF-8 byte order mark */
    char *s = strip(raw);
    if (*s == '\0' || *s == ';' || *s == '#')
        return 0;
    if (*s == '[') {
        char *end = strchr(s, ']');
        if (!end)
            return cli_fail(CLI_EINPUT, "%s:%ld: INI syntax error: '[' without ']'", path, line);
        *end = '\0';
        char *name = strip(s + 1);
        if (strlen(name) >= section_cap)
            return cli_fail(CLI_EINPUT, "%s:%ld: section name too long", path, line);
        strcpy(section, name);
        return on_section(user, section, line);
    }
    char *eq = strpbrk(s, "=:");
    if (!eq)
        return cli_fail(CLI_EINPUT, "%s:%ld: INI syntax error: expected 'key = value' or "
                        "'[command]'", path, line);
    *eq = '\0';
    char *key = strip(s), *value = eq + 1;
    cut_inline_comment(value);
    value = strip(value);
    if (*key == '\0')
        return cli_fail(CLI_EINPUT, "%s:%ld: INI syntax error: no key before '='", path, line);
    return on_key(user, section, key, value, line);
}

int cli_ini_read(const char *path, cli_ini_section_fn on_section, cli_ini_key_fn on_key,
                 void *user)
{
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return cli_fail(CLI_EUSAGE, "%s: is a directory, not an INI file", path);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return cli_fail(CLI_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL, section[256] = "";
    size_t cap = 0;
    ssize_t len;
    long line = 0;
    int rc = 0;
    errno = 0;
    while (rc == 0 && (len = getline(&buf, &cap, fp)) != -1)
        rc = read_line(path, buf, (size_t)len, ++line, section, sizeof section, on_section,
                       on_key, user);
    if (rc == 0 && ferror(fp))
        rc = cli_fail(CLI_EINPUT, "%s: read error: %s", path, strerror(errno));
    free(buf);
    fclose(fp);
    return rc;
}
