/* --backend on the CLI: tiled and dense give the same runs, the choice and
 * its memory estimate are in the '#' header, outputs that need the n x n
 * matrix are refused on tiled (one line, exit 2, no file), unknown names
 * exit 1. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "support/fixtures.h"

static void fresh_path(char *tmpl)
{
    int fd = mkstemp(tmpl);
    cr_assert(fd >= 0);
    close(fd);
    unlink(tmpl);
}

/* The value after `key=` in a summary line. */
static double field(const char *out, const char *key)
{
    const char *p = strstr(out, key);
    cr_assert_not_null(p, "no %s in: %s", key, out);
    return strtod(p + strlen(key), NULL);
}

/* 1 if a line of the file starts with prefix (and contains `also`). */
static int file_has_line(const char *path, const char *prefix, const char *also)
{
    FILE *fp = fopen(path, "r");
    cr_assert_not_null(fp, "%s", path);
    char line[512];
    int found = 0;
    while (fgets(line, sizeof line, fp))
        found |= strncmp(line, prefix, strlen(prefix)) == 0 && (!also || strstr(line, also));
    fclose(fp);
    return found;
}

Test(cli_backend, flow_tiled_equals_dense)
{
    const char *common = "flow --init gaussian --n 120 --d 2 --seed 3 --norm sinkhorn --scores l2 "
                         "--eps 0.2 --T 0.05 --dt 0.01 --integrator heun --quiet";
    char args[512], dense[512], tiled[512];
    snprintf(args, sizeof args, "%s --backend dense", common);
    cr_assert_eq(fx_run_cli(AF_CLI, args, dense, sizeof dense), 0, "%s", dense);
    snprintf(args, sizeof args, "%s --backend tiled", common);
    cr_assert_eq(fx_run_cli(AF_CLI, args, tiled, sizeof tiled), 0, "%s", tiled);
    cr_expect_neq(strstr(tiled, "backend=tiled"), NULL, "%s", tiled);
    cr_expect_eq(field(dense, "var="), field(tiled, "var="), "%s\n%s", dense, tiled);
    cr_expect_eq(field(dense, "sinkhorn_iters="), field(tiled, "sinkhorn_iters="));
}

Test(cli_backend, header_names_the_choice_and_memory)
{
    char out[512], traj[] = "/tmp/af_backend_XXXXXX", args[512];
    fresh_path(traj);
    snprintf(args, sizeof args, "flow --init gaussian --n 40 --T 0.02 --norm sinkhorn --quiet "
                                "--out %s", traj);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s", out);
    int found = file_has_line(traj, "# backend: dense, attention workspace ",
                              " MB (auto: dense fits the budget)");
    unlink(traj);
    cr_expect(found, "no '# backend: dense, ... MB (auto: ...)' line in %s", traj);
}

Test(cli_backend, outputs_needing_k_are_refused_on_tiled)
{
    char K[] = "/tmp/af_backend_K_XXXXXX";
    fresh_path(K);
    char outs[4][128];
    snprintf(outs[0], sizeof outs[0], "--out %s", K);
    snprintf(outs[1], sizeof outs[1], "--sharp-rate");
    snprintf(outs[2], sizeof outs[2], "--bound exact");
    snprintf(outs[3], sizeof outs[3], "--path scaling");
    for (int k = 0; k < 4; k++) {
        char args[1024], out[512];
        snprintf(args, sizeof args, "attention --init gaussian --n 30 --backend tiled %s", outs[k]);
        int code = fx_run_cli(AF_CLI, args, out, sizeof out);
        cr_expect_eq(code, 2, "%s: exit %d: %s", outs[k], code, out);
        cr_expect_eq(strncmp(out, "attnflow: ", 10), 0, "%s", out);
        cr_expect_neq(strstr(out, "tiled backend never stores"), NULL, "%s", out);
        cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
        cr_expect_neq(access(K, F_OK), 0, "%s left %s behind", outs[k], K);
    }
    /* auto writes K on the dense backend */
    char args[512], out[512];
    snprintf(args, sizeof args, "attention --init gaussian --n 30 --out %s", K);
    cr_expect_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s", out);
    cr_expect_eq(access(K, F_OK), 0);
    unlink(K);
}

Test(cli_backend, attention_tiled_log_equals_dense)
{
    char out_d[512], out_t[512];
    const char *common = "attention --init gaussian --n 80 --scores l2 --eps 0.3 --tol 1e-11";
    char args[512];
    snprintf(args, sizeof args, "%s --backend dense", common);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out_d, sizeof out_d), 0, "%s", out_d);
    snprintf(args, sizeof args, "%s --backend tiled", common);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out_t, sizeof out_t), 0, "%s", out_t);
    cr_expect_eq(field(out_d, "iters="), field(out_t, "iters="), "%s\n%s", out_d, out_t);
    cr_expect(field(out_t, "row_err=") <= 1e-11 && field(out_t, "col_err=") <= 1e-11, "%s", out_t);
}

Test(cli_backend, unknown_backend_is_one_line_exit_1)
{
    const char *cmds[] = {"flow --n 10", "attention --n 10", "compare --n 10",
                          "gradflow --n 10"};
    for (size_t k = 0; k < 4; k++) {
        char args[256], out[512];
        snprintf(args, sizeof args, "%s --backend fast", cmds[k]);
        int code = fx_run_cli(AF_CLI, args, out, sizeof out);
        cr_expect_eq(code, 1, "%s: exit %d: %s", cmds[k], code, out);
        cr_expect_neq(strstr(out, "attnflow: --backend: 'fast' is not one of auto|dense|tiled"),
                      NULL, "%s", out);
        cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
    }
}

Test(cli_backend, precision_values_and_header)
{
    const char *bad[] = {"flow --n 10 --precision half", "attention --n 10 --precision float",
                         "flow --n 10 --precision single --backend pm"};
    for (size_t k = 0; k < 3; k++) {
        char out[512];
        int code = fx_run_cli(AF_CLI, bad[k], out, sizeof out);
        cr_expect_eq(code, 2, "%s: exit %d: %s", bad[k], code, out);
        cr_expect_eq(strncmp(out, "attnflow: --precision", 21), 0, "%s", out);
        cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
    }
    char out[512], traj[] = "/tmp/af_backend_prec_XXXXXX", args[512];
    fresh_path(traj);
    snprintf(args, sizeof args, "flow --init gaussian --n 40 --T 0.02 --precision single --quiet "
                                "--out %s", traj);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s", out);
    int found = file_has_line(traj, "# precision: single (float32 exps", NULL);
    unlink(traj);
    cr_expect(found, "no '# precision: single' line");
}
