/* attnflow under mpirun (2 ranks on localhost, one thread each): flow and
 * attention give the one-process results to 1e-12, rank 0 writes the
 * files, and an error on one rank ends the job with one 'attnflow:' line,
 * a non-zero exit and no output file. The MPI build is what `make test`
 * makes (the bootstrap installs OpenMPI); the distributed arithmetic itself
 * is also tested without MPI in test_distributed.c. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "support/fixtures.h"

/* As root mpirun wants both ALLOW variables; containers often forbid the
 * cross-memory attach of the shared-memory transport; -q keeps mpirun's own banners off
 * (the job's messages are attnflow's); 2 ranks on a 2-core machine. */
#define ENV                                                                              \
    "OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "               \
    "OMPI_MCA_btl_vader_single_copy_mechanism=none "
/* Under AddressSanitizer (CI's second stage) OpenMPI's own allocations (its
 * components are unloaded at MPI_Finalize, so the stacks are unknown) show as
 * leaks: leak detection is off for the ranks only; the same commands on one
 * process (ONE, and the rest of the suite) keep it. */
#define MPIRUN ENV "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" mpirun -q --oversubscribe -np 2 " AF_CLI
#define ONE ENV AF_CLI

static void fresh_path(char *tmpl)
{
    int fd = mkstemp(tmpl);
    cr_assert_geq(fd, 0);
    close(fd);
    unlink(tmpl);
}

/* The numbers of the data lines (not '#', not blank) of a file. */
static size_t read_numbers(const char *path, double *v, size_t cap)
{
    FILE *fp = fopen(path, "r");
    cr_assert_not_null(fp, "%s was not written", path);
    char line[4096];
    size_t k = 0;
    while (fgets(line, sizeof line, fp)) {
        if (line[0] == '#')
            continue;
        char *s = line, *end;
        for (double x = strtod(s, &end); end != s && k < cap; x = strtod(s, &end)) {
            v[k++] = x;
            s = end;
        }
    }
    fclose(fp);
    return k;
}

/* Largest |a - b| / (1 + |a|) between the data of two files. */
static double file_diff(const char *a, const char *b, size_t *count)
{
    enum { CAP = 200000 };
    double *x = malloc(2 * CAP * sizeof *x), *y = x + CAP;
    size_t na = read_numbers(a, x, CAP), nb = read_numbers(b, y, CAP);
    cr_assert_eq(na, nb, "%s has %zu numbers, %s %zu", a, na, b, nb);
    cr_assert_gt(na, 0);
    double m = 0;
    for (size_t k = 0; k < na; k++) {
        if (isnan(x[k]) && isnan(y[k]))
            continue; /* an undefined column (energy with A not symmetric) on both */
        double dk = fabs(x[k] - y[k]) / (1 + fabs(x[k]));
        m = dk > m || isnan(dk) ? dk : m;
    }
    free(x);
    *count = na;
    return m;
}

static void run_ok(const char *launcher, const char *args)
{
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd, "%s", launcher);
    int code = fx_run_cli(cmd, args, out, sizeof out);
    cr_assert_eq(code, 0, "%s %s: exit %d: %s", launcher, args, code, out);
}

/* `flow opts` with 2 ranks against one process on the dense and on the
 * tiled backend: trajectory (t, i, x) to 1e-12; observables (rank 0's,
 * from the same tokens) to 1e-10. */
static void flow_matches(const char *opts)
{
    char t2[] = "/tmp/af_mpi_t2_XXXXXX", o2[] = "/tmp/af_mpi_o2_XXXXXX";
    char t1[] = "/tmp/af_mpi_t1_XXXXXX", o1[] = "/tmp/af_mpi_o1_XXXXXX";
    fresh_path(t2), fresh_path(o2), fresh_path(t1), fresh_path(o1);
    char args[1024];
    snprintf(args, sizeof args, "flow --quiet %s --out %s --observables %s", opts, t2, o2);
    run_ok(MPIRUN, args);
    const char *backends[] = {"tiled", "dense"};
    for (int b = 0; b < 2; b++) {
        snprintf(args, sizeof args, "flow --quiet %s --backend %s --out %s --observables %s",
                 opts, backends[b], t1, o1);
        run_ok(ONE, args);
        size_t cnt;
        double d = file_diff(t1, t2, &cnt);
        cr_expect_leq(d, 1e-12, "%s: trajectory, 2 ranks vs one process %s: %.3g", opts,
                      backends[b], d);
        d = file_diff(o1, o2, &cnt);
        cr_expect_leq(d, 1e-10, "%s: observables vs one process %s: %.3g", opts, backends[b], d);
        unlink(t1);
        unlink(o1);
    }
    unlink(t2);
    unlink(o2);
}

Test(cli_mpi, flow_two_ranks_equal_one_process, .timeout = 120)
{
    /* A not symmetric: alternating Sinkhorn (column sums allreduced); 151
     * tokens: blocks of 76 and 75. */
    const char *A = fx_temp_file("1 0.4\n-0.3 0.8\n");
    char opts[512];
    snprintf(opts, sizeof opts, "--init gaussian --n 151 --d 2 --seed 5 --norm sinkhorn "
                                "--A %s --eps 0.5 --tol 1e-11 --T 0.1 --dt 0.025", A);
    flow_matches(opts);
    /* L2 scores: the symmetric relaxed update (row LSEs all-gathered). */
    flow_matches("--init mixture --n 120 --d 2 --seed 6 --norm sinkhorn --scores l2 --eps 0.2 "
                 "--skip --integrator euler --T 0.05 --dt 0.01");
}

