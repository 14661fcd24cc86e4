/* The INI reader of the CLI: '[section]' lines, 'key = value' (or 'key: value')
 * lines, whole-line comments starting with ';' or '#', inline comments after
 * ' ;'. Unlike the inih library it replaces, it reports every event and every
 * error with its line number (counted in physical lines, however long they are)
 * and tells sections without keys apart, so that unknown sections and keys
 * can be refused with file:line. */
#ifndef AF_CLI_INI_H
#define AF_CLI_INI_H

/* Called for each '[section]' line; returns 0 to go on, else an exit status
 * (after printing its one-line error), which stops the reading. */
typedef int (*cli_ini_section_fn)(void *user, const char *section, long line);
/* Called for each key = value line, section "" before the first header. */
typedef int (*cli_ini_key_fn)(void *user, const char *section, const char *key,
                              const char *value, long line);

/* Longest line accepted, in bytes. */
#define CLI_INI_MAX_LINE 65536

/* Reads path; returns 0, the first non-zero callback status, or the status of
 * a printed 'attnflow: path:line: ...' error: CLI_EINPUT (1) for a file that
 * cannot be read, a syntax error, a NUL byte or an over-long line, CLI_EUSAGE
 * (2) for a directory given as the file. */
int cli_ini_read(const char *path, cli_ini_section_fn on_section, cli_ini_key_fn on_key,
                 void *user);

#endif
