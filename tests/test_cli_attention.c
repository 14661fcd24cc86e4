/* The attention command as a user runs it: outputs, formats, exit codes and
 * no half-written files on bad input. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "attnflow/io.h"
#include "attnflow/normalize.h"
#include "support/fixtures.h"

static const char *tokens_file(void)
{
    return fx_temp_file("# four tokens\n0.1 0.2\n-0.3 0.5\n1.0 -0.7\n0.4 0.4\n");
}

Test(cli_attention, sinkhorn_matrix_file_is_doubly_stochastic_and_logged)
{
    const char *tok = tokens_file();
    char out[4096], args[1024], mat[] = "/tmp/af_cli_K_XXXXXX", log[] = "/tmp/af_cli_L_XXXXXX";
    close(mkstemp(mat));
    close(mkstemp(log));
    snprintf(args, sizeof args, "attention --tokens %s --norm sinkhorn --tol 1e-12 --out %s --log %s", tok, mat, log);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s", out);
    cr_expect_neq(strstr(out, "n=4 d=2 norm=sinkhorn path="), NULL, "%s", out);
    cr_expect_neq(strstr(out, "seconds="), NULL);
    double *K, *L;
    size_t r, c, lr, lc;
    cr_assert_eq(af_read_matrix(mat, &K, &r, &c), AF_SUCCESS);
    cr_expect_eq(r, 4);
    cr_expect_eq(c, 4);
    double re, ce;
    fx_marginal_errors(4, 4, K, &re, &ce);
    cr_expect_leq(fmax(re, ce), 1e-12);
    cr_assert_eq(af_read_matrix(log, &L, &lr, &lc), AF_SUCCESS);
    cr_expect_eq(lc, 3, "iter row_err col_err");
    cr_expect_eq(L[(lr - 1) * 3], (double)lr, "one line per normalisation");
    FILE *fp = fopen(mat, "r");
    char line[512];
    cr_assert(fgets(line, sizeof line, fp));
    cr_expect_eq(strncmp(line, "# attnflow ", 11), 0);
    cr_assert(fgets(line, sizeof line, fp));
    cr_expect_eq(strncmp(line, "# command: attnflow attention --tokens", 38), 0, "%s", line);
    fclose(fp);
    free(K); free(L);
    unlink(mat); unlink(log); unlink(tok);
}

Test(cli_attention, iters_one_is_softmax_exactly)
{
    const char *tok = tokens_file();
    char out[4096], args[1024], a[] = "/tmp/af_cli_A_XXXXXX", b[] = "/tmp/af_cli_B_XXXXXX";
    close(mkstemp(a));
    close(mkstemp(b));
    snprintf(args, sizeof args, "attention --tokens %s --iters 1 --out %s", tok, a);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s", out);
    snprintf(args, sizeof args, "attention --tokens %s --norm softmax --out %s", tok, b);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s", out);
    double *Ka, *Kb;
    size_t r, c;
    cr_assert_eq(af_read_matrix(a, &Ka, &r, &c), AF_SUCCESS);
    cr_assert_eq(af_read_matrix(b, &Kb, &r, &c), AF_SUCCESS);
    cr_expect_eq(memcmp(Ka, Kb, r * c * sizeof *Ka), 0);
    /* and it is the SoftMax of the dot scores */
    double X[8] = {0.1, 0.2, -0.3, 0.5, 1.0, -0.7, 0.4, 0.4}, C[16], S[16];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            C[i * 4 + j] = X[2 * i] * X[2 * j] + X[2 * i + 1] * X[2 * j + 1];
    af_softmax(4, 4, C, S);
    cr_expect_leq(fx_max_abs_diff(16, S, Ka), 1e-16);
    free(Ka); free(Kb);
    unlink(a); unlink(b); unlink(tok);
}

Test(cli_attention, bad_input_fails_cleanly_without_output)
{
    char out[4096], args[1024], dest[] = "/tmp/af_cli_bad_XXXXXX";
    close(mkstemp(dest));
    unlink(dest);
    struct { const char *text; const char *opts; int code; const char *msg; } cases[] = {
        {"1 2\nnan 3\n", "", 1, "not finite"},
        {"1 2\ninf 3\n", "", 1, "not finite"},
        {"1 2\n3\n", "", 1, "ragged rows"},
        {"", "", 1, "no data"},
        {"1 2\n3 4\n", "--eps 0", 1, "--eps: must be > 0"},
        {"1 2\n3 4\n", "--eps -1", 1, "--eps: must be > 0"},
        {"1 2\n3 4\n", "--eps abc", 1, "not a number"},
        {"1 2\n3 4\n", "--norm bogus", 1, "not one of softmax|sinkhorn"},
        {"1 2\n3 4\n", "--A /nonexistent_A", 1, "cannot open"},
        {"1 2\n3 4\n", "--bogus 1", 2, "unknown option"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *tok = fx_temp_file(cases[k].text);
        snprintf(args, sizeof args, "attention --tokens %s %s --out %s", tok, cases[k].opts, dest);
        int code = fx_run_cli(AF_CLI, args, out, sizeof out);
        cr_expect_eq(code, cases[k].code, "case %zu: exit %d: %s", k, code, out);
        cr_expect_eq(strncmp(out, "attnflow: ", 10), 0, "case %zu: %s", k, out);
        cr_expect_neq(strstr(out, cases[k].msg), NULL, "case %zu: %s", k, out);
        cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
        cr_expect_neq(access(dest, F_OK), 0, "case %zu left %s behind", k, dest);
        unlink(tok);
    }
    /* an A of the wrong size */
    const char *tok = fx_temp_file("1 2\n3 4\n");
    const char *A = fx_temp_file("1 0 0\n0 1 0\n0 0 1\n");
    snprintf(args, sizeof args, "attention --tokens %s --A %s --out %s", tok, A, dest);
    cr_expect_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 1);
    cr_expect_neq(strstr(out, "expected 2 x 2"), NULL, "%s", out);
    cr_expect_neq(access(dest, F_OK), 0);
    /* missing token file */
    snprintf(args, sizeof args, "attention --tokens /nonexistent/tok.txt --out %s", dest);
    cr_expect_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 1);
    cr_expect_neq(access(dest, F_OK), 0);
    unlink(tok); unlink(A);
}
