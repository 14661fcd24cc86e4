/* attnflow flow: evolve a token cloud under self-attention, write the
 * trajectory and a table of observables (docs/cli.md, issue 4). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "attnflow/flow.h"
#include "attnflow/io.h"
#include "attnflow/observables.h"
#include "backend_opts.h"
#include "cli.h"
#include "outputs.h"
#include "pm_opts.h"
#include "mpi_comm.h"
#include "tokens.h"

static const cli_opt flow_opts[] = {
    CLI_TOKEN_OPTS,
    CLI_OPT("norm", "KIND", "attention normalisation softmax|sinkhorn (default softmax, the "
                           "Transformer layer; attention and compare default to sinkhorn)"),
    CLI_OPT("scores", "KIND", "dot: beta x^T A y / eps, l2: -beta |x-y|^2 / (2 eps) (default dot)"),
    CLI_OPT("eps", "E", "temperature eps > 0 (default 1)"),
    CLI_OPT("beta", "B", "inverse temperature beta (default 1)"),
    CLI_OPT("A", "MATRIX", "d x d score matrix: a FILE, or rows inline 'a,b;c,d' (default identity)"),
    CLI_OPT("V", "MATRIX", "d x d value matrix W_V: a FILE, or rows inline 'a,b;c,d' (default identity)"),
    CLI_OPT("value", "S", "W_V = s I (default 1); excludes --V"),
    CLI_FLAG("skip", "velocity W_V (sum_j K_ij x_j - x_i) instead of sum_j K_ij W_V x_j"),
    CLI_FLAG("usa", "unnormalised attention, Z_i = n instead of the row sum (SoftMax only)"),
    CLI_FLAG("pure", "pure attention layers X <- K(X) X W_V^T, no residual (each step counts dt)"),
    CLI_OPT("geometry", "KIND", "euclid|sphere (sphere: tangent projection, |x_i| = 1) (default euclid)"),
    CLI_OPT("T", "T", "final time (default 1)"),
    CLI_OPT("dt", "H", "time step; adaptive: output step (default 0.01)"),
    CLI_OPT("integrator", "KIND", "euler|heun|rk4|adaptive (default rk4)"),
    CLI_OPT("atol", "TOL", "adaptive: absolute tolerance (default 1e-8)"),
    CLI_OPT("rtol", "TOL", "adaptive: relative tolerance (default 1e-8)"),
    CLI_OPT("tol", "TOL", "Sinkhorn tolerance at every velocity evaluation (default 1e-9)"),
    CLI_OPT("max-iters", "N", "Sinkhorn iteration bound per evaluation (default 10000)"),
    CLI_OPT("iters", "N", "Sinkhorn: exactly N normalisations per evaluation (1 = SoftMax)"),
    CLI_OPT("warm", "KIND", "Sinkhorn start: none|last|extrapolate (default extrapolate: cubic in t, last 4 solves)"),
    CLI_OPT("save-every", "K", "save every K steps (t = 0 and T always) (default 1)"),
    CLI_OUT("out", "FILE", "trajectory file: blocks 't i x_1 ... x_d' per saved time"),
    CLI_OUT("observables", "FILE", "observables file: one line per saved time"),
    CLI_OPT("cluster-tol", "TOL", "distance below which tokens count as one cluster (default 1e-3)"),
    CLI_FLAG("no-energy", "skip the Sinkhorn OT energy (saves one Sinkhorn solve per saved step)"),
    CLI_BACKEND_OPTS,
    CLI_END,
};

typedef struct {
    FILE *traj, *obs; /* temporaries of --out and --observables (outputs.h), or NULL */
    af_obs_ws *ow;
    double *mean;
} outputs;

static void write_traj_block(FILE *fp, int first, double t, size_t n, size_t d, const double *X)
{
    if (!first)
        fputs("\n\n", fp);
    for (size_t i = 0; i < n; i++) {
        af_write_double(fp, t);
        fprintf(fp, " %zu", i);
        for (size_t k = 0; k < d; k++) {
            fputc(' ', fp);
            af_write_double(fp, X[i * d + k]);
        }
        fputc('\n', fp);
    }
}

