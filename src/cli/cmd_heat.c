/* attnflow heat: solve d/dt rho = kappa Laplacian(rho) on a periodic box
 * (FFTW, exact per Fourier mode), write snapshots, check mass, the exact
 * solution (analytic densities) and the periodic wrap (docs/theory.md 5). */
#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "attnflow/heat.h"
#include "attnflow/io.h"
#include "attnflow/metrics.h"
#include "cli.h"
#include "density_opts.h"
#include "outputs.h"

static const cli_opt heat_opts[] = {
    CLI_DENSITY_OPTS,
    CLI_OPT("kappa", "K", "diffusion coefficient (default 1)"),
    CLI_OPT("T", "T", "final time (default 0.5)"),
    CLI_OPT("snapshots", "K", "number of saved times, equally spaced from 0 to T (default 5; 1: T only)"),
    CLI_OPT("fftw", "KIND", "FFTW planning estimate|measure (default estimate)"),
    CLI_FLAG("node-start", "start from the node values of an analytic density instead of its exact spectrum"),
    CLI_OUT("out", "FILE", "snapshot file: one block per time, columns x1 [x2] rho [exact]"),
    CLI_END,
};

static void write_block(FILE *fp, const af_grid *g, double t, const double *rho, const double *ex,
                        int first)
{
    if (!first)
        fputs("\n\n", fp);
    fprintf(fp, "# t: %.17g\n", t);
    size_t M = af_grid_size(g), N1 = g->d == 2 ? g->N[1] : 0;
    for (size_t j = 0; j < M; j++) {
        double x[2];
        af_grid_node(g, j, x);
        if (g->d == 2 && j > 0 && j % N1 == 0)
            fputc('\n', fp); /* gnuplot grid rows */
        for (size_t k = 0; k < g->d; k++) {
            af_write_double(fp, x[k]);
            fputc(' ', fp);
        }
        af_write_double(fp, rho[j]);
        if (ex) {
            fputc(' ', fp);
            af_write_double(fp, ex[j]);
        }
        fputc('\n', fp);
    }
}

