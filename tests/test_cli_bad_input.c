/* The bad-input table (docs/robustness.md): for every command, one row per
 * class of bad input: exit code, exactly one 'attnflow:' line naming the
 * problem, and no new or changed file in the working directory (which holds
 * a file the outputs aim at, keep.dat, and a directory, ad/). Rows D1-D10
 * are the reproductions of issue 16. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A small pointclouds run of train (fractions of a second). */
#define TRAIN_SMALL "train --task pointclouds --n-train 20 --n-test 10 --n-points 8 --dim 8 " \
                    "--head-dim 4 --mlp 8 --embed-hidden 8 --epochs 1 --quiet"

typedef struct {
    const char *what; /* class (and issue item) */
    const char *args; /* command line after 'attnflow', run in the scratch directory */
    int code;
    const char *msg;  /* part of the one error line */
    const char *kept; /* exit 3 rows: the file kept with a '# status:' line (removed after) */
} row;

static const row rows[] = {
    /* D1: sizes whose byte count wraps */
    {"D1 components", "heat --d 1 --density mixture --components 2305843009213693952 --quiet", 1,
     "--components: at most", NULL},
    {"D1 components", "compare --d 1 --density mixture --components 4611686018427387904 --quiet",
     1, "--components: at most", NULL},
    {"D1 tokens", "attention --init gaussian --n 4611686018427387904 --quiet", 1, "too large", NULL},
    {"D1 tokens", "flow --init gaussian --n 8 --d 4611686018427387904 --quiet", 1, "too large", NULL},
    {"D1 convex", "convex --d 4611686018427387904 --quiet --out cv", 1, "--d: at most 1024", NULL},
    {"D1 convex", "convex --samples 4294967296 --n 65536 --quiet --out cv", 1,
     "too many tokens", NULL},
    {"D1 convex", "convex --samples 1 --n 4294967296 --quiet --out cv", 1,
     "--n: at most 65536", NULL},
    {"D1 gradflow", "gradflow --n 4611686018427387904 --quiet", 1, "--n: at most", NULL},
    {"D1 train", TRAIN_SMALL " --heads 4611686018427387904 --out tr", 1, "sizes too large", NULL},
    {"D1 train", TRAIN_SMALL " --n-points 4611686018427387904 --out tr", 1, "too large", NULL},
    /* D2: a damaged checkpoint */
    {"D2 checkpoint", TRAIN_SMALL " --epochs 2 --out ck --resume", 1, "checkpoint truncated", NULL},
    /* D3: the divergence message, not garbled (checked for one 'epoch' below); a
     * stopped run keeps its completed epochs, marked, and exits 3 */
    {"D3 message", TRAIN_SMALL " --lr 1e300 --out tr", 3, "epoch 1, step 2: model: non-finite loss",
     "tr/epochs.dat"},
    /* D4: an output that cannot be written: nothing written, nothing destroyed */
    {"D4 attention", "attention --init gaussian --n 8 --out keep.dat --log ad --quiet", 1,
     "--log ad: is a directory", NULL},
    {"D4 flow", "flow --init gaussian --n 8 --out keep.dat --observables ad --quiet", 1,
     "--observables ad: is a directory", NULL},
    {"D4 heat", "heat --d 1 --N 64 --out ad --quiet", 1, "--out ad: is a directory", NULL},
    {"D4 gradflow", "gradflow --n 4 --T 0.1 --out ad --quiet", 1, "--out ad: is a directory", NULL},
    {"D4 compare", "compare --n 10 --N 32 --T 0 --out keep.dat --quiet", 1, "a file is in the way", NULL},
    {"D4 convex", "convex --samples 4 --out keep.dat --quiet", 1, "a file is in the way", NULL},
    {"D4 train", TRAIN_SMALL " --out keep.dat", 1, "a file is in the way", NULL},
    /* D5: NUL and control bytes in text inputs */
    {"D5 tokens", "attention --tokens nul.txt --quiet", 1, "nul.txt:2:4: NUL byte", NULL},
    {"D5 tokens", "flow --tokens ctl.txt --out new.dat --quiet", 1, "ctl.txt:1:3: control byte 0x1b", NULL},
    {"D5 grid", "heat --density grid --grid-file nul.grid --out new.dat --quiet", 1,
     "nul.grid:3:2: NUL byte", NULL},
    {"D5 grid", "compare --density grid --grid-file nul.grid --n 10 --out cmp --quiet", 1,
     "nul.grid:3:2: NUL byte", NULL},
    {"D5 digits", "train --data nul.csv --epochs 1 --out tr --quiet", 1, "nul.csv:1:", NULL},
    /* D6: a NaN grid coordinate */
    {"D6 grid", "heat --density grid --grid-file nan.grid --quiet", 1, "coordinate 1 is not finite", NULL},
    {"D6 grid", "compare --density grid --grid-file nan.grid --n 10 --quiet", 1,
     "coordinate 1 is not finite", NULL},
    /* D10: two outputs naming one file, refused before any work */
    {"D10 flow", "flow --init gaussian --n 8 --out s.dat --observables ./s.dat --quiet", 2,
     "the same file as --out s.dat", NULL},
    {"D10 attention", "attention --init gaussian --n 8 --out keep.dat --log ad/../keep.dat --quiet",
     2, "the same file as --out keep.dat", NULL},
    /* smaller items */
    {"heat --T huge", "heat --T 1e300 --quiet", 1, "coarser than 4 x the initial density", NULL},
    {"gradflow mode", "gradflow --mode energy --ns 4,8 --quiet", 2, "--ns applies to --mode jacobian", NULL},
    {"gradflow mode", "gradflow --mode jacobian --T 1 --quiet", 2, "--T applies to --mode energy", NULL},
    {"attention --iters", "attention --init gaussian --path symmetric --iters 5 --quiet", 2,
     "the symmetric paths iterate another", NULL},
    {"number range", "attention --init gaussian --eps 1e-400 --quiet", 1,
     "--eps: 1e-400 is out of the range of a double", NULL},
    {"control bytes echoed", "attention --init \"$(printf 'gau\\033ss')\" --quiet", 1,
     "'gau\\x1bss'", NULL},
    {"D5 INI", "run nul.ini", 1, "nul.ini:2:6: NUL byte", NULL},
    {"D5 INI", "heat nul.ini", 1, "nul.ini:2:6: NUL byte", NULL},
    {"run stray argument", "run a.ini stray", 2, "run: unexpected argument 'stray'", NULL},
    /* usage and value errors, every command */
    {"unknown option", "attention --bogus 1", 2, "unknown option", NULL},
    {"unknown option", "flow --bogus 1", 2, "unknown option", NULL},
    {"unknown option", "heat --bogus 1", 2, "unknown option", NULL},
    {"unknown option", "compare --bogus 1", 2, "unknown option", NULL},
    {"unknown option", "convex --bogus 1", 2, "unknown option", NULL},
    {"unknown option", "gradflow --bogus 1", 2, "unknown option", NULL},
    {"unknown option", "train --bogus 1", 2, "unknown option", NULL},
    {"not a number", "attention --init gaussian --eps 1x", 1, "--eps: not a number", NULL},
    {"not a number", "flow --init gaussian --dt abc", 1, "--dt: not a number", NULL},
    {"not a number", "heat --kappa abc", 1, "--kappa: not a number", NULL},
    {"not a number", "compare --eps abc", 1, "--eps: not a number", NULL},
    {"not a number", "convex --beta abc", 1, "--beta: not a number", NULL},
    {"not a number", "gradflow --eps abc", 1, "--eps: not a number", NULL},
    {"not a number", TRAIN_SMALL " --lr abc --out tr", 1, "--lr: not a number", NULL},
};

