/* attnflow gradflow: Sinkhorn attention as a Wasserstein gradient flow
 * (docs/theory.md 4), made measurable.
 *   --mode energy: from one cloud, integrate the Sinkhorn flow and the
 *     SoftMax flow (scores x^T A y / eps, W_V = A / eps) and record along
 *     each the entropic OT energy F_n, its measured rate dF_n/dt and the
 *     rate a gradient flow of F_n would have, -(1/n) sum_i |T_i|^2.
 *   --mode jacobian: relative asymmetry |J - J^T| / |J| of the particle
 *     field's Jacobian (central differences) against n, for Sinkhorn with
 *     W_V = A / eps (a gradient: symmetric), SoftMax, and Sinkhorn with a
 *     W_V that is not A / eps. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include "alloc.h"
#include "attnflow/energy.h"
#include "attnflow/flow.h"
#include "attnflow/io.h"
#include "backend_opts.h"
#include "cli.h"
#include "tokens.h"
#include "density_opts.h"
#include "outputs.h"
#include "pm_opts.h"

static const cli_opt gradflow_opts[] = {
    CLI_OPT("mode", "KIND", "energy|jacobian (default energy)"),
    CLI_OPT("n", "N", "energy: number of tokens (default 64)"),
    CLI_OPT("ns", "LIST", "jacobian: list of n 'a,b,...' (default 4,8,16,32,64)"),
    CLI_OPT("d", "D", "dimension (default 2)"),
    CLI_OPT("seed", "S", "seed of the initial cloud N(0, sigma^2 I) (default 1)"),
    CLI_OPT("sigma", "S", "standard deviation of the initial cloud (default 1)"),
    CLI_OPT("A", "MATRIX", "symmetric d x d score matrix: a FILE, or rows inline 'a,b;c,d' (default identity)"),
    CLI_OPT("eps", "E", "temperature: scores x^T A y / eps, W_V = A / eps (default 1)"),
    CLI_OPT("skew", "S", "jacobian: W_V = A / eps + skew * (antisymmetric unit) for the third field (default 0.5)"),
    CLI_OPT("T", "T", "energy: final time (default 2)"),
    CLI_OPT("dt", "H", "energy: RK4 step (default 0.01)"),
    CLI_OPT("tol", "TOL", "Sinkhorn tolerance (default 1e-12, tighter than attention/flow: the "
                        "finite differences need the exact field)"),
    CLI_OPT("fd-step", "H", "jacobian: central-difference step (default 1e-5); energy: tau of the rate (default 1e-5)"),
    CLI_OUT("out", "FILE", "output file (energy.dat or jacobian.dat)"),
    CLI_BACKEND_OPTS,
    CLI_END,
};

/* --A: a FILE or inline rows, as in attention and flow; symmetric here. */
static int read_A(const cli_args *a, size_t d, double *A)
{
    double *M;
    int rc = cli_square_matrix(a, "A", d, &M);
    if (rc)
        return rc;
    for (size_t i = 0; i < d * d; i++)
        A[i] = M ? M[i] : (i / d == i % d);
    free(M);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < i; j++)
            if (A[i * d + j] != A[j * d + i])
                return cli_fail(CLI_EINPUT, "--A must be symmetric (F_n needs symmetric scores)");
    return 0;
}

static af_flow_ws *make_flow(size_t n, size_t d, af_flow_norm norm, const double *A, double eps,
                             const double *V, double tol, int warm, const cli_backend_choice *b)
{
    af_flow_params p = af_flow_params_default(n, d);
    p.backend = b->type;
    p.precision = b->precision;
    p.norm = norm;
    p.scores.kind = AF_SCORES_DOT;
    p.scores.A = A;
    p.scores.eps = eps;
    p.V = V;
    p.integrator = AF_FLOW_RK4;
    p.sinkhorn.tol = tol;
    p.sinkhorn.max_iters = 100000;
    p.warm_start = warm;
    return af_flow_alloc(&p);
}

