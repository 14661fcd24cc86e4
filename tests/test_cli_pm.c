/* attnflow flow / compare / attention --backend pm: refusals (one
 * 'attnflow:' line, exit 1, no output file), the grid metadata, and the
 * PM trajectory against the dense one. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "attnflow/io.h"
#include "support/fixtures.h"

Test(cli_pm, bad_input_one_line_no_file)
{
    const char *A = fx_temp_file("1 0.5\n0.5 1\n");
    const char *nan_tok = fx_temp_file("0 1\nnan 2\n1 1\n");
    char out_path[] = "/tmp/af_cli_pm_XXXXXX";
    int fd = mkstemp(out_path);
    cr_assert(fd >= 0);
    close(fd);
    unlink(out_path);
    char cases[6][512], out[4096];
    const char *msgs[6] = {"d <= 3", "A = a I", "not finite", "d <= 3", "A = a I", "not finite"};
    snprintf(cases[0], 512, "flow --quiet --init gaussian --n 20 --d 4 --backend pm --out %s", out_path);
    snprintf(cases[1], 512, "flow --quiet --init gaussian --n 20 --d 2 --A %s --backend pm --out %s", A, out_path);
    snprintf(cases[2], 512, "flow --quiet --tokens %s --backend pm --out %s", nan_tok, out_path);
    snprintf(cases[3], 512, "attention --init gaussian --n 20 --d 4 --backend pm --out %s", out_path);
    snprintf(cases[4], 512, "attention --init gaussian --n 20 --d 2 --A %s --backend pm --out %s", A, out_path);
    snprintf(cases[5], 512, "attention --tokens %s --backend pm --out %s", nan_tok, out_path);
    for (int k = 0; k < 6; k++) {
        int code = fx_run_cli(AF_CLI, cases[k], out, sizeof out);
        cr_expect_eq(code, 1, "%s: exit %d: %s", cases[k], code, out);
        cr_expect_eq(strncmp(out, "attnflow: ", 10), 0, "%s", out);
        cr_expect_neq(strstr(out, msgs[k]), NULL, "%s: %s", cases[k], out);
        cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
        cr_expect_neq(access(out_path, F_OK), 0, "%s left a file", cases[k]);
    }
    cr_expect_eq(fx_run_cli(AF_CLI, "flow --init gaussian --n 5 --d 2 --pm-tol 1e-6", out,
                            sizeof out), 2, "%s", out);
    unlink(A);
    unlink(nan_tok);
}

static double *read_last_block(const char *path, size_t n, size_t d)
{
    double *M;
    size_t rows, cols;
    cr_assert_eq(af_read_matrix(path, &M, &rows, &cols), AF_SUCCESS, "%s", af_last_error());
    cr_assert_eq(cols, d + 2);
    double *X = malloc(n * d * sizeof *X);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d; k++)
            X[i * d + k] = M[(rows - n + i) * cols + 2 + k];
    free(M);
    return X;
}

/* The Sinkhorn flow of 300 tokens: PM and dense trajectories agree to the
 * PM tolerance; the file header records the grid, window and wrap. */
Test(cli_pm, flow_matches_dense)
{
    const size_t n = 300, d = 2;
    char out[4096], args[512];
    /* per-process names: several checkouts may run the suite at once */
    char paths[2][64];
    snprintf(paths[0], sizeof paths[0], "/tmp/af_cli_pm_dense.%ld.dat", (long)getpid());
    snprintf(paths[1], sizeof paths[1], "/tmp/af_cli_pm_pm.%ld.dat", (long)getpid());
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "flow --quiet --init gaussian --n %zu --d %zu --norm sinkhorn "
                 "--scores l2 --eps 0.2 --T 0.1 --dt 0.02 --tol 1e-11 --out %s %s", n, d, paths[k],
                 k ? "--backend pm --pm-tol 1e-10" : "");
        cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s", out);
    }
    double *Xd = read_last_block(paths[0], n, d), *Xp = read_last_block(paths[1], n, d);
    const double e = fx_max_abs_diff(n * d, Xd, Xp);
    cr_expect(e < 1e-9, "PM vs dense after 5 RK4 steps: %.3g", e);
    FILE *fp = fopen(paths[1], "r");
    char line[512];
    int grid = 0, window = 0, wrap = 0;
    while (fgets(line, sizeof line, fp) && line[0] == '#') {
        grid |= strncmp(line, "# pm_grid: ", 11) == 0;
        window |= strncmp(line, "# pm_window: gaussian", 21) == 0;
        wrap |= strncmp(line, "# pm_wrap_mass: ", 16) == 0;
    }
    fclose(fp);
    cr_expect(grid && window && wrap, "metadata: grid %d window %d wrap %d", grid, window, wrap);
    free(Xd);
    free(Xp);
    unlink(paths[0]);
    unlink(paths[1]);
}

/* attention --backend pm: the written marginals are 1 to the tolerance. */
Test(cli_pm, attention_marginals)
{
    char out[4096];
    char path[64];
    snprintf(path, sizeof path, "/tmp/af_cli_pm_att.%ld.dat", (long)getpid());
    char args[512];
    snprintf(args, sizeof args, "attention --init gaussian --n 400 --d 3 --norm sinkhorn --scores "
             "l2 --eps 0.5 --backend pm --pm-tol 1e-7 --out %s", path);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s", out);
    double *M;
    size_t rows, cols;
    cr_assert_eq(af_read_matrix(path, &M, &rows, &cols), AF_SUCCESS, "%s", af_last_error());
    cr_assert_eq(rows, 400);
    cr_assert_eq(cols, 5);
    for (size_t i = 0; i < rows; i++) {
        cr_expect(fabs(M[i * 5 + 3] - 1) < 1e-6 && fabs(M[i * 5 + 4] - 1) < 1e-6,
                  "token %zu: row %.12g col %.12g", i, M[i * 5 + 3], M[i * 5 + 4]);
        cr_expect_eq(M[i * 5 + 1], M[i * 5 + 2]); /* symmetric update: f = g */
    }
    free(M);
    unlink(path);
}
