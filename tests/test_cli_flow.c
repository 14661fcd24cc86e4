/* The flow command as a user runs it: exit codes, one-line messages and no
 * half-written files on bad input; trajectory and observables formats
 * (columns line, blocks, saved times) checked against the library. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include "attnflow/flow.h"
#include "attnflow/observables.h"
#include "support/fixtures.h"

static void fresh_path(char *tmpl)
{
    int fd = mkstemp(tmpl);
    cr_assert_geq(fd, 0);
    close(fd);
    unlink(tmpl); /* only the name: the command must create (or not leave) it */
}

Test(cli_flow, bad_input_fails_cleanly_without_output)
{
    char out[4096], args[1024], traj[] = "/tmp/af_cli_flow_XXXXXX", obs[] = "/tmp/af_cli_obs_XXXXXX";
    fresh_path(traj);
    fresh_path(obs);
    char good[64], v3[64];
    snprintf(good, sizeof good, "%s", fx_temp_file("1 2\n3 4\n0 1\n"));
    snprintf(v3, sizeof v3, "%s", fx_temp_file("1 0 0\n0 1 0\n0 0 1\n"));
    struct { const char *text; const char *opts; int code; const char *msg; } cases[] = {
        {"1 2\n3\n", "", 1, "ragged rows"},
        {"1 2\nnan 3\n", "", 1, "not finite"},
        {NULL, "--dt 0", 1, "--dt: must be > 0"},
        {NULL, "--T -1", 1, "--T: must be >= 0"},
        {NULL, "--T 1e10 --dt 1e-10", 1, "step count finite and at most"},
        {NULL, "--V /nonexistent_V", 1, "cannot open"},
        {NULL, "--V V3", 1, "expected 2 x 2"},
        {NULL, "--norm bogus", 1, "not one of softmax|sinkhorn"},
        {NULL, "--bogus 1", 2, "unknown option"},
        {NULL, "--V V3 --value 2", 2, "exclude each other"},
        {NULL, "--usa --norm sinkhorn", 2, "SoftMax variant"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char tok[64];
        snprintf(tok, sizeof tok, "%s", cases[k].text ? fx_temp_file(cases[k].text) : good);
        char opts[256];
        const char *v = strstr(cases[k].opts, "V3");
        if (v) /* put the real path of the 3 x 3 matrix in */
            snprintf(opts, sizeof opts, "%.*s%s%s", (int)(v - cases[k].opts), cases[k].opts, v3,
                     v + 2);
        else
            snprintf(opts, sizeof opts, "%s", cases[k].opts);
        snprintf(args, sizeof args, "flow --quiet --tokens %s %s --out %s --observables %s", tok,
                 opts, traj, obs);
        int code = fx_run_cli(AF_CLI, args, out, sizeof out);
        cr_expect_eq(code, cases[k].code, "case %zu: exit %d: %s", k, code, out);
        cr_expect_eq(strncmp(out, "attnflow: ", 10), 0, "case %zu: %s", k, out);
        cr_expect_neq(strstr(out, cases[k].msg), NULL, "case %zu: %s", k, out);
        cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "case %zu: one line: %s", k, out);
        cr_expect_neq(access(traj, F_OK), 0, "case %zu left %s behind", k, traj);
        cr_expect_neq(access(obs, F_OK), 0, "case %zu left %s behind", k, obs);
        if (cases[k].text)
            unlink(tok);
    }
    /* generated clouds: --n 0, and a missing token file */
    const char *more[][3] = {{"--init gaussian --n 0 --d 2", "--n: must be >= 1", ""},
                             {"--tokens /nonexistent/tok.txt", "cannot open", ""}};
    for (size_t k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "flow --quiet %s --out %s --observables %s", more[k][0], traj, obs);
        int code = fx_run_cli(AF_CLI, args, out, sizeof out);
        cr_expect_eq(code, 1, "%s: exit %d: %s", more[k][0], code, out);
        cr_expect_eq(strncmp(out, "attnflow: ", 10), 0, "%s", out);
        cr_expect_neq(strstr(out, more[k][1]), NULL, "%s", out);
        cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
        cr_expect_neq(access(traj, F_OK), 0);
        cr_expect_neq(access(obs, F_OK), 0);
    }
    unlink(good);
    unlink(v3);
}

/* Parses a trajectory file into blocks of n rows "t i x_1 .. x_d"; checks
 * that blocks are separated by exactly two blank lines. Returns the number
 * of blocks; t[b] and X[b * n * d ...] receive the data. */