static af_status write_obs_line(outputs *o, double t, size_t step, double sk_iters,
                                size_t evals, size_t n, size_t d, const double *X)
{
    af_obs_values v;
    af_status st = af_obs_compute(o->ow, X, o->mean, &v);
    if (st)
        return st;
    FILE *fp = o->obs;
    af_write_double(fp, t);
    for (size_t k = 0; k < d; k++) {
        fputc(' ', fp);
        af_write_double(fp, o->mean[k]);
    }
    const double vals[] = {v.var, v.energy, v.colsum_err, v.rank_res};
    for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
        fputc(' ', fp);
        af_write_double(fp, vals[k]);
    }
    fprintf(fp, " %zu ", v.clusters);
    af_write_double(fp, v.min_dist);
    fputc(' ', fp);
    af_write_double(fp, v.max_ip);
    fprintf(fp, " %zu ", step);
    af_write_double(fp, sk_iters);
    fprintf(fp, " %zu\n", evals);
    (void)n;
    return AF_SUCCESS;
}

static void write_meta(FILE *fp, const cli_args *a, const af_flow_params *p, double T, double dt,
                       size_t save_every, int pure)
{
    af_write_header(fp, a->command_line);
    cli_tokens_meta(a, fp);
    af_write_meta(fp, "n", "%zu", p->n);
    af_write_meta(fp, "d", "%zu", p->d);
    af_write_meta(fp, "norm", "%s%s", p->norm == AF_FLOW_SINKHORN ? "sinkhorn" : "softmax",
                  p->usa ? " (USA: Z_i = n)" : "");
    af_write_meta(fp, "scores", "%s", p->scores.kind == AF_SCORES_DOT ? "dot" : "l2");
    af_write_meta(fp, "eps", "%.17g", p->scores.eps);
    af_write_meta(fp, "beta", "%.17g", p->scores.beta);
    af_write_meta(fp, "A", "%s", cli_str(a, "A", "identity"));
    if (p->V)
        af_write_meta(fp, "W_V", "%s", cli_str(a, "V", "?"));
    else
        af_write_meta(fp, "W_V", "%.17g I", p->value);
    af_write_meta(fp, "velocity", "%s", pure ? "pure attention layers X <- K X W_V^T"
                                        : p->skip ? "W_V (sum_j K_ij x_j - x_i)"
                                                  : "sum_j K_ij W_V x_j");
    af_write_meta(fp, "geometry", "%s", p->geometry == AF_FLOW_SPHERE ? "sphere" : "euclid");
    af_write_meta(fp, "integrator", "%s", pure ? "none (pure layers)"
                                               : af_flow_integrator_name(p->integrator));
    af_write_meta(fp, "T", "%.17g", T);
    af_write_meta(fp, "dt", "%.17g", dt);
    af_write_meta(fp, "save_every", "%zu", save_every);
    if (p->norm == AF_FLOW_SINKHORN) {
        if (p->sinkhorn.iters)
            af_write_meta(fp, "sinkhorn", "%zu normalisations per evaluation", p->sinkhorn.iters);
        else
            af_write_meta(fp, "sinkhorn", "tol %.3g, max %zu iterations, %s", p->sinkhorn.tol,
                          p->sinkhorn.max_iters,
                          p->warm_start == 0   ? "cold starts"
                          : p->warm_start == 1 ? "warm starts from the last potentials"
                                               : "warm starts extrapolated in time");
    }
}