static char dir[64];

static void sh(const char *fmt, const char *arg)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, dir, arg);
    cr_assert_eq(system(cmd), 0, "setup failed: %s", cmd);
}

/* Every file with its checksum and every directory: equal before and after
 * a failed command means nothing was created, changed or removed. */
static void snapshot(char *buf, size_t cap)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cd %s && { find . -type f -exec cksum {} + ; find . -type d; } "
             "| LC_ALL=C sort", dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(buf, 1, cap - 1, p);
    buf[n] = '\0';
    pclose(p);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/af_bad_input_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    sh("cd %s && printf 'keep\\n' > keep.dat && mkdir ad%s", "");
    sh("cd %s && printf '1 2\\n3 4\\0 5\\n' > nul.txt%s", "");
    sh("cd %s && printf '1 \\033 2\\n' > ctl.txt%s", "");
    sh("cd %s && printf '0 1\\n1 1\\n2\\0 1\\n3 1\\n' > nul.grid%s", "");
    sh("cd %s && printf '0 1\\nnan 1\\n2 1\\n' > nan.grid%s", "");
    sh("cd %s && printf '[heat]\\nd = 1\\n' > a.ini%s", "");
    sh("cd %s && printf '[heat]\\nd = 1\\0\\n' > nul.ini%s", "");

    sh("cd %s && printf '0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,"
       "8,0,0,5,8,0,0,9,8,0,0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0,0\\0\\n' "
       "> nul.csv%s", "");
    /* D2: a checkpoint of the same run, 300 bytes short */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd %s && %s " TRAIN_SMALL " --out ck >/dev/null 2>&1 && "
             "truncate -s -300 ck/checkpoint.bin", dir, AF_CLI);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

