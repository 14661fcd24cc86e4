/* attnflow compare: the heat-diffusion limit of attention flows
 * (docs/theory.md 5). n tokens drawn from an initial density move under
 *     dx_i/dt = -(2/eps) (sum_j K_ij x_j - x_i)
 * (K Sinkhorn or SoftMax of L2 or dot scores at bandwidth eps), and the
 * heat equation d/dt rho = kappa Laplacian(rho) is solved from the same
 * density on a periodic FFT grid. At each saved time the cloud is compared
 * with the PDE: moments and variance increments, kernel density estimate
 * vs the PDE smoothed by the same kernel (L1, L2), exact W1/W2 (1-D) or
 * sliced W2 (2-D). --sweep repeats the run over a list of n, eps or dt
 * values (and seeds) and writes the final-time errors with fitted slopes. */
#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_rng.h>
#include "alloc.h"
#include "attnflow/energy.h"
#include "attnflow/flow.h"
#include "attnflow/heat.h"
#include "attnflow/io.h"
#include "attnflow/metrics.h"
#include "backend_opts.h"
#include "cli.h"
#include "density_opts.h"
#include "outputs.h"
#include "pm_opts.h"

static const cli_opt compare_opts[] = {
    CLI_DENSITY_OPTS,
    CLI_OPT("n", "N", "number of tokens (default 800, not 64 as in flow: the heat limit needs many)"),
    CLI_OPT("seed", "S", "seed of the initial draw (default 1)"),
    CLI_OPT("norm", "KIND", "attention normalisation sinkhorn|softmax (default sinkhorn: the "
                           "flow whose limit is the heat equation with kappa 1)"),
    CLI_OPT("scores", "KIND", "l2: -|x-y|^2/(2 eps), dot: x^T y / eps (default l2)"),
    CLI_OPT("eps", "E", "kernel bandwidth eps (default 0.05, not 1 as in flow: the limit is eps -> 0)"),
    CLI_OPT("dt", "H", "time step h (default 0.005)"),
    CLI_OPT("T", "T", "final time (default 0.5)"),
    CLI_OPT("integrator", "KIND", "euler|heun|rk4 (default euler: one residual layer per step)"),
    CLI_OPT("tol", "TOL", "Sinkhorn tolerance at every velocity evaluation (default 1e-9)"),
    CLI_OPT("max-iters", "N", "Sinkhorn iteration bound per evaluation (default 10000)"),
    CLI_OPT("kappa", "K", "diffusion coefficient of the PDE (default 1 for sinkhorn, 2 for softmax)"),
    CLI_OPT("bandwidth", "H", "KDE bandwidth (default: Silverman's rule on the initial cloud)"),
    CLI_OPT("directions", "K", "sliced W2: number of seeded directions (default 16)"),
    CLI_OPT("save-every", "K", "compare every K steps (t = 0 and T always) (default 10)"),
    CLI_OPT("snapshots", "K", "density snapshots, equally spaced in [0, T] (default 3)"),
    CLI_FLAG("no-energy", "skip E = -2 F_n (the energy the Sinkhorn heat flow dissipates)"),
    CLI_OPT("sweep", "KIND", "repeat over a parameter: n|eps|dt (final-time errors only)"),
    CLI_OPT("values", "LIST", "--sweep values 'a,b,c'"),
    CLI_OPT("repeats", "R", "--sweep: seeds seed..seed+R-1 per value (default 3)"),
    CLI_OPT("out", "DIR", "output directory (errors.dat, snapshots.dat, particles.dat or sweep.dat)"),
    CLI_BACKEND_OPTS,
    CLI_END,
};

typedef struct {
    size_t n, d, directions, save_every, snapshots, max_iters;
    int norm, scores, integ, energy;
    double eps, dt, T, kappa, tol, bandwidth;
    int bw_given;
    double pm_tol; /* > 0: particle-mesh attention (--backend pm) */
} settings;

typedef struct {
    double var_inc, pde_inc, mf_inc, l1, l2, w1, w2, sw2, energy0, energy, seconds, bandwidth;
    size_t outside, sk_iters;
} result;

typedef struct {
    FILE *err, *snap, *part; /* temporaries (outputs.h) */
} outputs;