static int heat_run(const cli_args *a)
{
    static const char *const plans[] = {"estimate", "measure", NULL};
    double kappa, T;
    size_t S;
    int plan_kind, rc;
    if ((rc = cli_double(a, "kappa", 1.0, &kappa)) || (rc = cli_double(a, "T", 0.5, &T))
        || (rc = cli_size(a, "snapshots", 5, &S)) || (rc = cli_choice(a, "fftw", plans, 0, &plan_kind)))
        return rc;
    if (kappa < 0 || T < 0)
        return cli_fail(CLI_EINPUT, "--kappa and --T must be >= 0 (got %g, %g)", kappa, T);
    if (S > 100000)
        return cli_fail(CLI_EINPUT, "--snapshots: at most 100000 (got %zu)", S);
    cli_outputs files;
    cli_outputs_init(&files);
    FILE *out = NULL;
    const char *path = cli_str(a, "out", NULL);
    if (path && (rc = cli_outputs_open(&files, "out", path, &out)))
        return rc;
    cli_density c;
    if ((rc = cli_density_read(a, kappa * T, &c))) {
        cli_outputs_abort(&files);
        cli_density_free(&c);
        return rc;
    }
    const af_grid *g = &c.grid;
    size_t M = af_grid_size(g);
    double *rho = malloc(M * sizeof *rho), *ex = c.is_grid ? NULL : malloc(M * sizeof *ex),
           *rho0 = malloc(M * sizeof *rho0);
    af_heat_plan *plan = NULL;
    if (!rho || !rho0 || (!c.is_grid && !ex)) {
        rc = cli_fail(CLI_EINPUT, "out of memory for a grid of %zu nodes", M);
        goto done;
    }
    double t0 = cli_now();
    af_clear_error(); /* a NULL plan then reports this call's own message */
    plan = af_heat_plan_alloc(g, plan_kind ? FFTW_MEASURE : FFTW_ESTIMATE);
    double t_plan = cli_now() - t0;
    if (!plan) {
        rc = cli_fail_alloc("heat");
        goto done;
    }
    af_status st;
    const int node_start = cli_flag(a, "node-start") || c.is_grid;
    if ((st = cli_density_initial(&c, rho0))
        || (st = node_start ? af_heat_set(plan, rho0) : cli_density_set(&c, plan))) {
        rc = cli_fail_status(st);
        goto done;
    }
    if (out) {
        FILE *fp = out;
        af_write_header(fp, a->command_line);
        cli_density_meta(&c, fp);
        af_write_meta(fp, "equation", "d/dt rho = kappa Laplacian(rho), kappa = %.17g", kappa);
        af_write_meta(fp, "method", "FFTW real transforms, each Fourier mode multiplied by "
                                    "exp(-kappa |xi|^2 t); %s initial spectrum",
                      node_start ? "node values'" : "closed-form");
        af_write_meta(fp, "exact", "%s", c.is_grid ? "not available (grid density)"
                                                   : "free-space solution in closed form");
        fputs("# blocks: one per time (gnuplot index), each preceded by '# t: value'\n", fp);
        fprintf(fp, "# columns: %s rho%s\n", g->d == 1 ? "x" : "x1 x2", c.is_grid ? "" : " exact");
    }
    double max_err = 0, max_mass_dev = 0, mass0 = af_heat_initial_mass(plan), t_solve = 0;
    double var_err = 0;
    if (!isfinite(mass0)) {
        rc = cli_fail(CLI_EINPUT, "the initial mass is not finite (%g): grid or density out of "
                      "range", mass0);
        goto done;
    }
    size_t nt = S < 2 ? 1 : S;
    for (size_t k = 0; k < nt; k++) {
        double t = nt == 1 ? T : T * (double)k / (double)(nt - 1);
        double t1 = cli_now();
        if ((st = af_heat_evolve(plan, kappa, t, rho))) {
            rc = cli_fail_status(st);
            goto done;
        }
        t_solve += cli_now() - t1;
        if ((st = af_check_finite("heat: solution", M, rho))) {
            rc = cli_fail(CLI_EINPUT, "t = %g: %s", t, af_last_error());
            goto done;
        }
        max_mass_dev = fmax(max_mass_dev, fabs(af_grid_mass(g, rho) - mass0));
        if (!c.is_grid) {
            af_density_on_grid(&c.dens, kappa * t, g, ex);
            /* t = 0 of a discontinuous density: its Fourier series is not
             * pointwise exact (Gibbs); compare from t > 0 there */
            if (t > 0 || c.dens.kind != AF_DENSITY_UNIFORM)
                for (size_t j = 0; j < M; j++)
                    max_err = fmax(max_err, fabs(rho[j] - ex[j]));
            double mean[2], cov[4];
            if (af_grid_moments(g, rho, 0, mean, cov) == AF_SUCCESS)
                for (size_t q = 0; q < g->d; q++)
                    var_err = fmax(var_err, fabs(cov[q * g->d + q]
                                                 - af_density_variance(&c.dens, kappa * t, q)));
        }
        if (out)
            write_block(out, g, t, rho, ex, k == 0);
    }
    double wrap_l1 = NAN, wrap_max = NAN;
    if ((st = af_heat_wrap_error(g, rho0, kappa, T, &wrap_l1, &wrap_max))) {
        rc = cli_fail_status(st);
        goto done;
    }
    if (out) {
        FILE *fp = out;
        fputs("\n", fp);
        af_write_meta(fp, "mass", "%.17g at t = 0, max deviation %.3g over the snapshots", mass0,
                      max_mass_dev);
        if (!c.is_grid)
            af_write_meta(fp, "max_error_vs_exact", "%.3g", max_err);
        af_write_meta(fp, "wrap_check", "L1 %.3g, max %.3g: solution on this box minus the one on "
                      "a box twice as large (same spacing), at t = T", wrap_l1, wrap_max);
    }
    if ((rc = cli_outputs_commit(&files, NULL)))
        goto done;
    char gs[64];
    if (g->d == 2)
        snprintf(gs, sizeof gs, "%zux%zu", g->N[0], g->N[1]);
    else
        snprintf(gs, sizeof gs, "%zu", g->N[0]);
    printf("d=%zu grid=%s half=%g kappa=%g T=%g density=%s mass=%.15g mass_dev=%.3g "
           "max_err=%.3g var_err=%.3g wrap_l1=%.3g wrap_max=%.3g plan_seconds=%.4f "
           "solve_seconds=%.6f\n",
           g->d, gs, 0.5 * g->L[0],
           kappa, T, c.name, mass0, max_mass_dev, c.is_grid ? NAN : max_err,
           c.is_grid ? NAN : var_err, wrap_l1, wrap_max, t_plan, t_solve / (double)nt);
    rc = 0;
done:
    cli_outputs_abort(&files);
    af_heat_plan_free(plan);
    free(rho);
    free(rho0);
    free(ex);
    cli_density_free(&c);
    return rc;
}

const cli_command cli_cmd_heat = {
    "heat",
    "solve the heat equation on a periodic box (FFTW), with exact and wrap checks",
    "[--density gaussian|mixture|uniform|grid] [--d 1|2] [--kappa K] [--T T] [--N N] [--half H]\n"
    "      [--snapshots S] [--out FILE] [FILE.ini]",
    heat_opts,
    heat_run,
};