Test(cli_bad_input, every_row_one_line_exit_code_and_no_file_touched, .init = setup,
     .fini = teardown, .timeout = 120)
{
    static char before[65536], after[65536], out[8192];
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        const row *r = &rows[k];
        snapshot(before, sizeof before);
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "cd %s && %s %s 2>&1", dir, AF_CLI, r->args);
        FILE *p = popen(cmd, "r");
        cr_assert_not_null(p);
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = '\0';
        int st = pclose(p);
        cr_expect(WIFEXITED(st), "%s (%s): killed (status %d): %s", r->what, r->args, st, out);
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        cr_expect_eq(code, r->code, "%s (%s): exit %d: %s", r->what, r->args, code, out);
        cr_expect_eq(strncmp(out, "attnflow: ", 10), 0, "%s (%s): %s", r->what, r->args, out);
        cr_expect(n > 0 && strchr(out, '\n') == out + n - 1, "%s (%s): not one line: %s",
                  r->what, r->args, out);
        cr_expect_neq(strstr(out, r->msg), NULL, "%s (%s): '%s' not in: %s", r->what, r->args,
                      r->msg, out);
        /* D3: the last error quoted once, not formatted into itself */
        const char *e = strstr(out, "step ");
        if (e)
            cr_expect_null(strstr(e + 5, "step "), "%s: garbled: %s", r->what, out);
        if (r->kept) {
            char path[256], line[1024] = "";
            snprintf(path, sizeof path, "%s/%s", dir, r->kept);
            FILE *fp = fopen(path, "r");
            cr_expect_not_null(fp, "%s: %s not kept", r->what, r->kept);
            if (fp) {
                if (!fgets(line, sizeof line, fp) || !fgets(line, sizeof line, fp))
                    line[0] = '\0';
                fclose(fp);
            }
            cr_expect_eq(strncmp(line, "# status: stopped: ", 19), 0, "%s: %s", r->what, line);
            snprintf(cmd, sizeof cmd, "cd %s && rm -r $(dirname %s)", dir, r->kept);
            cr_expect_eq(system(cmd), 0);
        }
        snapshot(after, sizeof after);
        cr_expect_str_eq(after, before, "%s (%s): files changed:\nbefore\n%s\nafter\n%s", r->what,
                         r->args, before, after);
    }
}

/* A command that does not stop by itself on a signal (attention): SIGTERM
 * ends it with the signal's status, one 'attnflow: interrupted' line, and
 * neither its outputs nor their temporaries remain. */
Test(cli_bad_input, sigterm_leaves_no_temporary, .init = setup, .fini = teardown)
{
    static char before[65536], after[65536];
    snapshot(before, sizeof before);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd %s && { %s attention --init gaussian --n 1500 --tol 1e-300 "
             "--max-iters 100000 --out o.dat --log l.dat --quiet 2>err.txt & pid=$!; sleep 0.5; "
             "ls | grep -q 'tmp' || echo 'no temporary while running' >>err.txt; "
             "kill -TERM $pid; wait $pid; echo $? > rc.txt; } 2>/dev/null", dir, AF_CLI);
    cr_assert_eq(system(cmd), 0);
    char path[128], line[256] = "";
    snprintf(path, sizeof path, "%s/rc.txt", dir);
    FILE *fp = fopen(path, "r");
    cr_assert_not_null(fp);
    cr_assert_not_null(fgets(line, sizeof line, fp));
    fclose(fp);
    cr_expect_eq(atoi(line), 128 + 15, "exit status %s", line);
    snprintf(path, sizeof path, "%s/err.txt", dir);
    fp = fopen(path, "r");
    cr_assert_not_null(fp);
    char all[1024];
    size_t n = fread(all, 1, sizeof all - 1, fp);
    all[n] = '\0';
    fclose(fp);
    cr_expect_str_eq(all, "\nattnflow: interrupted\n");
    snprintf(cmd, sizeof cmd, "cd %s && rm rc.txt err.txt", dir);
    cr_assert_eq(system(cmd), 0);
    snapshot(after, sizeof after);
    cr_expect_str_eq(after, before, "files left:\n%s", after);
}