/* Whether F_n is a Lyapunov function of this flow (docs/theory.md 4). */
static const char *energy_note(const af_flow_params *p, int pure)
{
    if (p->scores.kind == AF_SCORES_DOT && !af_matrix_is_symmetric(p->d, p->scores.A))
        return "undefined (A not symmetric): nan";
    if (p->norm != AF_FLOW_SINKHORN || pure || p->geometry != AF_FLOW_EUCLID)
        return "F_n = OT_eps(mu, mu)/2 for the cost -C (not a Lyapunov function of this flow)";
    const double s = p->scores.beta / p->scores.eps;
    int match = 0;
    if (p->scores.kind == AF_SCORES_DOT && !p->skip) {
        match = 1;
        for (size_t i = 0; i < p->d && match; i++)
            for (size_t j = 0; j < p->d && match; j++) {
                double a = p->scores.A ? p->scores.A[i * p->d + j] : (i == j);
                double v = p->V ? p->V[i * p->d + j] : (i == j) * p->value;
                match = fabs(v - s * a) <= 1e-12 * (1 + fabs(s * a));
            }
    } else if (p->scores.kind == AF_SCORES_L2 && p->skip && !p->V) {
        match = fabs(p->value - s) <= 1e-12 * (1 + fabs(s));
    }
    return match ? "F_n = OT_eps(mu, mu)/2 for the cost -C (Lyapunov: W_V = beta A / eps, "
                   "the flow is its Wasserstein gradient flow)"
                 : "F_n = OT_eps(mu, mu)/2 for the cost -C (not a Lyapunov function: "
                   "W_V != beta A / eps)";
}

