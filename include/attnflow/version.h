/* The version, single source of truth: the Makefile reads AF_VERSION from
 * this file for the shared library's name and soname, the pkg-config file and
 * the man pages; the CLI's --version and every data file's first header line
 * print af_version(). CHANGELOG.md and CITATION.cff must name the same
 * version (scripts/check_docs.sh, run by make test). */
#ifndef AF_VERSION_H
#define AF_VERSION_H
#define AF_VERSION "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif
/* Exported from libattnflow.so (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/* Version string of the library that is linked (may differ from the header). */
const char *af_version(void);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
