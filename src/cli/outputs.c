/* One place for the output rule (outputs.h): temporaries, rename all on
 * success, nothing left on error, partial files with a status line on a
 * stop, and signal handling. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"
#include "outputs.h"

void cli_outputs_init(cli_outputs *o) { memset(o, 0, sizeof *o); }

/* The directory part of path made absolute and free of symlinks, then the
 * last component: two spellings of one file ('a.dat', './a.dat',
 * 'd/../a.dat') give one key. NULL if the directory does not exist. */
static char *canonical(const char *path)
{
    char *d = strdup(path), *b = strdup(path);
    char *res = NULL;
    if (d && b) {
        char *dir = realpath(dirname(d), NULL);
        const char *base = basename(b);
        if (dir && (res = malloc(strlen(dir) + strlen(base) + 2)))
            sprintf(res, "%s/%s", dir, base);
        free(dir);
    }
    free(d);
    free(b);
    return res;
}

static int same_file(const char *a, const char *b)
{
    char *ca = canonical(a), *cb = canonical(b);
    int same = ca && cb ? strcmp(ca, cb) == 0 : strcmp(a, b) == 0;
    free(ca);
    free(cb);
    struct stat sa, sb;
    if (!same && stat(a, &sa) == 0 && stat(b, &sb) == 0)
        same = sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino; /* links */
    return same;
}

int cli_outputs_open(cli_outputs *o, const char *option, const char *path, FILE **fp)
{
    if (o->count == CLI_MAX_OUTPUTS)
        return cli_fail(CLI_EINPUT, "--%s: too many output files", option);
    if (path[0] == '\0')
        return cli_fail(CLI_EINPUT, "--%s: empty file name", option);
    for (size_t k = 0; k < o->count; k++)
        if (same_file(o->out[k].path, path))
            return cli_fail(CLI_EUSAGE, "--%s %s: the same file as --%s %s: give each output "
                            "its own file", option, path, o->out[k].option, o->out[k].path);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return cli_fail(CLI_EINPUT, "--%s %s: is a directory", option, path);
    char *copy = strdup(path);
    if (!copy)
        return cli_fail(CLI_EINPUT, "out of memory");
    /* no signal between creating the temporary and registering it */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    af_file *f;
    af_status st = af_file_open(&f, path);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (st) {
        free(copy);
        return cli_fail(CLI_EINPUT, "--%s: %s", option, af_last_error());
    }
    o->out[o->count].option = option;
    o->out[o->count].path = copy;
    o->out[o->count].file = f;
    o->count++;
    *fp = af_file_stream(f);
    return 0;
}

int cli_outputs_join(char *buf, size_t cap, const char *option, const char *dir, const char *name)
{
    if ((size_t)snprintf(buf, cap, "%s/%s", dir, name) >= cap)
        return cli_fail(CLI_EINPUT, "--%s: directory name too long (%zu characters)", option,
                        strlen(dir));
    return 0;
}

int cli_outputs_dir(cli_outputs *o, const char *option, const char *path)
{
    return cli_make_dirs_noting(option, path, &o->made);
}

static void release(cli_outputs *o, int remove_dirs)
{
    for (size_t k = 0; k < o->count; k++) {
        af_file_abort(o->out[k].file);
        free(o->out[k].path);
    }
    o->count = 0;
    cli_made_dirs_release(&o->made, remove_dirs); /* rmdir: only if empty */
}

void cli_outputs_abort(cli_outputs *o) { release(o, 1); }

/* A copy of f's temporary with "# status: ..." after its first line, as a
 * new af_file that replaces f (which is aborted). */
static af_status insert_status(af_file **f, const char *status)
{
    FILE *src = fopen(af_file_temp_path(*f), "r");
    if (!src)
        return af_error(AF_EIO, "%s: cannot reread: %s", af_file_path(*f), strerror(errno));
    af_file *g;
    af_status st = af_file_open(&g, af_file_path(*f));
    if (st) {
        fclose(src);
        return st;
    }
    FILE *dst = af_file_stream(g);
    int c, first = 1;
    while ((c = getc(src)) != EOF) {
        putc(c, dst);
        if (c == '\n' && first) {
            fprintf(dst, "# status: %s\n", status);
            first = 0;
        }
    }
    if (first)
        fprintf(dst, "\n# status: %s\n", status);
    int bad = ferror(src);
    fclose(src);
    if (bad) {
        af_file_abort(g);
        return af_error(AF_EIO, "%s: cannot reread the temporary", af_file_path(*f));
    }
    af_file_abort(*f);
    *f = g;
    return AF_SUCCESS;
}

int cli_outputs_commit(cli_outputs *o, const char *status)
{
    af_status st = AF_SUCCESS;
    size_t bad = 0;
    for (size_t k = 0; k < o->count && !st; k++) {
        FILE *fp = af_file_stream(o->out[k].file);
        if (fflush(fp) != 0 || ferror(fp)) {
            st = af_error(AF_EIO, "%s: write failed: %s", o->out[k].path, strerror(errno));
            bad = k;
        } else if (status && (st = insert_status(&o->out[k].file, status))) {
            bad = k;
        }
    }
    if (st) {
        int rc = cli_fail(CLI_EINPUT, "--%s: %s", o->out[bad].option, af_last_error());
        release(o, 1);
        return rc;
    }
    /* every file is complete on disk: now the renames, as close together as
     * they can be */
    int rc = 0;
    for (size_t k = 0; k < o->count; k++) {
        st = af_file_commit(o->out[k].file);
        o->out[k].file = NULL;
        if (st && !rc)
            rc = cli_fail(CLI_EINPUT, "--%s: %s", o->out[k].option, af_last_error());
        free(o->out[k].path);
    }
    o->count = 0;
    release(o, rc != 0);
    return rc;
}

/* ---- signals ---- */

static volatile sig_atomic_t stop_signal, polling;

static void on_signal(int sig)
{
    if (polling && !stop_signal) {
        stop_signal = sig;
        return;
    }
    af_file_remove_temporaries();
    static const char msg[] = "\nattnflow: interrupted\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    signal(sig, SIG_DFL);
    raise(sig);
}

void cli_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void cli_stop_polling(int on) { polling = on; }

int cli_stop_requested(void) { return stop_signal; }