Test(cli_mpi, attention_two_ranks_equal_one_process, .timeout = 60)
{
    const char *A = fx_temp_file("1 -0.5\n0.2 1\n");
    char l1[] = "/tmp/af_mpi_l1_XXXXXX", l2[] = "/tmp/af_mpi_l2_XXXXXX", args[1024];
    fresh_path(l1), fresh_path(l2);
    const char *opts = "attention --init gaussian --n 97 --d 2 --seed 4 --eps 0.3 --tol 1e-12";
    char out1[4096], out2[4096];
    snprintf(args, sizeof args, "%s --A %s --backend tiled --log %s", opts, A, l1);
    cr_assert_eq(fx_run_cli(ONE, args, out1, sizeof out1), 0, "%s", out1);
    snprintf(args, sizeof args, "%s --A %s --log %s", opts, A, l2);
    cr_assert_eq(fx_run_cli(MPIRUN, args, out2, sizeof out2), 0, "%s", out2);
    size_t cnt;
    double d = file_diff(l1, l2, &cnt);
    cr_expect_leq(d, 1e-12, "per-normalisation errors differ by %.3g", d);
    cr_expect_gt(cnt, 3 * 10, "a few normalisations were logged");
    /* the same iteration count on stdout */
    const char *i1 = strstr(out1, "iters="), *i2 = strstr(out2, "iters=");
    cr_assert(i1 && i2, "%s / %s", out1, out2);
    cr_expect_eq(atoi(i1 + 6), atoi(i2 + 6), "%s / %s", out1, out2);
    unlink(l1);
    unlink(l2);
}

static int count_lines_with(const char *out, const char *prefix)
{
    int c = 0;
    for (const char *s = out; *s;) {
        if (strncmp(s, prefix, strlen(prefix)) == 0)
            c++;
        const char *nl = strchr(s, '\n');
        if (!nl)
            break;
        s = nl + 1;
    }
    return c;
}

Test(cli_mpi, error_on_one_rank_one_line_no_file, .timeout = 60)
{
    char path[] = "/tmp/af_mpi_err_XXXXXX", args[1024], out[8192];
    fresh_path(path);
    /* A bad token file: rank 0 reads it, rank 1 only learns of it. */
    const char *bad = fx_temp_file("1 2\n3 x\n0 1\n");
    snprintf(args, sizeof args, "flow --quiet --tokens %s --norm sinkhorn --out %s", bad, path);
    int code = fx_run_cli(MPIRUN, args, out, sizeof out);
    cr_expect_eq(code, 1, "exit %d: %s", code, out);
    cr_expect_eq(count_lines_with(out, "attnflow:"), 1, "one attnflow: line: %s", out);
    cr_expect_neq(strstr(out, "not a number"), NULL, "%s", out);
    cr_expect_neq(access(path, F_OK), 0, "no output file");
    /* A failure seen by rank 1 alone: USA with one far token, the last of
     * 20 (rank 1's block): only its own score |x|^2 = 900 overflows exp. */
    char far[2048] = "";
    for (int i = 0; i < 19; i++)
        snprintf(far + strlen(far), sizeof far - strlen(far), "0 %g\n", 0.001 * i);
    strcat(far, "30 0\n");
    snprintf(args, sizeof args, "flow --quiet --tokens %s --usa --integrator euler --out %s",
             fx_temp_file(far), path);
    /* A numerical stop keeps the complete file up to the last saved time,
     * marked '# status: stopped ...', and exits 3 (docs/robustness.md). */
    code = fx_run_cli(MPIRUN, args, out, sizeof out);
    cr_expect_eq(code, 3, "exit %d: %s", code, out);
    cr_expect_eq(count_lines_with(out, "attnflow:"), 1, "one attnflow: line: %s", out);
    cr_expect_neq(strstr(out, "USA kernel exp(C) overflows"), NULL, "rank 1's message: %s", out);
    FILE *kept = fopen(path, "r");
    cr_assert_not_null(kept, "the trajectory up to t = 0 is kept");
    char head[512] = "", line2[512] = "";
    cr_expect_not_null(fgets(head, sizeof head, kept));
    cr_expect_not_null(fgets(line2, sizeof line2, kept));
    fclose(kept);
    cr_expect_eq(strncmp(line2, "# status: stopped at t = 0", 26), 0, "%s", line2);
    unlink(path);
    /* What does not distribute says so (exit 2, one line). */
    code = fx_run_cli(MPIRUN, "heat --n 16", out, sizeof out);
    cr_expect_eq(code, 2, "exit %d: %s", code, out);
    cr_expect_eq(count_lines_with(out, "attnflow:"), 1, "%s", out);
    cr_expect_neq(strstr(out, "runs on one process"), NULL, "%s", out);
}
