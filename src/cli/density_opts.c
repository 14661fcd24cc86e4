/* Initial densities and PDE grids for `heat` and `compare`. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "attnflow/io.h"
#include "attnflow/metrics.h"
#include "density_opts.h"

void cli_density_free(cli_density *c)
{
    free(c->centres);
    free(c->weights);
    free(c->rho0);
    c->centres = c->weights = c->rho0 = NULL;
}

static int read_grid_file(const char *path, cli_density *c)
{
    double *table = NULL;
    size_t rows = 0, cols = 0;
    af_status st = af_read_grid_table(path, &table, &rows, &cols);
    if (st)
        return cli_fail_status(st);
    c->rho0 = malloc(rows * sizeof *c->rho0);
    if (!c->rho0) {
        free(table);
        return cli_fail(CLI_EINPUT, "out of memory");
    }
    st = af_grid_from_table(rows, cols, table, &c->grid, c->rho0);
    free(table);
    if (st)
        return cli_fail(CLI_EINPUT, "%s: %s", path, af_last_error());
    size_t M = af_grid_size(&c->grid);
    double mx = 0;
    for (size_t j = 0; j < M; j++) {
        if (!isfinite(c->rho0[j]))
            return cli_fail(CLI_EINPUT, "%s: the density is not finite at node %zu", path, j + 1);
        mx = fmax(mx, c->rho0[j]);
    }
    /* a density is >= 0: the PDE and the particle sampler then see the same
     * measure. Dips above -1e-6 max (round-off and aliasing of a resolved
     * spectral solution written by heat) are set to 0; deeper ones (a signed
     * function, Gibbs oscillations of an under-resolved grid) are an error. */
    for (size_t j = 0; j < M; j++) {
        if (c->rho0[j] < -1e-6 * mx)
            return cli_fail(CLI_EINPUT, "%s: the density is negative at node %zu (%g; max %g): "
                            "rho must be >= 0 (dips above -1e-6 max are taken as 0)", path, j + 1,
                            c->rho0[j], mx);
        if (c->rho0[j] < 0)
            c->rho0[j] = 0;
    }
    double mass = af_grid_mass(&c->grid, c->rho0);
    if (!(mass > 0) || !isfinite(mass))
        return cli_fail(CLI_EINPUT, "%s: the density has no positive finite mass", path);
    for (size_t j = 0; j < M; j++)
        c->rho0[j] /= mass; /* a probability density, like the particles */
    c->dens.d = c->grid.d;
    return 0;
}