static const char *const norm_names[] = {"softmax", "sinkhorn", NULL};
static const char *const score_names[] = {"dot", "l2", NULL};
static const char *const integ_names[] = {"euler", "heun", "rk4", NULL};

static void write_meta(FILE *fp, const cli_args *a, const settings *s, const cli_density *c,
                       unsigned long seed)
{
    af_write_header(fp, a->command_line);
    af_write_meta(fp, "seed", "%lu", seed);
    cli_density_meta(c, fp);
    af_write_meta(fp, "n", "%zu", s->n);
    af_write_meta(fp, "flow", "dx_i/dt = -(2/eps) (sum_j K_ij x_j - x_i), K = %s of %s scores, "
                  "eps = %.17g", norm_names[s->norm], score_names[s->scores], s->eps);
    af_write_meta(fp, "integrator", "%s, dt = %.17g, T = %.17g", integ_names[s->integ], s->dt, s->T);
    if (s->norm == AF_FLOW_SINKHORN)
        af_write_meta(fp, "sinkhorn", "tol %.3g per evaluation, warm starts", s->tol);
    af_write_meta(fp, "pde", "d/dt rho = kappa Laplacian(rho), kappa = %.17g (FFTW, exact per mode)",
                  s->kappa);
}

/* Mean-field (n -> infinity) variance increment at time t for a Gaussian
 * start with L2 scores (heat.h): for dt -> 0 (euler = 0) or for the Euler
 * steps of dt the runs take; NaN where it does not apply. */
static double meanfield_inc(const settings *s, const cli_density *c, double t, int euler)
{
    if (c->is_grid || c->dens.kind != AF_DENSITY_GAUSSIAN || s->scores != 1)
        return NAN;
    const int sk = s->norm == AF_FLOW_SINKHORN;
    double s0 = c->dens.sigma * c->dens.sigma, sT;
    if (euler ? af_attention_gaussian_variance_euler(sk, s->eps, s0, t, s->dt, &sT)
              : af_attention_gaussian_variance(sk, s->eps, s0, t, &sT))
        return NAN;
    return sT - s0;
}