static void write_common_meta(FILE *fp, const cli_args *a, size_t d, const double *A, double eps,
                              double sigma, unsigned long seed)
{
    af_write_header(fp, a->command_line);
    af_write_meta(fp, "seed", "%lu", seed);
    af_write_meta(fp, "cloud", "x_i ~ N(0, %g^2 I_%zu)", sigma, d);
    char buf[256];
    size_t len = 0;
    for (size_t i = 0; i < d * d && len < sizeof buf - 32; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%g", i == 0 ? "" : i % d ? "," : ";",
                                A[i]);
    af_write_meta(fp, "scores", "x^T A y / eps, A = [%s], eps = %.17g", buf, eps);
}

static int energy_mode(const cli_args *a)
{
    size_t n, d;
    unsigned long seed;
    double sigma, eps, T, dt, tol, tau;
    int rc;
    if ((rc = cli_size(a, "n", 64, &n)) || (rc = cli_size(a, "d", 2, &d))
        || (rc = cli_ulong(a, "seed", 1, &seed)) || (rc = cli_positive(a, "sigma", 1, &sigma))
        || (rc = cli_positive(a, "eps", 1, &eps)) || (rc = cli_double(a, "T", 2, &T))
        || (rc = cli_positive(a, "dt", 0.01, &dt)) || (rc = cli_positive(a, "tol", 1e-12, &tol))
        || (rc = cli_positive(a, "fd-step", 1e-5, &tau)))
        return rc;
    if (d > 16)
        return cli_fail(CLI_EINPUT, "--d: at most 16 (got %zu)", d);
    size_t nsteps;
    if ((rc = cli_steps("--T / --dt", T, dt, 1e7, &nsteps)))
        return rc;
    double A[256], V[256];
    if ((rc = read_A(a, d, A)))
        return rc;
    for (size_t i = 0; i < d * d; i++)
        V[i] = A[i] / eps; /* W_V = the whole score matrix */
    if (n > (size_t)INT_MAX / d) /* n d coordinates are allocated below (BLAS takes int sizes) */
        return cli_fail(CLI_EINPUT, "--n: at most %zu tokens in %zu-D (got %zu)",
                        (size_t)INT_MAX / d, d, n);
    cli_backend_choice bk;
    if ((rc = cli_backend(a, n, d, AF_ATTN_SINKHORN, &bk)))
        return rc;
    const size_t N = n * d;
    double *X0 = malloc(N * sizeof *X0), *Xs = malloc(N * sizeof *Xs), *Xm = malloc(N * sizeof *Xm),
           *Ts = malloc(N * sizeof *Ts), *Tm = malloc(N * sizeof *Tm), *Tx = malloc(N * sizeof *Tx);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    af_clear_error(); /* a NULL below then reports this call's own message */
    af_flow_ws *fs = make_flow(n, d, AF_FLOW_SINKHORN, A, eps, V, tol, 2, &bk);
    af_flow_ws *fm = make_flow(n, d, AF_FLOW_SOFTMAX, A, eps, V, tol, 2, &bk);
    af_flow_ws *fx = make_flow(n, d, AF_FLOW_SINKHORN, A, eps, V, tol, 2, &bk); /* Sinkhorn field at the SoftMax cloud */
    af_energy_ws *ew = af_energy_alloc_backend(n, d, bk.type);
    af_energy_ws *ewm = af_energy_alloc_backend(n, d, bk.type);
    cli_outputs files;
    cli_outputs_init(&files);
    if (!X0 || !Xs || !Xm || !Ts || !Tm || !Tx || !r || !fs || !fm || !fx || !ew || !ewm) {
        rc = cli_fail_alloc("gradflow");
        goto done;
    }
    gsl_rng_set(r, seed);
    for (size_t k = 0; k < N; k++)
        X0[k] = gsl_ran_gaussian_ziggurat(r, sigma);
    memcpy(Xs, X0, N * sizeof *X0);
    memcpy(Xm, X0, N * sizeof *X0);
    af_energy_params ep = af_energy_params_default();
    ep.scores.A = A;
    ep.scores.eps = eps;
    ep.sinkhorn.tol = tol;
    const char *path = cli_str(a, "out", NULL);
    af_status st;
    FILE *fp = NULL;
    if (path && (rc = cli_outputs_open(&files, "out", path, &fp)))
        goto done;
    if (fp) {
        write_common_meta(fp, a, d, A, eps, sigma, seed);
        cli_backend_meta(fp, &bk);
        af_write_meta(fp, "n", "%zu", n);
        af_write_meta(fp, "flows", "Sinkhorn and SoftMax, T_i = sum_j K_ij W_V x_j, W_V = A / eps, "
                      "RK4 dt = %.17g, T = %.17g, Sinkhorn tol %.3g", dt, T, tol);
        af_write_meta(fp, "F", "F_n = OT_1(mu, mu)/2 for the cost -x^T A y / eps (energy.h)");
        af_write_meta(fp, "rate", "dF/dt measured by (F(X + tau T) - F(X - tau T)) / (2 tau), "
                      "tau = %.3g", tau);
        af_write_meta(fp, "grad_rate", "-(1/n) sum_i |T_i|^2: the rate if the flow were the gradient "
                      "flow of F_n (it is for Sinkhorn)");
        af_write_meta(fp, "cross_rate", "-(1/n) sum_i T^sinkhorn_i . T^softmax_i at the SoftMax cloud: "
                      "the chain rule dF/dt = grad F . T");
        fputs("# columns: t F_sinkhorn rate_sinkhorn grad_rate_sinkhorn F_softmax rate_softmax "
              "grad_rate_softmax cross_rate_softmax\n", fp);
    }
    cli_progress pr;
    cli_progress_start(&pr, "gradflow", nsteps, cli_flag(a, "quiet"));
    double t = 0, F0s = NAN, Fends = NAN, Fends_m = NAN, max_rate_err = 0, max_rise = -INFINITY, Fprev = NAN;
    for (size_t s = 0;; s++) {
        double Fs, Fm, rs, rm;
        if ((st = af_flow_velocity(fs, Xs, Ts)) || (st = af_flow_velocity(fm, Xm, Tm))
            || (st = af_flow_velocity(fx, Xm, Tx)))
            break;
        if (((st = af_energy(ew, &ep, Xs, &Fs, NULL)) && st != AF_EMAXITER)
            || ((st = af_energy(ewm, &ep, Xm, &Fm, NULL)) && st != AF_EMAXITER)
            || ((st = af_energy_rate(ew, &ep, Xs, Ts, tau, &rs)) && st != AF_EMAXITER)
            || ((st = af_energy_rate(ewm, &ep, Xm, Tm, tau, &rm)) && st != AF_EMAXITER))
            break;
        st = AF_SUCCESS;
        double gs = af_energy_dissipation(n, d, Ts), gm = af_energy_dissipation(n, d, Tm), cross = 0;
        for (size_t k = 0; k < N; k++)
            cross -= Tx[k] * Tm[k] / (double)n;
        if (s == 0)
            F0s = Fs;
        else
            max_rise = fmax(max_rise, Fs - Fprev);
        Fprev = Fs;
        Fends = Fs;
        Fends_m = Fm;
        max_rate_err = fmax(max_rate_err, fabs(rs - gs) / fmax(fabs(gs), 1e-300));
        if (fp) {
            double row[] = {t, Fs, rs, gs, Fm, rm, gm, cross};
            for (size_t k = 0; k < 8; k++) {
                if (k)
                    fputc(' ', fp);
                af_write_double(fp, row[k]);
            }
            fputc('\n', fp);
        }
        if (s == nsteps)
            break;
        double tn = s + 1 == nsteps ? T : (double)(s + 1) * dt;
        if ((st = af_flow_step(fs, Xs, tn - t)) || (st = af_flow_step(fm, Xm, tn - t)))
            break;
        t = tn;
        cli_progress_update(&pr, s + 1);
    }
    if (st) {
        cli_progress_abort(&pr);
        rc = cli_fail(CLI_EINPUT, "t = %g: %s", t, af_last_error());
        goto done;
    }
    cli_progress_end(&pr);
    if ((rc = cli_outputs_commit(&files, NULL)))
        goto done;
    printf("n=%zu d=%zu eps=%g T=%g F0=%.12g F_sinkhorn(T)=%.12g F_softmax(T)=%.12g "
           "max_step_rise_sinkhorn=%.3g max_rel_rate_err_sinkhorn=%.3g\n",
           n, d, eps, T, F0s, Fends, Fends_m, nsteps ? max_rise : NAN, max_rate_err);
    rc = 0;
done:
    cli_outputs_abort(&files);
    free(X0);
    free(Xs);
    free(Xm);
    free(Ts);
    free(Tm);
    free(Tx);
    gsl_rng_free(r);
    af_flow_free(fs);
    af_flow_free(fm);
    af_flow_free(fx);
    af_energy_free(ew);
    af_energy_free(ewm);
    return rc;
}