int cli_density_read(const cli_args *a, double s_final, cli_density *c)
{
    static const char *const kinds[] = {"gaussian", "mixture", "uniform", "grid", NULL};
    memset(c, 0, sizeof *c);
    c->dens = af_density_default();
    int kind, rc;
    size_t d, K, N;
    double radius;
    if ((rc = cli_choice(a, "density", kinds, 0, &kind)) || (rc = cli_size(a, "d", 2, &d))
        || (rc = cli_positive(a, "sigma", 1.0, &c->dens.sigma))
        || (rc = cli_positive(a, "half-width", 1.0, &c->dens.half_width))
        || (rc = cli_size(a, "components", 3, &K)) || (rc = cli_double(a, "radius", 1.5, &radius))
        || (rc = cli_positive(a, "width", 0.5, &c->dens.width)))
        return rc;
    snprintf(c->name, sizeof c->name, "%s", kinds[kind]);
    if (kind == 3) {
        const char *path = cli_str(a, "grid-file", NULL);
        if (!path)
            return cli_fail(CLI_EUSAGE, "--density grid needs --grid-file FILE");
        if (cli_given(a, "N") || cli_given(a, "half"))
            return cli_fail(CLI_EUSAGE, "--density grid takes its grid from the file "
                                        "(no --N, --half)");
        c->is_grid = 1;
        return read_grid_file(path, c);
    }
    if (cli_given(a, "grid-file"))
        return cli_fail(CLI_EUSAGE, "--grid-file needs --density grid");
    if (d != 1 && d != 2)
        return cli_fail(CLI_EINPUT, "--d: the PDE solver works in 1 or 2 dimensions (got %zu)", d);
    c->dens.kind = kind == 0 ? AF_DENSITY_GAUSSIAN : kind == 1 ? AF_DENSITY_MIXTURE : AF_DENSITY_UNIFORM;
    c->dens.d = d;
    const char *m = cli_str(a, "mean", NULL);
    if (m) {
        long k = cli_parse_list(m, c->mean, 2);
        if (k == 1 && d == 2)
            c->mean[1] = c->mean[0];
        else if (k != (long)d)
            return cli_fail(CLI_EINPUT, "--mean: expected 1 or %zu numbers, got '%s'", d, m);
        c->dens.mean = c->mean;
    }
    if (c->dens.kind == AF_DENSITY_MIXTURE) {
        if (K > CLI_MAX_COMPONENTS)
            return cli_fail(CLI_EINPUT, "--components: at most %d (got %zu)", CLI_MAX_COMPONENTS, K);
        const char *cs = cli_str(a, "centres", NULL);
        if (cs) {
            double buf[64];
            long nk = cli_parse_list(cs, buf, 64);
            if (nk <= 0 || nk > 64 || (size_t)nk % d)
                return cli_fail(CLI_EINPUT, "--centres: expected groups of %zu numbers (at most 64 "
                                "numbers), got '%s'", d, cs);
            size_t k = (size_t)nk;
            K = k / d;
            c->centres = malloc(k * sizeof *c->centres);
            if (!c->centres)
                return cli_fail(CLI_EINPUT, "out of memory");
            memcpy(c->centres, buf, k * sizeof *buf);
        } else {
            c->centres = cli_alloc(K, d, sizeof *c->centres);
            if (!c->centres)
                return cli_fail(CLI_EINPUT, "out of memory");
            for (size_t k = 0; k < K; k++) {
                if (d == 2) {
                    double th = 2 * M_PI * (double)k / (double)K + M_PI / 2;
                    c->centres[2 * k] = radius * cos(th);
                    c->centres[2 * k + 1] = radius * sin(th);
                } else {
                    c->centres[k] = K == 1 ? 0 : -radius + 2 * radius * (double)k / (double)(K - 1);
                }
            }
        }
        c->dens.components = K;
        c->dens.centres = c->centres;
        const char *ws = cli_str(a, "weights", NULL);
        if (ws) {
            c->weights = cli_alloc(K, 1, sizeof *c->weights);
            if (!c->weights)
                return cli_fail(CLI_EINPUT, "out of memory");
            if (cli_parse_list(ws, c->weights, K) != (long)K)
                return cli_fail(CLI_EINPUT, "--weights: expected %zu numbers, got '%s'", K, ws);
            c->dens.weights = c->weights;
        }
    }
    if (af_density_check(&c->dens))
        return cli_fail(CLI_EINPUT, "%s", af_last_error());
    size_t Ndef = d == 1 ? 1024 : 256;
    double half = 0;
    if ((rc = cli_size(a, "N", Ndef, &N)))
        return rc;
    if (N < 8)
        return cli_fail(CLI_EINPUT, "--N: need at least 8 nodes (got %zu)", N);
    /* FFTW takes int sizes, and N^d doubles must be addressable */
    if (N > (d == 1 ? (size_t)INT_MAX / 2 : (size_t)32768))
        return cli_fail(CLI_EINPUT, "--N: at most %d nodes per coordinate in %zu-D (got %zu)",
                        d == 1 ? INT_MAX / 2 : 32768, d, N);
    if (cli_given(a, "half")) {
        if ((rc = cli_positive(a, "half", 1, &half)))
            return rc;
    } else {
        /* 8 standard deviations of the final solution beyond the centre:
         * the free-space mass outside is then ~1e-15 (Gaussian tails) */
        for (size_t k = 0; k < d; k++) {
            double ctr = fabs(c->dens.mean ? c->dens.mean[k] : 0);
            if (c->dens.kind == AF_DENSITY_MIXTURE) {
                for (size_t j = 0; j < c->dens.components; j++)
                    ctr = fmax(ctr, fabs(c->centres[j * d + k]));
                half = fmax(half, ctr + 8 * sqrt(c->dens.width * c->dens.width + 2 * s_final));
            } else if (c->dens.kind == AF_DENSITY_UNIFORM) {
                half = fmax(half, ctr + c->dens.half_width + 8 * sqrt(2 * s_final + 1e-2));
            } else {
                half = fmax(half, ctr + 8 * sqrt(af_density_variance(&c->dens, s_final, k)));
            }
        }
    }
    /* the initial density must be resolved: a box grown for a huge kappa T
     * (or a huge --half) with a spacing coarser than its smallest feature
     * samples it at one or no node, and the solution is meaningless */
    double scale = c->dens.kind == AF_DENSITY_MIXTURE ? c->dens.width
                   : c->dens.kind == AF_DENSITY_UNIFORM ? c->dens.half_width
                                                        : c->dens.sigma;
    double dx = 2 * half / (double)N;
    if (!isfinite(half) || !(dx <= 4 * scale)) /* coarse grids stay allowed: 4 scales a node */
        return cli_fail(CLI_EINPUT, "grid spacing %g (box half-width %g, --N %zu) is coarser than "
                        "4 x the initial density's scale %g: the box grows with kappa T = %g; lower "
                        "--T or --kappa, or raise --N", dx, half, N, scale, s_final);
    c->grid = af_grid_cube(d, N, half);
    return 0;
}

