/* Token sources: a file, or an initial cloud drawn from a seeded gsl_rng. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gsl/gsl_rng.h>
#include "alloc.h"
#include "attnflow/init.h"
#include "attnflow/io.h"
#include "tokens.h"

/* --mean: a number, d numbers or a file of d numbers. */
static int read_mean(const cli_args *a, size_t d, double **mean)
{
    const char *v = cli_str(a, "mean", NULL);
    *mean = NULL;
    if (!v)
        return 0;
    double *m = malloc(d * sizeof *m);
    if (!m)
        return cli_fail(CLI_EINPUT, "out of memory");
    long c = cli_parse_list(v, m, d);
    if (c == 1) {
        for (size_t k = 1; k < d; k++)
            m[k] = m[0];
    } else if (c < 0) {
        double *f;
        size_t r, cols;
        af_status st = af_read_matrix(v, &f, &r, &cols);
        if (st) {
            free(m);
            return cli_fail_status(st);
        }
        if (r * cols != d) {
            free(f);
            free(m);
            return cli_fail(CLI_EINPUT, "--mean: %s holds %zu numbers, expected d = %zu", v,
                            r * cols, d);
        }
        memcpy(m, f, d * sizeof *m);
        free(f);
    } else if ((size_t)c != d) {
        free(m);
        return cli_fail(CLI_EINPUT, "--mean: %ld numbers given, expected 1 or d = %zu", c, d);
    }
    *mean = m;
    return 0;
}

/* --cov: s (s I), d numbers (diagonal) or a d x d file. */
static int read_cov(const cli_args *a, size_t d, double **cov)
{
    const char *v = cli_str(a, "cov", NULL);
    *cov = NULL;
    if (!v)
        return 0;
    double *S = cli_calloc(d, d, sizeof *S), *diag = malloc(d * sizeof *diag);
    if (!S || !diag) {
        free(S);
        free(diag);
        return cli_fail(CLI_EINPUT, "out of memory");
    }
    long c = cli_parse_list(v, diag, d);
    if (c == 1 || (c > 1 && (size_t)c == d)) {
        for (size_t k = 0; k < d; k++)
            S[k * d + k] = diag[c == 1 ? 0 : k];
    } else if (c < 0) {
        double *f;
        size_t r, cols;
        af_status st = af_read_matrix(v, &f, &r, &cols);
        if (st) {
            free(S);
            free(diag);
            return cli_fail_status(st);
        }
        if (r != d || cols != d) {
            free(f);
            free(S);
            free(diag);
            return cli_fail(CLI_EINPUT, "--cov: %s is %zu x %zu, expected %zu x %zu", v, r, cols,
                            d, d);
        }
        memcpy(S, f, d * d * sizeof *S);
        free(f);
    } else {
        free(S);
        free(diag);
        return cli_fail(CLI_EINPUT, "--cov: %ld numbers given, expected 1 or d = %zu", c, d);
    }
    free(diag);
    *cov = S;
    return 0;
}

