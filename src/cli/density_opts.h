/* Initial densities and PDE grids for the heat commands (heat, compare):
 *   --density gaussian|mixture|uniform|grid  [--d 1|2]
 *   gaussian: --mean --sigma;  uniform: --mean --half-width;
 *   mixture: --components --radius (centres equally spaced on a circle of
 *            that radius; 1-D: on [-R, R]) or --centres, --weights, --width;
 *   grid: --grid-file (rows 'x rho' or 'x1 x2 rho', or the columns a '# columns:'
 *         line names, 'rho' after the coordinates; the last block: a file written
 *         by `heat --out` reads back as its final snapshot; rho >= 0,
 *         dips above -1e-6 max set to 0);
 *   grid: --N nodes per coordinate, --half (box [-half, half)^d; default
 *         wide enough that the periodic wrap is negligible up to s = kappa T).
 * Put CLI_DENSITY_OPTS in a command's option table, then call cli_density_read(). */
#ifndef AF_CLI_DENSITY_OPTS_H
#define AF_CLI_DENSITY_OPTS_H

#include <stdio.h>
#include "attnflow/heat.h"
#include "cli.h"

/* Most mixture components (--components): each is summed at every grid node. */
#define CLI_MAX_COMPONENTS 65536

#define CLI_DENSITY_OPTS                                                                         \
    CLI_OPT("density", "KIND", "initial density gaussian|mixture|uniform|grid (default gaussian)"),        \
    CLI_OPT("d", "D", "dimension, 1 or 2 (default 2; grid: taken from the file)"),                      \
    CLI_OPT("mean", "M", "gaussian/uniform centre: one number or d numbers 'a,b' (default 0)"),         \
    CLI_OPT("sigma", "S", "gaussian: standard deviation per coordinate (default 1)"),                   \
    CLI_OPT("half-width", "A", "uniform: the square [c - a, c + a]^d (default 1)"),                     \
    CLI_OPT("components", "K", "mixture: number of components (default 3)"),                           \
    CLI_OPT("radius", "R", "mixture: centres equally spaced on a circle of radius R (1-D: on [-R, R]) (default 1.5)"), \
    CLI_OPT("centres", "LIST", "mixture: explicit centres 'x,y;x,y;...' (overrides --components, --radius)"), \
    CLI_OPT("weights", "LIST", "mixture: weights 'w1,w2,...' (default equal)"),                            \
    CLI_OPT("width", "W", "mixture: standard deviation of each component (default 0.5)"),               \
    CLI_OPT("grid-file", "FILE", "--density grid: rows 'x rho' (1-D) or 'x1 x2 rho' (2-D, x1 slow); last block of a heat --out file"),       \
    CLI_OPT("N", "N", "PDE grid nodes per coordinate (default 256 in 2-D, 1024 in 1-D)"),               \
    CLI_OPT("half", "H", "PDE box [-half, half)^d (default: mean + 8 std of the solution at the final time)")

typedef struct {
    int is_grid;          /* 1: from --grid-file (rho0 holds the node values) */
    af_density dens;      /* analytic kinds */
    double mean[2];
    double *centres, *weights;
    af_grid grid;
    double *rho0;         /* grid-file node values, else NULL */
    char name[16];
} cli_density;

/* Reads the options; the grid is sized for the solution up to s = kappa T.
 * Returns 0 or the exit status after a one-line error. */
int cli_density_read(const cli_args *a, double s_final, cli_density *out);
void cli_density_free(cli_density *c);
/* Sets the heat plan's initial condition (analytic spectrum or node values). */
af_status cli_density_set(const cli_density *c, af_heat_plan *p);
/* Initial node values on the grid (analytic: point values). */
af_status cli_density_initial(const cli_density *c, double *rho);
/* Per-coordinate variance of the initial density (grid: from the node values). */
double cli_density_variance0(const cli_density *c, size_t coord);
/* '# key: value' lines describing the density and the grid. */
void cli_density_meta(const cli_density *c, FILE *fp);

#endif