af_status cli_density_set(const cli_density *c, af_heat_plan *p)
{
    return c->is_grid ? af_heat_set(p, c->rho0) : af_heat_set_density(p, &c->dens);
}

af_status cli_density_initial(const cli_density *c, double *rho)
{
    if (c->is_grid) {
        memcpy(rho, c->rho0, af_grid_size(&c->grid) * sizeof *rho);
        return AF_SUCCESS;
    }
    return af_density_on_grid(&c->dens, 0, &c->grid, rho);
}

double cli_density_variance0(const cli_density *c, size_t coord)
{
    if (!c->is_grid)
        return af_density_variance(&c->dens, 0, coord);
    double mean[2], cov[4];
    if (af_grid_moments(&c->grid, c->rho0, 1, mean, cov))
        return NAN;
    return cov[coord * c->grid.d + coord];
}

/* "(x)" in 1-D, "(x, y)" in 2-D */
static const char *point(char *buf, size_t size, size_t d, const double *x)
{
    if (d == 1)
        snprintf(buf, size, "(%g)", x[0]);
    else
        snprintf(buf, size, "(%g, %g)", x[0], x[1]);
    return buf;
}

void cli_density_meta(const cli_density *c, FILE *fp)
{
    const af_density *p = &c->dens;
    size_t d = c->grid.d;
    char buf[512];
    if (c->is_grid) {
        af_write_meta(fp, "density", "grid (from file, normalised to mass 1)");
    } else if (p->kind == AF_DENSITY_GAUSSIAN) {
        af_write_meta(fp, "density", "gaussian N(m, sigma^2 I), m = %s, sigma = %g",
                      point(buf, sizeof buf, d, c->mean), p->sigma);
    } else if (p->kind == AF_DENSITY_UNIFORM) {
        af_write_meta(fp, "density", "uniform on [c - a, c + a]^d, c = %s, a = %g",
                      point(buf, sizeof buf, d, c->mean), p->half_width);
    } else {
        size_t len = 0;
        for (size_t k = 0; k < p->components && len < sizeof buf - 80; k++) {
            char pt[64];
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", k ? " " : "",
                                    point(pt, sizeof pt, d, p->centres + k * d));
        }
        af_write_meta(fp, "density", "mixture of %zu Gaussians of std %g, centres %s", p->components,
                      p->width, buf);
    }
    af_write_meta(fp, "d", "%zu", d);
    if (d == 1)
        af_write_meta(fp, "grid", "%zu nodes on the periodic box [%.17g, %.17g)", c->grid.N[0],
                      c->grid.lo[0], c->grid.lo[0] + c->grid.L[0]);
    else
        af_write_meta(fp, "grid", "%zu x %zu nodes on the periodic box [%.17g, %.17g) x [%.17g, %.17g)",
                      c->grid.N[0], c->grid.N[1], c->grid.lo[0], c->grid.lo[0] + c->grid.L[0],
                      c->grid.lo[1], c->grid.lo[1] + c->grid.L[1]);
}