/* One run. o == NULL: no files (sweeps). */
static int run_case(const cli_args *a, const settings *s, const cli_density *c, unsigned long seed,
                    outputs *o, result *r, int quiet)
{
    const size_t n = s->n, d = c->grid.d, M = af_grid_size(&c->grid);
    const af_grid *g = &c->grid;
    int rc = 0;
    af_status st = AF_SUCCESS;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937), *rdir = gsl_rng_alloc(gsl_rng_mt19937);
    double *X = cli_alloc(n, d, sizeof *X), *pde = malloc(M * sizeof *pde),
           *smooth = malloc(M * sizeof *smooth), *kde = malloc(M * sizeof *kde);
    af_flow_ws *fw = NULL;
    af_heat_plan *plan = NULL;
    af_kde_ws *kw = NULL;
    af_energy_ws *ew = NULL;
    af_measure1d *mp = NULL, *mg = NULL;
    memset(r, 0, sizeof *r);
    r->energy0 = r->energy = NAN;
    if (!rng || !rdir || !X || !pde || !smooth || !kde) {
        rc = cli_fail(CLI_EINPUT, "out of memory");
        goto done;
    }
    gsl_rng_set(rng, seed);
    st = c->is_grid ? af_grid_sample(g, c->rho0, rng, n, X) : af_density_sample(&c->dens, rng, n, X);
    if (st) {
        rc = cli_fail_status(st);
        goto done;
    }
    af_flow_params fp = af_flow_params_default(n, d);
    fp.norm = (af_flow_norm)s->norm;
    fp.scores.kind = s->scores == 1 ? AF_SCORES_L2 : AF_SCORES_DOT;
    fp.scores.eps = s->eps;
    fp.value = -2.0 / s->eps;
    fp.skip = 1;
    fp.integrator = (af_flow_integrator)s->integ;
    fp.sinkhorn.tol = s->tol;
    fp.sinkhorn.max_iters = s->max_iters;
    fp.pm_tol = s->pm_tol;
    cli_backend_choice bk; /* per run: a sweep over n may cross auto's limit */
    if ((rc = cli_backend(a, n, d, fp.norm == AF_FLOW_SINKHORN ? AF_ATTN_SINKHORN
                                                                : AF_ATTN_SOFTMAX, &bk)))
        goto done;
    fp.backend = bk.type;
    fp.precision = bk.precision;
    af_clear_error(); /* a NULL below then reports this call's own message */
    if (!(fw = af_flow_alloc(&fp)) || !(plan = af_heat_plan_alloc(g, FFTW_ESTIMATE))
        || !(kw = af_kde_alloc(g, FFTW_ESTIMATE))) {
        rc = cli_fail_alloc("compare");
        goto done;
    }
    if (d == 1 && (!(mp = af_measure1d_alloc(n)) || !(mg = af_measure1d_alloc(M)))) {
        rc = cli_fail_alloc("compare");
        goto done;
    }
    af_pm_info pmi; /* the grid of the initial cloud (it follows the cloud later) */
    if (s->pm_tol > 0 && (st = cli_pm_probe(n, d, X, &fp.scores, s->pm_tol, &pmi))) {
        rc = cli_fail_status(st);
        goto done;
    }
    /* the energy is a dense O(n^2) Sinkhorn solve: not with the PM backend */
    const int want_energy = s->energy && s->norm == AF_FLOW_SINKHORN && s->scores == 1
                            && !(s->pm_tol > 0);
    af_energy_params ep = af_energy_params_default();
    if (want_energy) {
        ep.scores.kind = AF_SCORES_L2;
        ep.scores.eps = s->eps;
        ep.sinkhorn.tol = s->tol;
        if (!(ew = af_energy_alloc_backend(n, d, bk.type))) {
            rc = cli_fail_alloc("compare: energy");
            goto done;
        }
    }
    if ((st = cli_density_set(c, plan))) {
        rc = cli_fail_status(st);
        goto done;
    }
    af_kde_options ko = af_kde_options_default();
    ko.bandwidth = s->bw_given ? s->bandwidth : af_kde_silverman(n, d, X);
    r->bandwidth = ko.bandwidth;
    double m0[2], c0[4], m[2], cv[4];
    af_moments(n, d, X, m0, c0);

    size_t nsteps;
    if ((rc = cli_steps("--T / --dt", s->T, s->dt, 1e7, &nsteps)))
        goto done;
    /* at most one snapshot per step: with S - 1 > nsteps equally spaced
     * times would round to the same step (said in the metadata) */
    size_t S = s->snapshots < nsteps + 1 ? s->snapshots : nsteps + 1, next_snap = 0;
    if (o) {
        FILE *fps[3] = {o->err, o->snap, o->part};
        for (int k = 0; k < 3; k++) {
            write_meta(fps[k], a, s, c, seed);
            cli_backend_meta(fps[k], &bk);
            cli_pm_meta(fps[k], s->pm_tol, &pmi);
            af_write_meta(fps[k], "kde", "Gaussian kernel, bandwidth %.17g%s; compared with the PDE "
                          "at kappa t + b^2/2 (the same smoothing)", ko.bandwidth,
                          s->bw_given ? "" : " (Silverman, initial cloud)");
        }
        FILE *fe = fps[0];
        af_write_meta(fe, "var_inc", "mean over coordinates of var_k(t) - var_k(0) of the cloud; "
                      "var_inc_pde = 2 kappa t exactly; var_inc_mf: the n -> infinity limit of "
                      "this flow at this eps (Gaussian start, L2 scores; else nan): the O(eps) bias");
        af_write_meta(fe, "l1_l2", "KDE of the cloud vs the smoothed PDE solution on the grid");
        af_write_meta(fe, "w", d == 1 ? "w1, w2: exact 1-D Wasserstein distances between the cloud "
                                        "and the PDE density (cells piecewise constant); sw2 nan"
                                      : "sw2: sliced W2 between the cloud and the PDE density, "
                                        "the same seeded directions at every time; w1, w2 nan");
        af_write_meta(fe, "energy", "%s", want_energy
                      ? "E = -2 F_n, F_n = OT_eps(mu, mu)/2 for the L2 cost: the Sinkhorn heat "
                        "flow is its gradient flow, dE/dt = -(1/n) sum |v_i|^2"
                      : s->pm_tol > 0 ? "nan (not computed with --backend pm: it needs the dense "
                                        "n x n kernel)"
                                      : "nan (defined for Sinkhorn with L2 scores)");
        af_write_meta(fe, "sk_iters", "Sinkhorn normalisations per velocity evaluation since the "
                      "previous line");
        fprintf(fe, "# columns: t");
        for (size_t k = 1; k <= d; k++)
            fprintf(fe, " mean_%zu", k);
        for (size_t k = 1; k <= d; k++)
            fprintf(fe, " var_%zu", k);
        fprintf(fe, " var_inc var_inc_pde var_inc_mf l1 l2 w1 w2 sw2 energy outside sk_iters\n");
        for (int k = 1; k < 3; k++) {
            if (S < 2)
                af_write_meta(fps[k], "snapshots", "1, at t = T");
            else
                af_write_meta(fps[k], "snapshots", "%zu, at the steps nearest to t = k T / %zu, "
                              "k = 0..%zu", S, S - 1, S - 1);
            if (S != s->snapshots)
                af_write_meta(fps[k], "snapshots_requested", "%zu: more than the %zu time steps + 1, "
                              "so one snapshot per step", s->snapshots, nsteps);
        }
        fputs("# blocks: one per snapshot time (gnuplot index); 2-D rows separated by blank lines\n",
              fps[1]);
        fprintf(fps[1], "# columns: %s kde pde_smoothed pde\n", d == 1 ? "x" : "x1 x2");
        fputs("# blocks: one per snapshot time (gnuplot index)\n# columns: t i", fps[2]);
        for (size_t k = 1; k <= d; k++)
            fprintf(fps[2], " x%zu", k);
        fputc('\n', fps[2]);
    }
    cli_progress pr;
    cli_progress_start(&pr, "compare", nsteps, quiet);
    af_flow_stats prev = {0}, stats;
    double t = 0, t_start = cli_now();
    int first_snap = 1;
    for (size_t step = 0;; step++) {
        size_t snap_step = S < 2 ? nsteps : (size_t)llround((double)next_snap * (double)nsteps
                                                            / (double)(S - 1));
        int is_snap = o && next_snap < (S < 2 ? 1 : S) && step == snap_step;
        int is_save = step % s->save_every == 0 || step == nsteps || is_snap;
        if (is_save && (o || step == nsteps || step == 0)) {
            /* compare the cloud with the PDE at time t */
            size_t outside = 0;
            double l1, l2, w1 = NAN, w2 = NAN, sw2 = NAN, E = NAN;
            if ((st = af_heat_evolve(plan, s->kappa, t, pde))
                || (st = af_heat_evolve(plan, 1.0, s->kappa * t + 0.5 * ko.bandwidth * ko.bandwidth,
                                        smooth))
                || (st = af_kde(kw, &ko, n, X, kde, &outside)))
                break;
            af_density_distance(g, kde, smooth, &l1, &l2);
            af_moments(n, d, X, m, cv);
            double inc = 0;
            for (size_t k = 0; k < d; k++)
                inc += (cv[k * d + k] - c0[k * d + k]) / (double)d;
            if (d == 1) {
                if ((st = af_measure1d_set(mp, n, X, 1, NULL, 0, NULL))
                    || (st = af_measure1d_set_grid(mg, g, pde)))
                    break;
                w1 = af_wasserstein1d(mp, mg, 1);
                w2 = af_wasserstein1d(mp, mg, 2);
            } else {
                af_sliced_side sa = {n, X, NULL, NULL}, sb = {0, NULL, g, pde};
                gsl_rng_set(rdir, seed + 7919); /* the same directions at every time */
                if ((st = af_sliced_w2(d, &sa, &sb, s->directions, rdir, &sw2, NULL)))
                    break;
            }
            if (want_energy) {
                double F;
                if ((st = af_energy(ew, &ep, X, &F, NULL)) && st != AF_EMAXITER)
                    break;
                st = AF_SUCCESS;
                E = -2 * F;
                if (step == 0)
                    r->energy0 = E;
                r->energy = E;
            }
            af_flow_get_stats(fw, &stats);
            size_t de = stats.evaluations - prev.evaluations;
            double it = de ? (double)(stats.sinkhorn_iterations - prev.sinkhorn_iterations) / (double)de
                           : 0;
            prev = stats;
            if (o) {
                FILE *fe = o->err;
                af_write_double(fe, t);
                for (size_t k = 0; k < d; k++) {
                    fputc(' ', fe);
                    af_write_double(fe, m[k]);
                }
                for (size_t k = 0; k < d; k++) {
                    fputc(' ', fe);
                    af_write_double(fe, cv[k * d + k]);
                }
                double vals[] = {inc, 2 * s->kappa * t, meanfield_inc(s, c, t, 0), l1, l2, w1, w2, sw2, E};
                for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
                    fputc(' ', fe);
                    af_write_double(fe, vals[k]);
                }
                fprintf(fe, " %zu ", outside);
                af_write_double(fe, it);
                fputc('\n', fe);
            }
            if (is_snap) {
                FILE *fs = o->snap, *fq = o->part;
                if (!first_snap) {
                    fputs("\n\n", fs);
                    fputs("\n\n", fq);
                }
                first_snap = 0;
                fprintf(fs, "# t: %.17g\n", t);
                for (size_t j = 0; j < M; j++) {
                    double x[2];
                    af_grid_node(g, j, x);
                    if (d == 2 && j > 0 && j % g->N[1] == 0)
                        fputc('\n', fs);
                    for (size_t k = 0; k < d; k++) {
                        af_write_double(fs, x[k]);
                        fputc(' ', fs);
                    }
                    af_write_double(fs, kde[j]);
                    fputc(' ', fs);
                    af_write_double(fs, smooth[j]);
                    fputc(' ', fs);
                    af_write_double(fs, pde[j]);
                    fputc('\n', fs);
                }
                for (size_t i = 0; i < n; i++) {
                    af_write_double(fq, t);
                    fprintf(fq, " %zu", i);
                    for (size_t k = 0; k < d; k++) {
                        fputc(' ', fq);
                        af_write_double(fq, X[i * d + k]);
                    }
                    fputc('\n', fq);
                }
                next_snap++;
            }
            if (step == nsteps) {
                r->var_inc = inc;
                r->pde_inc = 2 * s->kappa * t;
                r->mf_inc = meanfield_inc(s, c, t, 0);
                r->l1 = l1;
                r->l2 = l2;
                r->w1 = w1;
                r->w2 = w2;
                r->sw2 = sw2;
                r->outside = outside;
            }
        }
        if (step == nsteps)
            break;
        double t_next = step + 1 == nsteps ? s->T : (double)(step + 1) * s->dt;
        if ((st = af_flow_step(fw, X, t_next - t))) {
            cli_progress_abort(&pr);
            rc = cli_fail(CLI_EINPUT, "step %zu (t = %g): %s", step + 1, t, af_last_error());
            goto done;
        }
        t = t_next;
        cli_progress_update(&pr, step + 1);
    }
    if (st) {
        cli_progress_abort(&pr);
        rc = cli_fail_status(st);
        goto done;
    }
    cli_progress_end(&pr);
    af_flow_get_stats(fw, &stats);
    r->sk_iters = stats.sinkhorn_iterations;
    r->seconds = cli_now() - t_start;