static af_status field_cb(void *user, const double *X, double *T)
{
    return af_flow_velocity(user, X, T);
}

static int jacobian_mode(const cli_args *a)
{
    size_t d;
    unsigned long seed;
    double sigma, eps, tol, h, skew;
    int rc;
    if ((rc = cli_size(a, "d", 2, &d)) || (rc = cli_ulong(a, "seed", 1, &seed))
        || (rc = cli_positive(a, "sigma", 1, &sigma)) || (rc = cli_positive(a, "eps", 1, &eps))
        || (rc = cli_positive(a, "tol", 1e-12, &tol)) || (rc = cli_positive(a, "fd-step", 1e-5, &h))
        || (rc = cli_double(a, "skew", 0.5, &skew)))
        return rc;
    if (d < 2 || d > 16)
        return cli_fail(CLI_EINPUT, "--d: 2 to 16 for the jacobian mode (got %zu)", d);
    double A[256], V[256], W[256], nsv[64];
    if ((rc = read_A(a, d, A)))
        return rc;
    const char *ns = cli_str(a, "ns", "4,8,16,32,64");
    long nl = cli_parse_list(ns, nsv, 64);
    if (nl <= 0 || nl > 64)
        return cli_fail(CLI_EINPUT, "--ns: expected a list of 1 to 64 sizes (got '%s')", ns);
    size_t nn = (size_t)nl;
    for (size_t k = 0; k < nn; k++)
        if (!(nsv[k] >= 2) || nsv[k] != floor(nsv[k]) || nsv[k] > 512)
            return cli_fail(CLI_EINPUT, "--ns: sizes must be integers in [2, 512] (got %g)", nsv[k]);
    for (size_t i = 0; i < d * d; i++) {
        V[i] = A[i] / eps;
        W[i] = V[i];
    }
    W[1] += skew; /* + skew (e_1 e_2^T - e_2 e_1^T): W_V no longer the score matrix */
    W[d] -= skew;
    cli_outputs files;
    cli_outputs_init(&files);
    FILE *fp = NULL;
    af_status st;
    const char *path = cli_str(a, "out", NULL);
    if (path && (rc = cli_outputs_open(&files, "out", path, &fp)))
        return rc;
    if (fp) {
        write_common_meta(fp, a, d, A, eps, sigma, seed);
        af_write_meta(fp, "backend", "%s per n (auto: dense while it fits in 1/4 of the memory)",
                      cli_str(a, "backend", "auto"));
        af_write_meta(fp, "jacobian", "J = dT/dX (nd x nd) by central differences, step %.3g "
                      "(times max(1, |x|)); asymmetry |J - J^T|_F / |J|_F", h);
        af_write_meta(fp, "fields", "sinkhorn: W_V = A/eps; softmax: W_V = A/eps; "
                      "sinkhorn_skew: W_V = A/eps + %g (e1 e2^T - e2 e1^T)", skew);
        af_write_meta(fp, "sinkhorn", "tol %.3g, cold start at every evaluation", tol);
        af_write_meta(fp, "fd_err", "Richardson estimate of the finite-difference error, max entry, "
                      "relative to max |J|");
        fputs("# columns: n asym_sinkhorn asym_softmax asym_sinkhorn_skew fd_err_sinkhorn "
              "fd_err_softmax seconds\n", fp);
    }
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    rc = 0;
    for (size_t k = 0; k < nn && !rc; k++) {
        size_t n = (size_t)nsv[k], N = n * d;
        double *X = malloc(N * sizeof *X), *J = cli_alloc(N, N, sizeof *J),
               *work = malloc(4 * N * sizeof *work);
        double asym[3], err[3], t0 = cli_now();
        if (!X || !J || !work) {
            rc = cli_fail(CLI_EINPUT, "out of memory (n = %zu)", n);
        } else {
            gsl_rng_set(r, seed);
            for (size_t q = 0; q < N; q++)
                X[q] = gsl_ran_gaussian_ziggurat(r, sigma);
            for (int c = 0; c < 3 && !rc; c++) {
                /* cold starts: a warm start would make T depend on the order of evaluation */
                cli_backend_choice bk;
                if ((rc = cli_backend(a, n, d, AF_ATTN_SINKHORN, &bk)))
                    break;
                af_clear_error();
                af_flow_ws *fw = make_flow(n, d, c == 1 ? AF_FLOW_SOFTMAX : AF_FLOW_SINKHORN, A, eps,
                                           c == 2 ? W : V, tol, 0, &bk);
                if (!fw) {
                    rc = cli_fail_alloc("gradflow");
                    break;
                }
                if ((st = af_fd_jacobian(field_cb, fw, N, X, h, J, &err[c], work))) {
                    rc = cli_fail(CLI_EINPUT, "n = %zu: %s", n, af_last_error());
                } else {
                    double mx = 0;
                    for (size_t q = 0; q < N * N; q++)
                        mx = fmax(mx, fabs(J[q]));
                    asym[c] = af_jacobian_asymmetry(N, J);
                    err[c] /= mx;
                }
                af_flow_free(fw);
            }
        }
        if (!rc) {
            if (fp) {
                fprintf(fp, "%zu", n);
                double row[] = {asym[0], asym[1], asym[2], err[0], err[1], cli_now() - t0};
                for (size_t q = 0; q < 6; q++) {
                    fputc(' ', fp);
                    af_write_double(fp, row[q]);
                }
                fputc('\n', fp);
            }
            printf("n=%zu asym_sinkhorn=%.3g asym_softmax=%.3g asym_sinkhorn_skew=%.3g fd_err=%.3g\n",
                   n, asym[0], asym[1], asym[2], err[0]);
        }
        free(X);
        free(J);
        free(work);
    }
    gsl_rng_free(r);
    if (rc)
        cli_outputs_abort(&files);
    else
        rc = cli_outputs_commit(&files, NULL);
    return rc;
}

