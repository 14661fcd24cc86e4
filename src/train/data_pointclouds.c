/* Synthetic 3-D point clouds for the shape-classification task: points on
 * six surfaces, randomly scaled, rotated (Haar) and perturbed. Every draw
 * comes from the caller's gsl_rng, in a fixed order, so a seed fixes the set. */
#include <math.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include "attnflow/train.h"

af_status af__dataset_alloc(af_dataset *ds, size_t n, size_t n_tok, size_t in_dim,
                            size_t classes);

static const char *const class_names[AF_POINTCLOUD_CLASSES] = {
    "sphere", "torus", "cube", "cylinder", "cone", "ellipsoid"};

const char *af_pointcloud_class_name(int k)
{
    return k >= 0 && k < AF_POINTCLOUD_CLASSES ? class_names[k] : "?";
}

af_pointcloud_options af_pointcloud_options_default(void)
{
    return (af_pointcloud_options){.n_points = 128, .noise = 0.1, .scale_jitter = 0.3};
}

/* One point on shape k, all shapes of comparable extent (about [-1, 1]). */
static void shape_point(int k, gsl_rng *rng, double p[3])
{
    const double two_pi = 2 * M_PI;
    switch (k) {
    case 0: /* unit sphere */
    case 5: /* ellipsoid with axes 1, 0.6, 0.35 */
        gsl_ran_dir_3d(rng, &p[0], &p[1], &p[2]);
        if (k == 5) {
            p[1] *= 0.6;
            p[2] *= 0.35;
        }
        break;
    case 1: { /* torus, radii 0.7 and 0.3 */
        double u = two_pi * gsl_rng_uniform(rng), v = two_pi * gsl_rng_uniform(rng);
        p[0] = (0.7 + 0.3 * cos(v)) * cos(u);
        p[1] = (0.7 + 0.3 * cos(v)) * sin(u);
        p[2] = 0.3 * sin(v);
        break;
    }
    case 2: { /* surface of the cube [-0.6, 0.6]^3 */
        unsigned long face = gsl_rng_uniform_int(rng, 6);
        double a = 1.2 * gsl_rng_uniform(rng) - 0.6, b = 1.2 * gsl_rng_uniform(rng) - 0.6;
        double c = face % 2 ? 0.6 : -0.6;
        int axis = (int)(face / 2);
        p[axis] = c;
        p[(axis + 1) % 3] = a;
        p[(axis + 2) % 3] = b;
        break;
    }
    case 3: { /* open cylinder, radius 0.6, height 1.6 */
        double u = two_pi * gsl_rng_uniform(rng);
        p[0] = 0.6 * cos(u);
        p[1] = 0.6 * sin(u);
        p[2] = 1.6 * gsl_rng_uniform(rng) - 0.8;
        break;
    }
    default: { /* cone surface, apex (0, 0, 0.8), base radius 0.7 at z = -0.8;
                * area-uniform: the distance from the apex goes as sqrt(u) */
        double u = two_pi * gsl_rng_uniform(rng), t = sqrt(gsl_rng_uniform(rng));
        p[0] = 0.7 * t * cos(u);
        p[1] = 0.7 * t * sin(u);
        p[2] = 0.8 - 1.6 * t;
        break;
    }
    }
}

/* Haar-random rotation from a uniform unit quaternion. */
static void random_rotation(gsl_rng *rng, double R[9])
{
    double q[4], s = 0;
    for (int k = 0; k < 4; k++) {
        q[k] = gsl_ran_gaussian(rng, 1.0);
        s += q[k] * q[k];
    }
    s = 1 / sqrt(s);
    double w = q[0] * s, x = q[1] * s, y = q[2] * s, z = q[3] * s;
    R[0] = 1 - 2 * (y * y + z * z), R[1] = 2 * (x * y - z * w), R[2] = 2 * (x * z + y * w);
    R[3] = 2 * (x * y + z * w), R[4] = 1 - 2 * (x * x + z * z), R[5] = 2 * (y * z - x * w);
    R[6] = 2 * (x * z - y * w), R[7] = 2 * (y * z + x * w), R[8] = 1 - 2 * (x * x + y * y);
}

af_status af_pointclouds_generate(size_t n, const af_pointcloud_options *opt, gsl_rng *rng,
                                  af_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    if (n == 0 || opt->n_points == 0)
        return af_error(AF_EINVAL, "pointclouds: need at least one cloud and one point");
    if (!(opt->noise >= 0) || !(opt->scale_jitter >= 0 && opt->scale_jitter < 1))
        return af_error(AF_EINVAL,
                        "pointclouds: noise must be >= 0 and scale jitter in [0, 1) "
                        "(got %g, %g)", opt->noise, opt->scale_jitter);
    af_status st = af__dataset_alloc(ds, n, opt->n_points, 3, AF_POINTCLOUD_CLASSES);
    if (st != AF_SUCCESS)
        return st;
    for (size_t i = 0; i < n; i++) {
        int k = (int)(i % AF_POINTCLOUD_CLASSES);
        double R[9];
        random_rotation(rng, R);
        double scale = 1 + opt->scale_jitter * (2 * gsl_rng_uniform(rng) - 1);
        double *xi = ds->x + i * opt->n_points * 3;
        for (size_t j = 0; j < opt->n_points; j++) {
            double p[3];
            shape_point(k, rng, p);
            for (int r = 0; r < 3; r++)
                xi[3 * j + r] = scale * (R[3 * r] * p[0] + R[3 * r + 1] * p[1] + R[3 * r + 2] * p[2])
                                + (opt->noise > 0 ? gsl_ran_gaussian(rng, opt->noise) : 0.0);
        }
        ds->y[i] = k;
    }
    return AF_SUCCESS;
}