done:
    gsl_rng_free(rng);
    gsl_rng_free(rdir);
    free(X);
    free(pde);
    free(smooth);
    free(kde);
    af_flow_free(fw);
    af_heat_plan_free(plan);
    af_kde_free(kw);
    af_energy_free(ew);
    af_measure1d_free(mp);
    af_measure1d_free(mg);
    return rc;
}

static int open_in(cli_outputs *files, const char *dir, const char *name, FILE **fp)
{
    char path[4096];
    int rc;
    if ((rc = cli_outputs_dir(files, "out", dir))
        || (rc = cli_outputs_join(path, sizeof path, "out", dir, name)))
        return rc;
    return cli_outputs_open(files, "out", path, fp);
}

/* Least-squares slope of log y against log x over the finite positive pairs. */
static double loglog_slope(size_t k, const double *x, const double *y)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0, m = 0;
    for (size_t i = 0; i < k; i++) {
        if (!(x[i] > 0) || !(y[i] > 0) || !isfinite(y[i]))
            continue;
        double lx = log(x[i]), ly = log(y[i]);
        sx += lx;
        sy += ly;
        sxx += lx * lx;
        sxy += lx * ly;
        m++;
    }
    if (m < 2)
        return NAN;
    return (m * sxy - sx * sy) / (m * sxx - sx * sx);
}