static int flow_run(const cli_args *a)
{
    static const char *const norms[] = {"softmax", "sinkhorn", NULL};
    static const char *const scores[] = {"dot", "l2", NULL};
    static const char *const geoms[] = {"euclid", "sphere", NULL};
    static const char *const integs[] = {"euler", "heun", "rk4", "adaptive", NULL};
    int norm, sc, geom, integ, rc;
    double eps, beta, value, T, dt, atol, rtol, tol, ctol;
    size_t save_every, max_iters;
    unsigned long iters;
    const int pure = cli_flag(a, "pure"), quiet = cli_flag(a, "quiet");
    int agreed = 0; /* a failure was agreed on: done needs no agreement */
    if ((rc = cli_choice(a, "norm", norms, 0, &norm)) || (rc = cli_choice(a, "scores", scores, 0, &sc))
        || (rc = cli_choice(a, "geometry", geoms, 0, &geom))
        || (rc = cli_choice(a, "integrator", integs, 2, &integ))
        || (rc = cli_positive(a, "eps", 1.0, &eps)) || (rc = cli_double(a, "beta", 1.0, &beta))
        || (rc = cli_double(a, "value", 1.0, &value)) || (rc = cli_double(a, "T", 1.0, &T))
        || (rc = cli_positive(a, "dt", 0.01, &dt)) || (rc = cli_positive(a, "atol", 1e-8, &atol))
        || (rc = cli_positive(a, "rtol", 1e-8, &rtol)) || (rc = cli_positive(a, "tol", 1e-9, &tol))
        || (rc = cli_size(a, "max-iters", 10000, &max_iters))
        || (rc = cli_ulong(a, "iters", 0, &iters))
        || (rc = cli_size(a, "save-every", 1, &save_every))
        || (rc = cli_double(a, "cluster-tol", 1e-3, &ctol)))
        return rc;
    if (T < 0)
        return cli_fail(CLI_EINPUT, "--T: must be >= 0 (got %g)", T);
    if (ctol < 0)
        return cli_fail(CLI_EINPUT, "--cluster-tol: must be >= 0 (got %g)", ctol);
    if (cli_given(a, "V") && cli_given(a, "value"))
        return cli_fail(CLI_EUSAGE, "--V and --value exclude each other");
    if (cli_given(a, "iters") && iters == 0)
        return cli_fail(CLI_EINPUT, "--iters: must be >= 1");
    static const char *const warms[] = {"none", "last", "extrapolate", NULL};
    int warm;
    if ((rc = cli_choice(a, "warm", warms, 2, &warm)))
        return rc;
    if (norm != AF_FLOW_SINKHORN && (cli_given(a, "iters") || cli_given(a, "warm")))
        return cli_fail(CLI_EUSAGE, "--iters and --warm apply to --norm sinkhorn only");
    if (cli_flag(a, "usa") && norm != AF_FLOW_SOFTMAX)
        return cli_fail(CLI_EUSAGE, "--usa is a SoftMax variant (Z_i = n); Sinkhorn normalises "
                                    "rows and columns by construction");
    if (pure && (cli_given(a, "integrator") || cli_flag(a, "skip")))
        return cli_fail(CLI_EUSAGE, "--pure excludes --integrator and --skip");
    size_t nsteps;
    if ((rc = cli_steps("--T / --dt", T, dt, 1e9, &nsteps)))
        return rc;
    double pm_tol;
    if ((rc = cli_pm_options(a, &pm_tol)))
        return rc;

    /* the output files first (under mpirun rank 0 alone writes them): a
     * clash or an unwritable path fails before any work */
    cli_outputs files;
    cli_outputs_init(&files);
    outputs o = {NULL, NULL, NULL, NULL};
    const char *obs_path = cli_mpi_root() ? cli_str(a, "observables", NULL) : NULL,
               *traj_path = cli_mpi_root() ? cli_str(a, "out", NULL) : NULL;
    if (traj_path)
        rc = cli_outputs_open(&files, "out", traj_path, &o.traj);
    if (!rc && obs_path)
        rc = cli_outputs_open(&files, "observables", obs_path, &o.obs);
    /* Under mpirun, rank 0 reads (or draws) the inputs and broadcasts them. */
    double *X = NULL, *A = NULL, *V = NULL;
    size_t n = 0, d = 0, ad[2] = {0, 0}, vd[2] = {0, 0};
    if ((rc = cli_mpi_share(rc ? rc : cli_mpi_root() ? cli_tokens(a, &X, &n, &d) : 0, &X, &n, &d))) {
        cli_outputs_abort(&files);
        return rc;
    }
    ad[0] = ad[1] = vd[0] = vd[1] = d;
    cli_backend_choice bk;
    const af_attn_norm an = norm == AF_FLOW_SINKHORN ? AF_ATTN_SINKHORN
                            : cli_flag(a, "usa")     ? AF_ATTN_USA
                                                     : AF_ATTN_SOFTMAX;
    if ((rc = cli_mpi_share(cli_mpi_root() ? cli_square_matrix(a, "A", d, &A) : 0, &A, ad, ad + 1))
        || (rc = cli_mpi_share(cli_mpi_root() ? cli_square_matrix(a, "V", d, &V) : 0, &V, vd, vd + 1))
        || (rc = cli_backend(a, n, d, an, &bk))
        || (bk.pm && cli_mpi_size() > 1
            && (rc = cli_fail(CLI_EUSAGE, "--backend pm runs on one process (mpirun: use "
                                          "--backend tiled)")))) {
        cli_outputs_abort(&files);
        free(X);
        free(A);
        free(V);
        return rc;
    }

    /* Below ~500 tokens a thread team costs more than the O(n^2) work it
     * shares (and far more on a loaded machine): run those on one thread. */
    if (n < 512)
        omp_set_num_threads(1);

    af_flow_params p = af_flow_params_default(n, d);
    p.norm = (af_flow_norm)norm;
    p.scores.kind = (af_scores_kind)sc;
    p.scores.eps = eps;
    p.scores.beta = beta;
    p.scores.A = A;
    p.V = V;
    p.value = value;
    p.skip = cli_flag(a, "skip");
    p.usa = cli_flag(a, "usa");
    p.geometry = (af_flow_geometry)geom;
    p.integrator = (af_flow_integrator)integ;
    p.atol = atol;
    p.rtol = rtol;
    p.sinkhorn.tol = tol;
    p.sinkhorn.max_iters = max_iters;
    p.sinkhorn.iters = iters;
    p.warm_start = warm;
    p.pm_tol = pm_tol;
    p.backend = bk.type;
    p.precision = bk.precision;
    p.comm = cli_mpi_comm();

    af_clear_error(); /* so a NULL below reports this call's message, not a stale one */
    af_flow_ws *ws = af_flow_alloc(&p);
    af_status st = AF_SUCCESS;
    /* invalid parameters or out of memory (maybe on one rank): the library's message says which */
    if ((rc = cli_mpi_agree(ws ? 0 : cli_fail_alloc("flow")))) {
        agreed = 1;
        goto done;
    }
    if ((st = af_flow_project(ws, X))) {
        rc = cli_fail_status(st);
        goto done;
    }
    af_pm_info pmi; /* the grid of the initial cloud (it follows the cloud later) */
    if (pm_tol > 0 && (st = cli_pm_probe(n, d, X, &p.scores, pm_tol, &pmi))) {
        rc = cli_fail_status(st);
        goto done;
    }
    if (obs_path) {
        af_obs_params op = af_obs_params_default(n, d);
        op.scores = p.scores;
        op.cluster_tol = ctol;
        op.energy = !cli_flag(a, "no-energy");
        op.sinkhorn.tol = tol;
        op.sinkhorn.max_iters = max_iters;
        op.backend = bk.type;
        af_clear_error();
        o.ow = af_obs_alloc(&op);
        o.mean = malloc(d * sizeof *o.mean);
        if (!o.ow || !o.mean) {
            rc = o.ow ? cli_fail(CLI_EINPUT, "out of memory") : cli_fail_alloc("observables");
            goto done;
        }
    }
    const af_flow_params *pp = af_flow_get_params(ws);
    if (o.traj) {
        FILE *fp = o.traj;
        write_meta(fp, a, pp, T, dt, save_every, pure);
        cli_backend_meta(fp, &bk);
        cli_pm_meta(fp, pm_tol, &pmi);
        fputs("# blocks: one per saved time (gnuplot index), tokens i = 0..n-1\n", fp);
        fprintf(fp, "# columns: t i");
        for (size_t k = 1; k <= d; k++)
            fprintf(fp, " x%zu", k);
        fputc('\n', fp);
    }
    if (o.obs) {
        FILE *fp = o.obs;
        write_meta(fp, a, pp, T, dt, save_every, pure);
        cli_backend_meta(fp, &bk);
        cli_pm_meta(fp, pm_tol, &pmi);
        af_write_meta(fp, "energy", "%s", cli_flag(a, "no-energy") ? "not computed (--no-energy): nan"
                                                                   : energy_note(pp, pure));
        af_write_meta(fp, "var", "mean per-coordinate variance (1/(n d)) sum_ik (x_ik - m_k)^2");
        af_write_meta(fp, "colsum_err", "max_j |sum_i K_ij - 1| of the SoftMax matrix of X");
        af_write_meta(fp, "rank_res", "|X - 1 m^T|_F / |X|_F");
        af_write_meta(fp, "clusters", "components of |x_i - x_j| <= %g", ctol);
        af_write_meta(fp, "sk_iters", "mean Sinkhorn normalisations per velocity evaluation "
                                      "since the previous line; evals: evaluations so far");
        fprintf(fp, "# columns: t");
        for (size_t k = 1; k <= d; k++)
            fprintf(fp, " mean_%zu", k);
        fprintf(fp, " var energy colsum_err rank_res clusters min_dist max_ip step sk_iters evals\n");
    }

    cli_progress pr;
    cli_progress_start(&pr, "flow", nsteps, quiet);
    af_flow_stats stats, prev = {0};
    double t = 0, t_saved = 0;
    char stop[1200] = ""; /* why the run stopped early: the files' '# status:' */
    if (o.obs && (st = write_obs_line(&o, 0.0, 0, 0.0, 0, n, d, X))) {
        rc = cli_fail(CLI_EINPUT, "observables at t = 0: %s", af_last_error());
        goto done;
    }
    if (o.traj)
        write_traj_block(o.traj, 1, 0.0, n, d, X);
    if ((rc = cli_mpi_agree(0))) { /* rank 0's outputs are open */
        agreed = 1;
        goto done;
    }
    /* a signal ends the loop at the next step (on every rank alike); the
     * files keep what was saved */
    cli_stop_polling(1);
    for (size_t s = 1; s <= nsteps && !stop[0]; s++) {
        if (cli_mpi_any(cli_stop_requested() != 0)) {
            snprintf(stop, sizeof stop, "interrupted");
            break;
        }
        const double t_next = s == nsteps ? T : (double)s * dt;
        st = pure ? af_flow_pure_layer(ws, X) : af_flow_step(ws, X, t_next - t);
        if (st) {
            snprintf(stop, sizeof stop, "stopped at t = %.17g: step %zu: %s", t, s,
                     af_last_error());
            break;
        }
        t = t_next;
        cli_progress_update(&pr, s);
        if (s % save_every == 0 || s == nsteps) {
            af_flow_get_stats(ws, &stats);
            size_t de = stats.evaluations - prev.evaluations;
            double mean_it = de ? (double)(stats.sinkhorn_iterations - prev.sinkhorn_iterations)
                                      / (double)de
                                : 0.0;
            prev = stats;
            /* observables first: if they fail, neither file gets this time */
            if (o.obs && (st = write_obs_line(&o, t, s, mean_it, stats.evaluations, n, d, X)))
                snprintf(stop, sizeof stop, "stopped at t = %.17g: step %zu: observables: %s", t,
                         s, af_last_error());
            /* under mpirun only rank 0 computes observables: all ranks stop together */
            if (cli_mpi_any(stop[0] != 0)) {
                if (!stop[0])
                    snprintf(stop, sizeof stop, "stopped at t = %.17g: step %zu: rank 0 failed", t, s);
                break;
            }
            if (o.traj)
                write_traj_block(o.traj, 0, t, n, d, X);
            t_saved = t;
        }
    }
    cli_stop_polling(0);
    if (stop[0]) {
        cli_progress_abort(&pr);
        if (!traj_path && !obs_path) {
            rc = cli_fail(CLI_ESTOPPED, "%s", stop);
            goto done;
        }
        /* the complete files up to the last saved time, and why they end there */
        if ((rc = cli_outputs_commit(&files, stop)))
            goto done;
        rc = cli_fail(CLI_ESTOPPED, "%s; the output files end at the last saved time t = %.17g "
                      "('# status:' line)", stop, t_saved);
        goto done;
    }
    cli_progress_end(&pr);
    if ((rc = cli_outputs_commit(&files, NULL)))
        goto done;
    if (!traj_path && !obs_path) {
        af_flow_get_stats(ws, &stats);
        printf("n=%zu d=%zu norm=%s backend=%s steps=%zu evals=%zu sinkhorn_iters=%zu T=%g "
               "var=%.10g rank_res=%.10g seconds=%.3f\n",
               n, d, norm ? "sinkhorn" : "softmax", bk.pm ? "pm" : af_backend_name(bk.type), stats.steps,
               stats.evaluations,
               stats.sinkhorn_iterations, T, af_obs_variance(n, d, X),
               af_obs_rank_residual(n, d, X), cli_now() - pr.t0);
        if (cli_mpi_size() > 1) /* what rank 0 handed to MPI (make bench) */
            printf("mpi: ranks=%d bytes_sent_rank0=%.0f\n", cli_mpi_size(), cli_mpi_bytes_sent());
    }
    rc = 0;
done:
    if (!agreed) /* every rank passes here once: the last agreement */
        rc = cli_mpi_agree(rc);
    cli_outputs_abort(&files);
    af_obs_free(o.ow);
    free(o.mean);
    af_flow_free(ws);
    free(X);
    free(A);
    free(V);
    return rc;
}

const cli_command cli_cmd_flow = {
    "flow",
    "evolve a token cloud under SoftMax or Sinkhorn self-attention",
    "(--tokens FILE | --init KIND --n N --d D [--rho0 R] [--seed S]) [--norm softmax|sinkhorn]\n"
    "      [--scores dot|l2] [--eps E] [--beta B] [--A MATRIX] [--V MATRIX | --value S] [--skip]\n"
    "      [--usa] [--pure] [--geometry euclid|sphere] [--T T] [--dt H]\n"
    "      [--integrator euler|heun|rk4|adaptive] [--save-every K] [--out TRAJ]\n"
    "      [--observables OBS] [FILE.ini]",
    flow_opts,
    flow_run,
};
