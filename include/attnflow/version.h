#ifndef AF_VERSION_H
#define AF_VERSION_H
#define AF_VERSION "0.1.0"
/* Version string of the library that is linked (may differ from the header). */
const char *af_version(void);
#endif