static int sweep_run(const cli_args *a, settings s, cli_density *c, unsigned long seed,
                     const char *dir, int quiet)
{
    static const char *const params[] = {"n", "eps", "dt", NULL};
    int which, rc;
    size_t R;
    if ((rc = cli_choice(a, "sweep", params, 0, &which)) || (rc = cli_size(a, "repeats", 3, &R)))
        return rc;
    const char *vs = cli_str(a, "values", NULL);
    double vals[64];
    if (!vs)
        return cli_fail(CLI_EUSAGE, "--sweep needs --values 'a,b,...'");
    long nl = cli_parse_list(vs, vals, 64);
    if (nl < 0)
        return cli_fail(CLI_EINPUT, "--values: not a list of numbers: '%s'", vs);
    if (nl == 0 || nl > 64)
        return cli_fail(CLI_EINPUT, "--values: 1 to 64 numbers (got %ld)", nl);
    size_t nv = (size_t)nl;
    for (size_t k = 0; k < nv; k++)
        if (!(vals[k] > 0) || (which == 0 && vals[k] != floor(vals[k])))
            return cli_fail(CLI_EINPUT, "--values: %s must be %s (got %g)", params[which],
                            which == 0 ? "a positive integer" : "> 0", vals[k]);
    cli_outputs files;
    cli_outputs_init(&files);
    FILE *fp = NULL;
    if ((rc = open_in(&files, dir, "sweep.dat", &fp))) {
        cli_outputs_abort(&files);
        return rc;
    }
    result *res = calloc(nv * R, sizeof *res);
    if (!res) {
        cli_outputs_abort(&files);
        return cli_fail(CLI_EINPUT, "out of memory");
    }
    cli_progress pr;
    cli_progress_start(&pr, "sweep", nv * R, quiet);
    for (size_t k = 0; k < nv && !rc; k++)
        for (size_t q = 0; q < R && !rc; q++) {
            settings t = s;
            if (which == 0)
                t.n = (size_t)vals[k];
            else if (which == 1)
                t.eps = vals[k];
            else
                t.dt = vals[k];
            rc = run_case(a, &t, c, seed + q, NULL, &res[k * R + q], 1);
            cli_progress_update(&pr, k * R + q + 1);
        }
    if (rc) /* run_case printed its error: end the progress line first */
        cli_progress_abort(&pr);
    else
        cli_progress_end(&pr);
    if (rc) {
        cli_outputs_abort(&files);
        free(res);
        return rc;
    }
    /* means over the seeds; errors: |relative variance-increment error|, L1, W */
    double mv[64], e_inc[64], e_l1[64], e_w[64], e_bias[64];
    for (size_t k = 0; k < nv; k++) {
        double si = 0, sa = 0, sl = 0, sw = 0;
        for (size_t q = 0; q < R; q++) {
            const result *r = &res[k * R + q];
            double rel = r->var_inc / r->pde_inc - 1;
            si += rel / (double)R;
            sa += fabs(rel) / (double)R;
            sl += r->l1 / (double)R;
            sw += (c->grid.d == 1 ? r->w2 : r->sw2) / (double)R;
        }
        mv[k] = vals[k];
        e_bias[k] = si;
        e_inc[k] = sa;
        e_l1[k] = sl;
        e_w[k] = sw;
    }
    write_meta(fp, a, &s, c, seed);
    if (s.pm_tol > 0)
        cli_pm_meta(fp, s.pm_tol, NULL); /* the grid differs from run to run */
    else
        af_write_meta(fp, "backend", "%s per run (auto: dense while it fits in 1/4 of the memory)",
                      cli_str(a, "backend", "auto"));
    af_write_meta(fp, "sweep", "%s over %zu values, %zu seeds each (seed .. seed + %zu)",
                  params[which], nv, R, R - 1);
    af_write_meta(fp, "slope_abs_rel_inc_err", "%.4f (least squares, log-log, means over seeds)",
                  loglog_slope(nv, mv, e_inc));
    af_write_meta(fp, "slope_l1", "%.4f", loglog_slope(nv, mv, e_l1));
    af_write_meta(fp, "slope_w", "%.4f (%s)", loglog_slope(nv, mv, e_w),
                  c->grid.d == 1 ? "W2" : "sliced W2");
    fputs("# block 0: one line per run; block 1: means over the seeds per value\n", fp);
    af_write_meta(fp, "var_inc_mf", "n -> infinity limit at this eps and dt -> 0 (Gaussian start, L2 "
                  "scores; else nan); mf_rel_inc_err = var_inc_mf / var_inc_pde - 1 is the O(eps) bias");
    if (s.integ == 0 && which == 0) { /* Euler, n sweep: one dt and eps for all runs */
        const double e = meanfield_inc(&s, c, s.T, 1);
        af_write_meta(fp, "var_inc_mf_euler", "%.10g: the same limit for Euler steps of dt (the "
                      "particle runs' own n -> infinity value; minus var_inc_mf: the O(dt) "
                      "time-stepping bias)", e);
    }
    fputs("# columns (block 0): value seed n eps dt var_inc var_inc_pde rel_inc_err l1 l2 w1 w2 "
          "sw2 bandwidth outside sk_iters seconds var_inc_mf delta_inc\n", fp);
    af_write_meta(fp, "delta_inc", "var_inc - var_inc at the first value with the same seed (same "
                  "initial cloud): for a dt sweep from the finest step, the time-stepping error");
    for (size_t k = 0; k < nv; k++)
        for (size_t q = 0; q < R; q++) {
            const result *r = &res[k * R + q];
            double row[] = {vals[k], (double)(seed + q),
                            which == 0 ? vals[k] : (double)s.n, which == 1 ? vals[k] : s.eps,
                            which == 2 ? vals[k] : s.dt, r->var_inc, r->pde_inc,
                            r->var_inc / r->pde_inc - 1, r->l1, r->l2, r->w1, r->w2, r->sw2,
                            r->bandwidth, (double)r->outside, (double)r->sk_iters, r->seconds,
                            r->mf_inc, r->var_inc - res[q].var_inc};
            for (size_t j = 0; j < sizeof row / sizeof row[0]; j++) {
                if (j)
                    fputc(' ', fp);
                af_write_double(fp, row[j]);
            }
            fputc('\n', fp);
        }
    fputs("\n\n# columns (block 1): value mean_rel_inc_err mean_abs_rel_inc_err mean_l1 mean_w "
          "mf_rel_inc_err mean_abs_delta_inc\n", fp);
    for (size_t k = 0; k < nv; k++) {
        const result *r0 = &res[k * R];
        double dl = 0;
        for (size_t q = 0; q < R; q++)
            dl += fabs(res[k * R + q].var_inc - res[q].var_inc) / (double)R;
        double row[] = {vals[k], e_bias[k], e_inc[k], e_l1[k], e_w[k], r0->mf_inc / r0->pde_inc - 1, dl};
        for (size_t j = 0; j < 7; j++) {
            if (j)
                fputc(' ', fp);
            af_write_double(fp, row[j]);
        }
        fputc('\n', fp);
    }
    free(res);
    if ((rc = cli_outputs_commit(&files, NULL)))
        return rc;
    printf("sweep=%s values=%zu repeats=%zu slope_abs_rel_inc_err=%.4f slope_l1=%.4f slope_w=%.4f\n",
           params[which], nv, R, loglog_slope(nv, mv, e_inc), loglog_slope(nv, mv, e_l1),
           loglog_slope(nv, mv, e_w));
    return 0;
}

