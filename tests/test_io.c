/* Readers and atomic writers. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "attnflow/io.h"
#include "support/fixtures.h"

Test(io, reads_comments_blank_lines_and_numbers)
{
    const char *p = fx_temp_file("# header\n1 2.5 -3e-2\n\n  4\t5 6 # trailing\n# end\n");
    double *a;
    size_t r, c;
    cr_assert_eq(af_read_matrix(p, &a, &r, &c), AF_SUCCESS);
    cr_expect_eq(r, 2);
    cr_expect_eq(c, 3);
    double want[6] = {1, 2.5, -3e-2, 4, 5, 6};
    cr_expect_eq(memcmp(a, want, sizeof want), 0);
    free(a);
    unlink(p);
}

Test(io, rejects_ragged_nan_garbage_empty_missing)
{
    struct { const char *text; af_status st; const char *msg; } cases[] = {
        {"1 2\n3\n", AF_EFORMAT, ":2: ragged rows"},
        {"1 2\nnan 3\n", AF_EDOM, ":2: column 1: value is not finite"},
        {"1 inf\n", AF_EDOM, "not finite"},
        {"1 x2\n", AF_EFORMAT, "not a number: 'x2'"},
        {"1 2abc\n", AF_EFORMAT, "not a number"},
        {"# only comments\n\n", AF_EFORMAT, "no data"},
        {"", AF_EFORMAT, "no data"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *p = fx_temp_file(cases[k].text);
        double *a = NULL;
        size_t r, c;
        cr_expect_eq(af_read_matrix(p, &a, &r, &c), cases[k].st, "case %zu", k);
        cr_expect_neq(strstr(af_last_error(), cases[k].msg), NULL, "case %zu: '%s'", k, af_last_error());
        cr_expect_null(a);
        unlink(p);
    }
    double *a;
    size_t r, c;
    cr_expect_eq(af_read_matrix("/nonexistent/tokens.txt", &a, &r, &c), AF_EIO);
    cr_expect_neq(strstr(af_last_error(), "/nonexistent/tokens.txt: cannot open"), NULL);
}

Test(io, atomic_file_commit_and_abort)
{
    char path[] = "/tmp/af_io_atomic_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    af_file *f;
    cr_assert_eq(af_file_open(&f, path), AF_SUCCESS);
    af_write_header(af_file_stream(f), "attnflow test");
    fprintf(af_file_stream(f), "1 2\n");
    cr_expect_neq(access(path, F_OK), 0, "nothing at the target before commit");
    af_file_abort(f);
    cr_expect_neq(access(path, F_OK), 0, "nothing after abort");
    cr_assert_eq(af_file_open(&f, path), AF_SUCCESS);
    af_write_header(af_file_stream(f), "attnflow test");
    double m[4] = {1.0 / 3.0, -2, 1e-300, 4};
    af_write_matrix(af_file_stream(f), 2, 2, m);
    cr_assert_eq(af_file_commit(f), AF_SUCCESS);
    struct stat sb;
    mode_t mask = umask(0);
    umask(mask);
    cr_assert_eq(stat(path, &sb), 0);
    cr_expect_eq(sb.st_mode & 0777, 0666 & ~mask, "mode %o like a plain fopen", sb.st_mode & 0777);
    double *a;
    size_t r, c;
    cr_assert_eq(af_read_matrix(path, &a, &r, &c), AF_SUCCESS);
    cr_expect_eq(memcmp(a, m, sizeof m), 0, "'%%.17g' round-trips doubles exactly");
    free(a);
    unlink(path);
    cr_expect_eq(af_file_open(&f, "/nonexistent/dir/out.txt"), AF_EIO);
}

Test(io, error_message_may_quote_the_previous_one)
{
    /* "epoch 1, step 2: %s" with af_last_error() as the argument: the new
     * message must contain the old one once, not a garbled copy of itself */
    af_error(AF_ENUMERIC, "loss (diverged?)");
    af_error(AF_ENUMERIC, "epoch %d, step %d: %s", 1, 2, af_last_error());
    cr_expect_str_eq(af_last_error(), "epoch 1, step 2: loss (diverged?)");
}

/* Writes len bytes (NULs included) to a fresh temporary file. */
static const char *temp_bytes(const char *b, size_t len)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/af_io_bytes_XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, b, len), (ssize_t)len);
    close(fd);
    return path;
}

Test(io, nul_and_control_bytes_are_errors_with_line_and_column)
{
    static const struct { const char *b; size_t len; const char *msg; } cases[] = {
        {"1 2\n3 4\0 5\n", 11, ":2:4: NUL byte"},
        {"1 2\n3\0", 6, ":2:2: NUL byte"},
        {"1 \x01 2\n", 6, ":1:3: control byte 0x01"},
        {"# comment \x1b[31m\n1 2\n", 20, ":1:11: control byte 0x1b"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *p = temp_bytes(cases[k].b, cases[k].len);
        double *a = NULL;
        size_t r, c;
        cr_expect_eq(af_read_matrix(p, &a, &r, &c), AF_EFORMAT, "case %zu", k);
        cr_expect_neq(strstr(af_last_error(), cases[k].msg), NULL, "case %zu: %s", k,
                      af_last_error());
        double *t = NULL;
        cr_expect_eq(af_read_grid_table(p, &t, &r, &c), AF_EFORMAT, "grid case %zu", k);
        cr_expect_neq(strstr(af_last_error(), cases[k].msg), NULL, "grid case %zu: %s", k,
                      af_last_error());
        unlink(p);
    }
}

Test(io, grid_table_rejects_non_finite_coordinates)
{
    const char *texts[] = {"0 1\nnan 1\n1 1\n", "0 0 1\n0 inf 1\n", "-inf 1\n0 1\n"};
    for (size_t k = 0; k < 3; k++) {
        const char *p = fx_temp_file(texts[k]);
        double *t = NULL;
        size_t r, c;
        cr_expect_eq(af_read_grid_table(p, &t, &r, &c), AF_EDOM, "case %zu", k);
        cr_expect_neq(strstr(af_last_error(), "coordinate"), NULL, "%s", af_last_error());
        cr_expect_neq(strstr(af_last_error(), "not finite"), NULL, "%s", af_last_error());
        unlink(p);
    }
    /* the last block of a heat file, with its columns line, still reads */
    const char *p = fx_temp_file("# columns: x rho exact\n# t: 0\n0 1 1\n1 2 2\n\n\n# t: 1\n"
                                 "0 3 3\n1 4 4\n2 5 5\n");
    double *t = NULL;
    size_t r, c;
    cr_assert_eq(af_read_grid_table(p, &t, &r, &c), AF_SUCCESS, "%s", af_last_error());
    cr_expect_eq(r, 3);
    cr_expect_eq(c, 2);
    cr_expect_eq(t[5], 5);
    free(t);
    unlink(p);
}