static size_t read_blocks(const char *path, size_t n, size_t d, size_t cap, double *t, double *X,
                          int *saw_columns)
{
    FILE *fp = fopen(path, "r");
    cr_assert_not_null(fp, "%s", path);
    char line[1024];
    size_t nb = 0, row = 0, blanks = 0;
    *saw_columns = 0;
    while (fgets(line, sizeof line, fp)) {
        if (line[0] == '#') {
            cr_expect_eq(nb + row, 0, "comment after the data: %s", line);
            if (strcmp(line, "# columns: t i x1 x2\n") == 0)
                *saw_columns = 1;
            continue;
        }
        if (line[0] == '\n') {
            blanks++;
            continue;
        }
        if (row == 0 && nb > 0)
            cr_expect_eq(blanks, 2, "block %zu: %zu blank lines before it", nb, blanks);
        cr_expect(row == 0 || blanks == 0, "blank line inside block %zu", nb);
        blanks = 0;
        cr_assert_lt(nb, cap, "too many blocks");
        char *s = line, *e;
        double tt = strtod(s, &e);
        cr_assert_neq(e, s, "%s", line);
        double idx = strtod(e, &s);
        cr_expect_eq(idx, (double)row, "token index: %s", line);
        if (row == 0)
            t[nb] = tt;
        else
            cr_expect_eq(tt, t[nb], "time within a block: %s", line);
        for (size_t k = 0; k < d; k++) {
            X[(nb * n + row) * d + k] = strtod(s, &e);
            cr_assert_neq(e, s, "%s", line);
            s = e;
        }
        if (++row == n) {
            row = 0;
            nb++;
        }
    }
    cr_expect_eq(row, 0, "last block incomplete");
    fclose(fp);
    return nb;
}

Test(cli_flow, trajectory_and_observables_match_the_library)
{
    /* T = 0.25 is no multiple of dt = 0.1: steps 0.1, 0.1, 0.05; with
     * --save-every 2 the saved times are 0, 0.2 (step 2) and T (last step). */
    enum { n = 3, d = 2, cap = 8 };
    const double X0[n * d] = {1, 2, 3, 4, 0, 1};
    char tok[64], out[4096], args[1024], traj[] = "/tmp/af_cli_flow_XXXXXX",
                                         obs[] = "/tmp/af_cli_obs_XXXXXX";
    snprintf(tok, sizeof tok, "%s", fx_temp_file("1 2\n3 4\n0 1\n"));
    fresh_path(traj);
    fresh_path(obs);
    snprintf(args, sizeof args, "flow --quiet --tokens %s --T 0.25 --dt 0.1 --save-every 2 "
                                "--out %s --observables %s", tok, traj, obs);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s", out);

    /* the library's RK4 steps, as the reference */
    const double times[] = {0, 0.2, 0.25};
    double ref[3][n * d], X[n * d];
    memcpy(X, X0, sizeof X);
    memcpy(ref[0], X0, sizeof X);
    af_flow_params p = af_flow_params_default(n, d);
    af_flow_ws *ws = af_flow_alloc(&p);
    cr_assert_not_null(ws, "%s", af_last_error());
    const double hs[] = {0.1, 0.1, 0.05};
    for (int s = 0; s < 3; s++) {
        cr_assert_eq(af_flow_step(ws, X, hs[s]), AF_SUCCESS, "%s", af_last_error());
        if (s >= 1)
            memcpy(ref[s], X, sizeof X);
    }
    af_flow_free(ws);

    double t[cap], B[cap * n * d];
    int cols;
    size_t nb = read_blocks(traj, n, d, cap, t, B, &cols);
    cr_expect(cols, "no '# columns: t i x1 x2' line");
    cr_assert_eq(nb, 3, "saved blocks: %zu", nb);
    for (size_t b = 0; b < nb; b++) {
        cr_expect(fabs(t[b] - times[b]) <= 1e-15, "block %zu at t = %.17g", b, t[b]);
        cr_expect_leq(fx_max_abs_diff(n * d, B + b * n * d, ref[b]), 1e-13, "block %zu", b);
    }
    cr_expect_eq(t[2], 0.25, "the last block is at T exactly");
    cr_expect_eq(memcmp(B, X0, sizeof X0), 0, "t = 0 block is the input");

    /* observables: a '# columns:' line naming the fields, one line per saved
     * time; mean and variance recomputed from the trajectory blocks */
    FILE *fp = fopen(obs, "r");
    cr_assert_not_null(fp);
    char line[2048];
    int ocols = 0;
    size_t nl = 0;
    while (fgets(line, sizeof line, fp)) {
        if (line[0] == '#') {
            static const char want[] = "# columns: t mean_1 mean_2 var energy colsum_err "
                                       "rank_res clusters min_dist max_ip step sk_iters evals\n";
            if (strcmp(line, want) == 0)
                ocols = 1;
            continue;
        }
        cr_assert_lt(nl, 3, "too many observable lines");
        double v[16];
        char *s = line, *e;
        size_t nv = 0;
        for (; nv < 16; nv++, s = e) {
            v[nv] = strtod(s, &e);
            if (e == s)
                break;
        }
        cr_expect_eq(nv, 13, "fields: %s", line);
        const double *Xb = B + nl * n * d;
        double mean[d];
        af_obs_mean(n, d, Xb, mean);
        cr_expect(fabs(v[0] - times[nl]) <= 1e-15, "line %zu: t = %.17g", nl, v[0]);
        cr_expect(fabs(v[1] - mean[0]) <= 1e-14 && fabs(v[2] - mean[1]) <= 1e-14, "line %zu", nl);
        cr_expect(fabs(v[3] - af_obs_variance(n, d, Xb)) <= 1e-14, "line %zu var", nl);
        cr_expect_eq(v[10], (double)(nl == 0 ? 0 : nl == 1 ? 2 : 3), "line %zu: step", nl);
        nl++;
    }
    fclose(fp);
    cr_expect(ocols, "no '# columns:' line in the observables file");
    cr_expect_eq(nl, 3);
    unlink(traj);
    unlink(obs);
    unlink(tok);
}