static int compare_run(const cli_args *a)
{
    int rc, norm, sc, integ;
    settings s;
    unsigned long seed;
    memset(&s, 0, sizeof s);
    if ((rc = cli_size(a, "n", 800, &s.n)) || (rc = cli_ulong(a, "seed", 1, &seed))
        || (rc = cli_choice(a, "norm", norm_names, 1, &norm))
        || (rc = cli_choice(a, "scores", score_names, 1, &sc))
        || (rc = cli_choice(a, "integrator", integ_names, 0, &integ))
        || (rc = cli_positive(a, "eps", 0.05, &s.eps)) || (rc = cli_positive(a, "dt", 0.005, &s.dt))
        || (rc = cli_double(a, "T", 0.5, &s.T)) || (rc = cli_positive(a, "tol", 1e-9, &s.tol))
        || (rc = cli_size(a, "max-iters", 10000, &s.max_iters))
        || (rc = cli_double(a, "kappa", norm == AF_FLOW_SINKHORN ? 1.0 : 2.0, &s.kappa))
        || (rc = cli_positive(a, "bandwidth", 1.0, &s.bandwidth))
        || (rc = cli_size(a, "directions", 16, &s.directions))
        || (rc = cli_size(a, "save-every", 10, &s.save_every))
        || (rc = cli_size(a, "snapshots", 3, &s.snapshots))
        || (rc = cli_pm_options(a, &s.pm_tol)))
        return rc;
    if (s.T < 0 || s.kappa < 0)
        return cli_fail(CLI_EINPUT, "--T and --kappa must be >= 0 (got %g, %g)", s.T, s.kappa);
    size_t nsteps;
    if ((rc = cli_steps("--T / --dt", s.T, s.dt, 1e7, &nsteps)))
        return rc;
    s.norm = norm;
    s.scores = sc;
    s.integ = integ;
    s.bw_given = cli_given(a, "bandwidth");
    s.energy = !cli_flag(a, "no-energy");
    const char *dir = cli_str(a, "out", NULL);
    const int quiet = cli_flag(a, "quiet");
    if (cli_given(a, "sweep") && !dir)
        return cli_fail(CLI_EUSAGE, "--sweep needs --out DIR");
    if ((cli_given(a, "values") || cli_given(a, "repeats")) && !cli_given(a, "sweep"))
        return cli_fail(CLI_EUSAGE, "--values and --repeats go with --sweep");
    cli_density c;
    /* the box must hold the PDE solution up to kappa T, and the cloud */
    if ((rc = cli_density_read(a, s.kappa * s.T, &c))) {
        cli_density_free(&c);
        return rc;
    }
    s.d = c.grid.d;
    if (cli_given(a, "sweep")) {
        rc = sweep_run(a, s, &c, seed, dir, quiet);
        cli_density_free(&c);
        return rc;
    }
    outputs o = {NULL, NULL, NULL};
    cli_outputs files;
    cli_outputs_init(&files);
    result r;
    if (dir && ((rc = open_in(&files, dir, "errors.dat", &o.err))
                || (rc = open_in(&files, dir, "snapshots.dat", &o.snap))
                || (rc = open_in(&files, dir, "particles.dat", &o.part))))
        goto done;
    rc = run_case(a, &s, &c, seed, dir ? &o : NULL, &r, quiet);
    if (rc || (rc = cli_outputs_commit(&files, NULL)))
        goto done;
    printf("n=%zu d=%zu norm=%s scores=%s eps=%g dt=%g T=%g kappa=%g var_inc=%.6f var_inc_pde=%.6f "
           "var_inc_mf=%.6f ratio=%.4f l1=%.4g w=%.4g energy0=%.10g energy=%.10g outside=%zu sinkhorn_iters=%zu "
           "seconds=%.2f\n",
           s.n, s.d, norm_names[s.norm], score_names[s.scores], s.eps, s.dt, s.T, s.kappa, r.var_inc,
           r.pde_inc, r.mf_inc, r.var_inc / r.pde_inc, r.l1, s.d == 1 ? r.w2 : r.sw2, r.energy0, r.energy,
           r.outside, r.sk_iters, r.seconds);
done:
    cli_outputs_abort(&files);
    cli_density_free(&c);
    return rc;
}

const cli_command cli_cmd_compare = {
    "compare",
    "attention flow vs heat equation from the same initial density (error against time)",
    "[--density gaussian|mixture|uniform|grid] [--d 1|2] [--n N] [--norm sinkhorn|softmax]\n"
    "      [--scores l2|dot] [--eps E] [--dt H] [--T T] [--kappa K] [--out DIR]\n"
    "      [--sweep n|eps|dt --values 'a,b,...' [--repeats R]] [FILE.ini]",
    compare_opts,
    compare_run,
};