static int gradflow_run(const cli_args *a)
{
    static const char *const modes[] = {"energy", "jacobian", NULL};
    int mode, rc;
    if ((rc = cli_choice(a, "mode", modes, 0, &mode)))
        return rc;
    /* an option of the other mode would be silently ignored: refuse it */
    static const char *const energy_only[] = {"n", "T", "dt", NULL};
    static const char *const jacobian_only[] = {"ns", "skew", NULL};
    const char *const *foreign = mode == 0 ? jacobian_only : energy_only;
    for (size_t k = 0; foreign[k]; k++)
        if (cli_given(a, foreign[k]))
            return cli_fail(CLI_EUSAGE, "--%s applies to --mode %s only", foreign[k],
                            modes[1 - mode]);
    /* the energy and Jacobian checks need the exact field: no particle-mesh */
    double pm_tol;
    if ((rc = cli_pm_options(a, &pm_tol)))
        return rc;
    if (pm_tol > 0)
        return cli_fail(CLI_EUSAGE, "--backend pm applies to flow, compare and attention, "
                                    "not gradflow (its checks need the exact field)");
    return mode == 0 ? energy_mode(a) : jacobian_mode(a);
}

const cli_command cli_cmd_gradflow = {
    "gradflow",
    "Sinkhorn attention as a gradient flow: OT energy along flows, field Jacobian symmetry",
    "[--mode energy|jacobian] [--n N | --ns 'a,b,...'] [--d D] [--A MATRIX] [--eps E]\n"
    "      [--T T] [--dt H] [--out FILE] [FILE.ini]",
    gradflow_opts,
    gradflow_run,
};
