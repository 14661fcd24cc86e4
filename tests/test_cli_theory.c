/* The heat, compare and gradflow commands as a user runs them: exit codes
 * (1 bad input, 2 usage), one 'attnflow:' line on stderr, no output file left
 * behind, and the heat --out -> --grid-file round trip. Small sizes: the
 * whole file runs in a few seconds. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "attnflow/heat.h"

/* Runs the CLI; stdout and stderr into separate buffers; returns the exit code. */
static int run(const char *args, char *out, size_t cap, char *err, size_t ecap)
{
    char cmd[4096], errpath[] = "/tmp/af_cli_theory_err_XXXXXX";
    close(mkstemp(errpath));
    snprintf(cmd, sizeof cmd, "%s %s 2>%s", AF_CLI, args, errpath);
    FILE *p = popen(cmd, "r");
    size_t len = fread(out, 1, cap - 1, p);
    out[len] = '\0';
    int st = pclose(p);
    FILE *fe = fopen(errpath, "r");
    len = fe ? fread(err, 1, ecap - 1, fe) : 0;
    err[len] = '\0';
    if (fe)
        fclose(fe);
    unlink(errpath);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A temporary directory name that does not exist yet. */
static void temp_dir(char *buf, size_t cap)
{
    char d[] = "/tmp/af_cli_theory_XXXXXX";
    cr_assert_not_null(mkdtemp(d));
    snprintf(buf, cap, "%s", d);
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Expect exit code `code`, exactly one stderr line starting 'attnflow: ' that
 * contains `what`, and no file at `path` (may be NULL). */
static void expect_fail(const char *args, int code, const char *what, const char *path)
{
    char out[8192], err[4096];
    int rc = run(args, out, sizeof out, err, sizeof err);
    cr_expect_eq(rc, code, "%s: exit %d (expected %d), stderr: %s", args, rc, code, err);
    cr_expect_eq(strncmp(err, "attnflow: ", 10), 0, "%s: stderr '%s'", args, err);
    const char *nl = strchr(err, '\n');
    cr_expect(nl && nl[1] == '\0', "%s: one line expected, got '%s'", args, err);
    cr_expect_neq(strstr(err, what), NULL, "%s: '%s' not in '%s'", args, what, err);
    if (path)
        cr_expect(!exists(path), "%s: %s was left behind", args, path);
}

Test(cli_theory, heat_bad_inputs)
{
    char dir[256], f[512], args[2048];
    temp_dir(dir, sizeof dir);
    snprintf(f, sizeof f, "%s/h.dat", dir);
    /* a box whose cell volume underflows: used to write mass = nan, exit 0 */
    snprintf(args, sizeof args, "heat --half 1e-300 --out %s", f);
    expect_fail(args, 1, "cell volume", f);
    snprintf(args, sizeof args, "heat --d 1 --half 1e-300 --out %s", f);
    expect_fail(args, 1, "too small", f);
    snprintf(args, sizeof args, "heat --d 1 --N 5000000000 --out %s", f);
    expect_fail(args, 1, "--N", f);
    snprintf(args, sizeof args, "heat --N 50000 --out %s", f);
    expect_fail(args, 1, "--N", f);
    snprintf(args, sizeof args, "heat --T -1 --out %s", f);
    expect_fail(args, 1, "--T", f);
    snprintf(args, sizeof args, "heat --mean 1,abc --out %s", f);
    expect_fail(args, 1, "--mean", f);
    snprintf(args, sizeof args, "heat --density mixture --weights 1,2, --out %s", f);
    expect_fail(args, 1, "--weights", f);
    snprintf(args, sizeof args, "heat --density grid --out %s", f);
    expect_fail(args, 2, "--grid-file", f);
    /* grid files: negative, NaN, ragged, missing rho column */
    const char *bad[][2] = {
        {"0 1\n1 -1\n2 3\n3 1\n", "negative"},
        {"0 1\n1 nan\n2 3\n3 1\n", "not finite"},
        {"0 1\n1 2 3\n2 3\n", "numbers, expected"},
        {"# columns: x kde pde\n0 1 1\n1 2 2\n2 1 1\n", "rho"},
        {"0 1\n1 abc\n", "not a row of numbers"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char g[512];
        snprintf(g, sizeof g, "%s/g%zu.dat", dir, k);
        FILE *fp = fopen(g, "w");
        fputs(bad[k][0], fp);
        fclose(fp);
        snprintf(args, sizeof args, "heat --density grid --grid-file %s --out %s", g, f);
        expect_fail(args, 1, bad[k][1], f);
        unlink(g);
    }
    rmdir(dir);
}

/* Node values (column col) of the last '# t:' block of a heat output file. */
static size_t last_block(const char *path, size_t col, double *v, size_t cap)
{
    FILE *fp = fopen(path, "r");
    cr_assert_not_null(fp, "%s", path);
    char line[1024];
    size_t n = 0;
    while (fgets(line, sizeof line, fp)) {
        if (strncmp(line, "# t:", 4) == 0) {
            n = 0;
            continue;
        }
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *p = line, *end;
        double x = NAN;
        for (size_t k = 0; k <= col; k++) {
            x = strtod(p, &end);
            cr_assert_neq(end, p, "%s: short row '%s'", path, line);
            p = end;
        }
        cr_assert_lt(n, cap);
        v[n++] = x;
    }
    fclose(fp);
    return n;
}

Test(cli_theory, heat_output_reads_back_as_grid_file)
{
    /* semigroup: heat to T1 written with --out, read back with --grid-file
     * (its last block, rho column, not 'exact') and evolved by T2 equals the
     * closed-form solution at T1 + T2 */
    char dir[256], h1[512], h2[512], h3[512], args[2048], out[8192], err[4096];
    temp_dir(dir, sizeof dir);
    snprintf(h1, sizeof h1, "%s/h1.dat", dir);
    snprintf(h2, sizeof h2, "%s/h2.dat", dir);
    snprintf(h3, sizeof h3, "%s/h3.dat", dir);
    snprintf(args, sizeof args, "heat --d 1 --N 256 --half 10 --T 0.2 --snapshots 3 --out %s", h1);
    cr_assert_eq(run(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    snprintf(args, sizeof args, "heat --density grid --grid-file %s --T 0.3 --snapshots 2 --out %s",
             h1, h2);
    cr_assert_eq(run(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_expect_neq(strstr(out, "d=1 grid=256 "), NULL, "%s", out);
    snprintf(args, sizeof args, "heat --d 1 --N 256 --half 10 --T 0.5 --snapshots 1 --out %s", h3);
    cr_assert_eq(run(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    static double a[256], ex[256];
    cr_assert_eq(last_block(h2, 1, a, 256), 256);
    cr_assert_eq(last_block(h3, 2, ex, 256), 256, "exact column");
    double e = 0, mx = 0;
    for (size_t j = 0; j < 256; j++) {
        e = fmax(e, fabs(a[j] - ex[j]));
        mx = fmax(mx, ex[j]);
    }
    cr_expect_lt(e, 1e-10 * mx, "semigroup through the file: max error %g (max %g)", e, mx);
    /* 2-D: grid rows separated by blank lines, blocks by '# t:' lines */
    snprintf(args, sizeof args, "heat --N 32 --T 0.1 --snapshots 2 --out %s", h1);
    cr_assert_eq(run(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    snprintf(args, sizeof args, "heat --density grid --grid-file %s --T 0", h1);
    cr_assert_eq(run(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_expect_neq(strstr(out, "d=2 grid=32x32 "), NULL, "%s", out);
    cr_expect_neq(strstr(out, "mass=1 ") ? out : strstr(out, "mass=0.99999999999"), NULL, "%s", out);
    /* 1-D metadata of the mean: one coordinate */
    FILE *fp = fopen(h3, "r");
    char line[1024];
    int seen = 0;
    while (fgets(line, sizeof line, fp))
        if (strncmp(line, "# density:", 10) == 0) {
            seen = 1;
            cr_expect_neq(strstr(line, "m = (0),"), NULL, "%s", line);
        }
    fclose(fp);
    cr_expect(seen);
    unlink(h1);
    unlink(h2);
    unlink(h3);
    rmdir(dir);
}

Test(cli_theory, compare_bad_inputs)
{
    char dir[256], sub[512], f[600], args[1024];
    temp_dir(dir, sizeof dir);
    snprintf(sub, sizeof sub, "%s/run", dir);
    snprintf(f, sizeof f, "%s/errors.dat", sub);
    /* empty --out: used to read uninitialised memory */
    expect_fail("compare --n 10 --N 32 --T 0 --out ''", 1, "--out", NULL);
    snprintf(args, sizeof args, "compare --n 10 --N 32 --T 1e10 --dt 1e-10 --out %s", sub);
    expect_fail(args, 1, "steps", f);
    snprintf(args, sizeof args, "compare --n 10 --N 32 --T -1 --out %s", sub);
    expect_fail(args, 1, "--T", f);
    snprintf(args, sizeof args, "compare --n 10 --N 32 --sweep n --values 10,abc --out %s", sub);
    expect_fail(args, 1, "--values", NULL);
    snprintf(args, sizeof args, "compare --n 10 --N 32 --sweep n --values 10, --out %s", sub);
    expect_fail(args, 1, "--values", NULL);
    snprintf(args, sizeof args, "compare --n 10 --N 32 --sweep n --out %s", sub);
    expect_fail(args, 2, "--values", NULL);
    expect_fail("compare --n 10 --N 32 --sweep n --values 10,20", 2, "--out", NULL);
    snprintf(args, sizeof args, "compare --n 10 --N 32 --values 1 --out %s", sub);
    expect_fail(args, 2, "--sweep", f);
    snprintf(args, sizeof args, "compare --n 10 --N 32 --sweep n --values 10.5 --out %s", sub);
    expect_fail(args, 1, "integer", NULL);
    char sw[600];
    snprintf(sw, sizeof sw, "%s/sweep.dat", sub);
    cr_expect(!exists(sw));
    /* a file where the directory should be */
    char file[512];
    snprintf(file, sizeof file, "%s/plain", dir);
    FILE *fp = fopen(file, "w");
    fclose(fp);
    snprintf(args, sizeof args, "compare --n 10 --N 32 --T 0 --out %s/x", file);
    expect_fail(args, 1, "--out", NULL);
    unlink(file);
    rmdir(sub);
    rmdir(dir);
}

Test(cli_theory, compare_snapshot_count_is_honest)
{
    /* T = 0: one time step-free run, so 1 snapshot though 3 were requested,
     * and the metadata says so; 4 steps and 3 snapshots: t = 0, T/2, T */
    char dir[256], args[1024], out[8192], err[4096], f[600], line[1024];
    temp_dir(dir, sizeof dir);
    snprintf(args, sizeof args, "compare --n 10 --N 32 --T 0 --snapshots 3 --quiet --out %s", dir);
    cr_assert_eq(run(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    snprintf(f, sizeof f, "%s/snapshots.dat", dir);
    FILE *fp = fopen(f, "r");
    cr_assert_not_null(fp);
    int blocks = 0, meta = 0, req = 0;
    while (fgets(line, sizeof line, fp)) {
        blocks += strncmp(line, "# t:", 4) == 0;
        meta += strncmp(line, "# snapshots: 1,", 15) == 0;
        req += strncmp(line, "# snapshots_requested: 3", 24) == 0;
    }
    fclose(fp);
    cr_expect_eq(blocks, 1);
    cr_expect_eq(meta, 1);
    cr_expect_eq(req, 1);
    snprintf(args, sizeof args, "compare --n 10 --N 32 --T 0.02 --dt 0.005 --snapshots 3 --quiet "
             "--out %s", dir);
    cr_assert_eq(run(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    fp = fopen(f, "r");
    double ts[8];
    blocks = 0;
    req = 0;
    while (fgets(line, sizeof line, fp)) {
        if (strncmp(line, "# t:", 4) == 0 && blocks < 8)
            ts[blocks++] = strtod(line + 4, NULL);
        req += strncmp(line, "# snapshots_requested", 21) == 0;
    }
    fclose(fp);
    cr_assert_eq(blocks, 3);
    cr_expect(ts[0] == 0 && fabs(ts[1] - 0.01) < 1e-15 && fabs(ts[2] - 0.02) < 1e-15,
              "%g %g %g", ts[0], ts[1], ts[2]);
    cr_expect_eq(req, 0);
    const char *names[] = {"errors.dat", "snapshots.dat", "particles.dat"};
    for (int k = 0; k < 3; k++) {
        snprintf(f, sizeof f, "%s/%s", dir, names[k]);
        unlink(f);
    }
    rmdir(dir);
}

Test(cli_theory, gradflow_bad_inputs)
{
    char dir[256], f[512], args[1024];
    temp_dir(dir, sizeof dir);
    snprintf(f, sizeof f, "%s/e.dat", dir);
    /* a step count beyond size_t: used to run 0 steps and exit 0 */
    snprintf(args, sizeof args, "gradflow --n 4 --T 1e10 --dt 1e-10 --out %s", f);
    expect_fail(args, 1, "steps", f);
    snprintf(args, sizeof args, "gradflow --n 4 --T -1 --out %s", f);
    expect_fail(args, 1, "--T", f);
    snprintf(args, sizeof args, "gradflow --n 4 --A '1,0;0' --out %s", f);
    expect_fail(args, 1, "--A", f);
    snprintf(args, sizeof args, "gradflow --n 4 --A '1,0;0,1,' --out %s", f);
    expect_fail(args, 1, "--A", f);
    snprintf(args, sizeof args, "gradflow --n 4 --A '1,2;0,1' --out %s", f);
    expect_fail(args, 1, "symmetric", f);
    snprintf(args, sizeof args, "gradflow --mode jacobian --ns 4,x --out %s", f);
    expect_fail(args, 1, "--ns", f);
    snprintf(args, sizeof args, "gradflow --mode jacobian --ns 4,1000 --out %s", f);
    expect_fail(args, 1, "--ns", f);
    snprintf(args, sizeof args, "gradflow --mode bogus --out %s", f);
    expect_fail(args, 1, "--mode", f);
    /* a good run: the list separators ',' and ';' with blanks */
    char out[8192], err[4096];
    snprintf(args, sizeof args, "gradflow --n 6 --T 0.02 --dt 0.01 --A '1, 0.2; 0.2 1' --out %s", f);
    cr_expect_eq(run(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_expect(exists(f));
    unlink(f);
    rmdir(dir);
}