/* A blow-up mid-run (RK4, W_V = 200 I) keeps the complete files up to the
 * last saved time, says so in their header and exits 3 (docs/robustness.md). */
Test(cli_flow, blow_up_keeps_the_saved_steps_with_a_status_line)
{
    char out[4096], args[1024], traj[] = "/tmp/af_cli_flow_XXXXXX", obs[] = "/tmp/af_cli_obs_XXXXXX";
    fresh_path(traj);
    fresh_path(obs);
    const char *tok = fx_temp_file("1 2\n3 4\n0 1\n");
    char tokp[64];
    snprintf(tokp, sizeof tokp, "%s", tok);
    snprintf(args, sizeof args, "flow --quiet --tokens %s --value 200 --T 50 --dt 0.5 --out %s "
             "--observables %s", tokp, traj, obs);
    int code = fx_run_cli(AF_CLI, args, out, sizeof out);
    cr_expect_eq(code, 3, "exit %d: %s", code, out);
    cr_expect_eq(strncmp(out, "attnflow: stopped at t = ", 25), 0, "%s", out);
    cr_expect_neq(strstr(out, "not finite"), NULL, "%s", out);
    cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
    const char *files[2] = {traj, obs};
    for (int k = 0; k < 2; k++) {
        FILE *fp = fopen(files[k], "r");
        cr_assert_not_null(fp, "%s not kept", files[k]);
        char line[1024];
        cr_assert_not_null(fgets(line, sizeof line, fp));
        cr_assert_not_null(fgets(line, sizeof line, fp));
        cr_expect_eq(strncmp(line, "# status: stopped at t = ", 25), 0, "%s", line);
        cr_expect_neq(strstr(line, "step "), NULL, "%s", line);
        fclose(fp);
    }
    static double t[256], X[256 * 3 * 2];
    int cols;
    size_t nb = read_blocks(traj, 3, 2, 256, t, X, &cols);
    cr_expect(nb >= 2 && nb < 101, "%zu blocks", nb);
    for (size_t b = 0; b < nb; b++)
        cr_expect_eq(t[b], 0.5 * (double)b, "block %zu at t = %g", b, t[b]);
    for (size_t k = 0; k < nb * 6; k++)
        cr_expect(isfinite(X[k]), "saved coordinate %zu not finite", k);
    unlink(traj);
    unlink(obs);
    unlink(tokp);
}

/* SIGINT during a long flow: a complete, loadable trajectory up to the
 * last saved step with '# status: interrupted', exit 3, no temporary. */
Test(cli_flow, sigint_keeps_a_complete_trajectory_and_no_temporary)
{
    char dir[] = "/tmp/af_cli_sig_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char traj[128], obs[128], cmd[1024];
    snprintf(traj, sizeof traj, "%s/tr.dat", dir);
    snprintf(obs, sizeof obs, "%s/obs.dat", dir);
    snprintf(cmd, sizeof cmd, "%s flow --quiet --init gaussian --n 40 --d 2 --T 1e6 --dt 0.01 "
             "--save-every 5 --out %s --observables %s 2>%s/err & pid=$!; sleep 1; "
             "kill -INT $pid; wait $pid", AF_CLI, traj, obs, dir);
    int st = system(cmd);
    cr_assert(WIFEXITED(st), "status %d", st);
    cr_expect_eq(WEXITSTATUS(st), 3, "exit %d", WEXITSTATUS(st));
    char line[1024];
    snprintf(line, sizeof line, "%s/err", dir);
    FILE *fe = fopen(line, "r");
    cr_assert_not_null(fe);
    cr_assert_not_null(fgets(line, sizeof line, fe));
    cr_expect_eq(strncmp(line, "attnflow: interrupted", 21), 0, "%s", line);
    cr_expect_null(fgets(line, sizeof line, fe), "a second stderr line: %s", line);
    fclose(fe);
    FILE *fp = fopen(traj, "r");
    cr_assert_not_null(fp);
    cr_assert_not_null(fgets(line, sizeof line, fp));
    cr_assert_not_null(fgets(line, sizeof line, fp));
    cr_expect_str_eq(line, "# status: interrupted\n");
    fclose(fp);
    /* loadable: whole blocks of 40 tokens (read_blocks checks the layout) */
    static double t[4096], X[4096 * 40 * 2];
    int cols;
    size_t nb = read_blocks(traj, 40, 2, 4096, t, X, &cols);
    cr_expect_geq(nb, 1);
    cr_expect(cols, "no columns line");
    /* no temporary left: the directory holds exactly the three files */
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 3", dir);
    cr_expect_eq(system(cmd), 0, "temporary files left in %s", dir);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}