int cli_tokens(const cli_args *a, double **X, size_t *n, size_t *d)
{
    *X = NULL;
    const char *file = cli_str(a, "tokens", NULL);
    if (file) {
        static const char *const init_only[] = {"init", "rho0", "mean", "cov", "components",
                                                "spread", "width"};
        for (size_t k = 0; k < sizeof init_only / sizeof init_only[0]; k++)
            if (cli_given(a, init_only[k]))
                return cli_fail(CLI_EUSAGE, "--tokens and --%s exclude each other", init_only[k]);
        af_status st = af_read_matrix(file, X, n, d);
        if (st)
            return cli_fail_status(st);
        size_t want;
        int rc;
        if (cli_given(a, "n") && ((rc = cli_size(a, "n", 1, &want)) || want != *n)) {
            free(*X);
            *X = NULL;
            return rc ? rc : cli_fail(CLI_EINPUT, "--n %zu: %s holds %zu tokens", want, file, *n);
        }
        if (cli_given(a, "d") && ((rc = cli_size(a, "d", 1, &want)) || want != *d)) {
            free(*X);
            *X = NULL;
            return rc ? rc : cli_fail(CLI_EINPUT, "--d %zu: %s has tokens of dimension %zu",
                                      want, file, *d);
        }
        return 0;
    }

    af_init_params p = af_init_params_default();
    const char *kind = cli_str(a, "init", "gaussian");
    if (af_init_kind_from_name(kind, &p.kind))
        return cli_fail(CLI_EINPUT, "--init: %s", af_last_error());
    unsigned long seed, comps;
    int rc;
    if ((rc = cli_size(a, "n", 64, &p.n)) || (rc = cli_size(a, "d", 2, &p.d))
        || (rc = cli_ulong(a, "seed", 1, &seed)) || (rc = cli_double(a, "rho0", 0.1, &p.rho0))
        || (rc = cli_ulong(a, "components", 3, &comps))
        || (rc = cli_positive(a, "spread", 2.0, &p.spread))
        || (rc = cli_positive(a, "width", 0.5, &p.width)))
        return rc;
    if (comps < 1)
        return cli_fail(CLI_EINPUT, "--components: must be >= 1");
    p.components = comps;
    if (p.kind != AF_INIT_GAUSSIAN && (cli_given(a, "mean") || cli_given(a, "cov")))
        return cli_fail(CLI_EUSAGE, "--mean and --cov apply to --init gaussian only");
    if (p.n > ((size_t)1 << 40) / p.d)
        return cli_fail(CLI_EINPUT, "--n %zu x --d %zu tokens: too large", p.n, p.d);
    double *mean = NULL, *cov = NULL;
    if ((rc = read_mean(a, p.d, &mean)) || (rc = read_cov(a, p.d, &cov))) {
        free(mean);
        return rc;
    }
    p.mean = mean;
    p.cov = cov;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    *X = cli_alloc(p.n, p.d, sizeof **X);
    if (!rng || !*X) {
        rc = cli_fail(CLI_EINPUT, "out of memory (%zu x %zu tokens)", p.n, p.d);
    } else {
        gsl_rng_set(rng, seed);
        af_status st = af_init_cloud(&p, rng, *X);
        rc = st ? cli_fail_status(st) : 0;
    }
    if (rc) {
        free(*X);
        *X = NULL;
    } else {
        *n = p.n;
        *d = p.d;
    }
    gsl_rng_free(rng);
    free(mean);
    free(cov);
    return rc;
}

void cli_tokens_meta(const cli_args *a, FILE *fp)
{
    const char *file = cli_str(a, "tokens", NULL);
    if (file) {
        af_write_meta(fp, "tokens", "file %s", file);
        return;
    }
    af_write_meta(fp, "tokens", "init %s", cli_str(a, "init", "gaussian"));
    af_write_meta(fp, "seed", "%s", cli_str(a, "seed", "1"));
}

int cli_square_matrix(const cli_args *a, const char *name, size_t d, double **M)
{
    *M = NULL;
    const char *v = cli_str(a, name, NULL);
    if (!v)
        return 0;
    /* inline rows 'a,b;c,d' when no file has that name and it is made of numbers */
    if (access(v, F_OK) != 0 && v[0] && strspn(v, "0123456789.eE+-,; \t") == strlen(v)) {
        long count = cli_parse_list(v, NULL, 0);
        if (count < 0 || (size_t)count != d * d)
            return cli_fail(CLI_EINPUT, "--%s: '%s' is not %zu numbers 'a,b;c,d' (d = %zu) "
                            "nor a file", name, v, d * d, d);
        if (!(*M = malloc(d * d * sizeof **M)))
            return cli_fail(CLI_EINPUT, "out of memory");
        cli_parse_list(v, *M, d * d);
        return 0;
    }
    size_t r, c;
    af_status st = af_read_matrix(v, M, &r, &c);
    if (st)
        return cli_fail_status(st);
    if (r != d || c != d) {
        free(*M);
        *M = NULL;
        return cli_fail(CLI_EINPUT, "--%s: %s is %zu x %zu, expected %zu x %zu (d = %zu)", name,
                        v, r, c, d, d, d);
    }
    return 0;
}
