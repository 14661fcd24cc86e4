/* The FNO family (Sahiner et al. 2022, Section 4.2) and its block-diagonal
 * B-FNO. An FNO layer multiplies each spatial frequency l of the tokens by
 * its own d x d matrix V_l, the DFT of a real kernel L[delta]; in token
 * space that is the cyclic convolution Y[t] = sum_delta X[t - delta] L[delta]
 * over the token grid (1-D or h x w, periodic). Followed by W1 (d x m), act
 * and W2 (m x c):
 *     Y W1 = circ(X) Wm,  circ(X)[t, delta d + k] = X[t - delta, k],
 *     Wm[delta d + k, j] = (L[delta] W1)[k, j],
 * so a head j is f = act(circ(X) w1_j) w2_j^T with w1_j in R^{nd}: a
 * two-layer network on circulant features, linear in Z = sum w1 w2^T
 * (nd x c) and with the weight decay on the merged w1 (not on L and W1).
 * Gated: act(a)[t] = 1[(circ(X) h_g)[t] >= 0] a[t], one bit per token.
 * B-FNO splits the channels into B groups of d/B and the outputs into B
 * groups of c/B; group b only sees its channels: Z_b is (n d/B) x (c/B)
 * with its own nuclear norm (a block-sparse FNO Z).
 *
 * Evaluation (engine fftw). The DFT over the token grid turns the
 * convolution into a product per frequency: Fhat[l] = Xhat[l] Zhat[l] with
 * Zhat[l] (d/B x c/B) the DFT over delta of the blocks Z[delta]; the
 * adjoint is the cross-correlation Ghat[l] = sum_i conj(Xhat_i[l])^T
 * Rhat_i[l]. Xhat is computed once; per block one r2c of Z (or c2r of G),
 * per gate one c2r of the outputs (or r2c of the residual), all planned
 * once per shape (guru interface: all samples and channels in one plan).
 * The engine dense evaluates the same sums literally (the reference). */
#include "convex_internal.h" /* first: it settles the cblas.h / gsl_cblas.h clash */
#include <complex.h>
#include <fftw3.h>
#include <stdlib.h>
#include <string.h>

struct af_convex_fno_engine {
    const char *name;
    void (*forward)(af_convex_problem *p, const double *Z, double *F);
    void (*backward)(af_convex_problem *p, const double *res, double *G);
};

typedef struct {
    size_t h, w, nf;  /* grid and number of stored frequencies */
    size_t db, cb;    /* channels and outputs per group */
    size_t *shift;    /* n x n: index of token t - delta */
    const af_convex_fno_engine *engine;
    fftw_complex *Xhat; /* N x nf x d */
    fftw_complex *Zhat; /* nf x db x cb */
    fftw_complex *Fhat; /* N x nf x c (also the residual's spectrum) */
    double *Fg;         /* N x n x c (one gate's outputs, masked residual) */
    double *Zblk;       /* n x db x cb */
    fftw_plan plan_z, plan_g, plan_f, plan_r;
} fno_ws;

static af_status fno_setup(af_convex_problem *p)
{
    af_convex_shape *sh = &p->sh;
    size_t n = sh->n, d = sh->d, c = sh->c;
    if (sh->grid_h == 0 && sh->grid_w == 0) {
        sh->grid_h = n;
        sh->grid_w = 1;
    }
    if (sh->grid_h * sh->grid_w != n)
        return af_error(AF_EINVAL, "fno: token grid %zu x %zu does not hold n = %zu tokens",
                        sh->grid_h, sh->grid_w, n);
    size_t B = sh->blocks ? sh->blocks : 1;
    if (d % B || c % B)
        return af_error(AF_EINVAL, "fno: --blocks %zu must divide d = %zu and c = %zu", B, d, c);
    sh->blocks = B;
    p->B = B;
    p->P = p->gates * B;
    p->zr = n * d / B;
    p->zc = c / B;
    return AF_SUCCESS;
}

static size_t fno_gate_size(const af_convex_shape *sh) { return sh->n * sh->d; }

static size_t fno_mask_size(const af_convex_problem *p)
{
    return p->sh.kind == AF_CONVEX_GATED ? p->gates * p->T : 0;
}

/* The guru dimensions of a (real) field of C channels on the token grid and
 * of its half spectrum (h x (w/2+1) x C, or (n/2+1) x C in 1-D). */
static int grid_dims(const fno_ws *ws, size_t C, fftw_iodim *real_to_cplx, fftw_iodim *cplx_to_real)
{
    int rank = ws->w > 1 ? 2 : 1;
    if (rank == 1) {
        real_to_cplx[0] = (fftw_iodim){(int)ws->h, (int)C, (int)C};
    } else {
        size_t wf = ws->w / 2 + 1;
        real_to_cplx[0] = (fftw_iodim){(int)ws->h, (int)(ws->w * C), (int)(wf * C)};
        real_to_cplx[1] = (fftw_iodim){(int)ws->w, (int)C, (int)C};
    }
    for (int k = 0; k < rank; k++) /* c2r: complex input strides, real output strides */
        cplx_to_real[k] = (fftw_iodim){real_to_cplx[k].n, real_to_cplx[k].os, real_to_cplx[k].is};
    return rank;
}

static af_status fno_init(af_convex_problem *p)
{
    size_t N = p->sh.N, n = p->sh.n, d = p->sh.d, c = p->sh.c;
    fno_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return af_error(AF_ENOMEM, "convex problem: out of memory (fno)");
    p->ext = ws;
    ws->h = p->sh.grid_h;
    ws->w = p->sh.grid_w;
    ws->nf = ws->w > 1 ? ws->h * (ws->w / 2 + 1) : ws->h / 2 + 1;
    ws->db = d / p->B;
    ws->cb = c / p->B;
    ws->engine = af_convex_fno_fftw;
    size_t nf = ws->nf, dbcb = ws->db * ws->cb;
    ws->shift = malloc(n * n * sizeof *ws->shift);
    ws->Xhat = fftw_alloc_complex(N * nf * d);
    ws->Zhat = fftw_alloc_complex(nf * dbcb);
    ws->Fhat = fftw_alloc_complex(N * nf * c);
    ws->Fg = fftw_alloc_real(N * n * c);
    ws->Zblk = fftw_alloc_real(n * dbcb);
    if (!ws->shift || !ws->Xhat || !ws->Zhat || !ws->Fhat || !ws->Fg || !ws->Zblk)
        return af_error(AF_ENOMEM, "convex problem: out of memory (fno, N=%zu n=%zu)", N, n);
    for (size_t a = 0; a < ws->h; a++)
        for (size_t b = 0; b < ws->w; b++)
            for (size_t e = 0; e < ws->h; e++)
                for (size_t f = 0; f < ws->w; f++)
                    ws->shift[(a * ws->w + b) * n + e * ws->w + f] =
                        ((a + ws->h - e) % ws->h) * ws->w + (b + ws->w - f) % ws->w;
    fftw_iodim rc[2], cr[2];
    unsigned flags = FFTW_ESTIMATE;
    /* tokens: transformed once */
    int rank = grid_dims(ws, d, rc, cr);
    fftw_iodim many[2] = {{(int)N, (int)(n * d), (int)(nf * d)}, {(int)d, 1, 1}};
    fftw_plan px = fftw_plan_guru_dft_r2c(rank, rc, 2, many, p->X, ws->Xhat, flags);
    /* one block of Z (db cb channels) and its gradient */
    grid_dims(ws, dbcb, rc, cr);
    fftw_iodim one[1] = {{(int)dbcb, 1, 1}};
    ws->plan_z = fftw_plan_guru_dft_r2c(rank, rc, 1, one, ws->Zblk, ws->Zhat, flags);
    ws->plan_g = fftw_plan_guru_dft_c2r(rank, cr, 1, one, ws->Zhat, ws->Zblk, flags);
    /* outputs and residuals: N samples x c channels */
    grid_dims(ws, c, rc, cr);
    fftw_iodim out_rc[2] = {{(int)N, (int)(n * c), (int)(nf * c)}, {(int)c, 1, 1}};
    fftw_iodim out_cr[2] = {{(int)N, (int)(nf * c), (int)(n * c)}, {(int)c, 1, 1}};
    ws->plan_f = fftw_plan_guru_dft_c2r(rank, cr, 2, out_cr, ws->Fhat, ws->Fg, flags);
    ws->plan_r = fftw_plan_guru_dft_r2c(rank, rc, 2, out_rc, ws->Fg, ws->Fhat, flags);
    if (!px || !ws->plan_z || !ws->plan_g || !ws->plan_f || !ws->plan_r) {
        if (px)
            fftw_destroy_plan(px);
        return af_error(AF_ENUMERIC, "fno: FFTW could not plan the %zu x %zu grid", ws->h, ws->w);
    }
    fftw_execute(px); /* r2c out of place keeps X */
    fftw_destroy_plan(px);
    if (p->sh.kind == AF_CONVEX_GATED) /* D_g[i,t] = 1[(circ(X_i) h_g)[t] >= 0] */
        for (size_t g = 0; g < p->gates; g++)
            for (size_t i = 0; i < N; i++)
                for (size_t t = 0; t < n; t++) {
                    const double *hg = p->H + g * n * d;
                    double v = 0;
                    for (size_t e = 0; e < n; e++) {
                        const double *x = p->X + (i * n + ws->shift[t * n + e]) * d;
                        for (size_t k = 0; k < d; k++)
                            v += x[k] * hg[e * d + k];
                    }
                    p->D[(g * N + i) * n + t] = v >= 0;
                }
    return AF_SUCCESS;
}

static void fno_release(af_convex_problem *p)
{
    fno_ws *ws = p->ext;
    if (!ws)
        return;
    fftw_plan plans[] = {ws->plan_z, ws->plan_g, ws->plan_f, ws->plan_r};
    for (size_t k = 0; k < 4; k++)
        if (plans[k])
            fftw_destroy_plan(plans[k]);
    free(ws->shift);
    fftw_free(ws->Xhat);
    fftw_free(ws->Zhat);
    fftw_free(ws->Fhat);
    fftw_free(ws->Fg);
    fftw_free(ws->Zblk);
    free(ws);
    p->ext = NULL;
}

/* ---- engine fftw ---- */

static void fftw_forward(af_convex_problem *p, const double *Z, double *F)
{
    fno_ws *ws = p->ext;
    size_t N = p->sh.N, n = p->sh.n, d = p->sh.d, c = p->sh.c, nf = ws->nf;
    size_t db = ws->db, cb = ws->cb, T = p->T;
    const double complex one = 1, zero = 0;
    double inv = 1.0 / (double)n;
    for (size_t g = 0; g < p->gates; g++) {
        for (size_t b = 0; b < p->B; b++) {
            memcpy(ws->Zblk, Z + (g * p->B + b) * p->zg, p->zg * sizeof *Z);
            fftw_execute(ws->plan_z);
            for (size_t l = 0; l < nf; l++) /* Fhat_i[l, group b] = Xhat_i[l, group b] Zhat[l] */
                cblas_zgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)cb, (int)db,
                            &one, ws->Xhat + l * d + b * db, (int)(nf * d),
                            ws->Zhat + l * db * cb, (int)cb, &zero,
                            ws->Fhat + l * c + b * cb, (int)(nf * c));
        }
        fftw_execute(ws->plan_f);
        if (!p->D) {
            for (size_t q = 0; q < T * c; q++)
                F[q] = inv * ws->Fg[q];
            continue;
        }
        for (size_t q = 0; q < T; q++) {
            unsigned char on = p->D[g * T + q];
            for (size_t o = 0; o < c; o++) {
                double v = on ? inv * ws->Fg[q * c + o] : 0.0;
                F[q * c + o] = g == 0 ? v : F[q * c + o] + v;
            }
        }
    }
}

static void fftw_backward(af_convex_problem *p, const double *res, double *G)
{
    fno_ws *ws = p->ext;
    size_t N = p->sh.N, n = p->sh.n, d = p->sh.d, c = p->sh.c, nf = ws->nf;
    size_t db = ws->db, cb = ws->cb, T = p->T;
    const double complex one = 1, zero = 0;
    double sc = p->w / (double)n;
    for (size_t g = 0; g < p->gates; g++) {
        for (size_t q = 0; q < T; q++) {
            unsigned char on = !p->D || p->D[g * T + q];
            for (size_t o = 0; o < c; o++)
                ws->Fg[q * c + o] = on ? res[q * c + o] : 0.0;
        }
        fftw_execute(ws->plan_r);
        for (size_t b = 0; b < p->B; b++) {
            for (size_t l = 0; l < nf; l++) /* Ghat[l] = sum_i conj(Xhat_i[l])^T Rhat_i[l] */
                cblas_zgemm(CblasRowMajor, CblasConjTrans, CblasNoTrans, (int)db, (int)cb, (int)N,
                            &one, ws->Xhat + l * d + b * db, (int)(nf * d),
                            ws->Fhat + l * c + b * cb, (int)(nf * c), &zero,
                            ws->Zhat + l * db * cb, (int)cb);
            fftw_execute(ws->plan_g);
            double *Gq = G + (g * p->B + b) * p->zg;
            for (size_t q = 0; q < p->zg; q++)
                Gq[q] = sc * ws->Zblk[q];
        }
    }
}

/* ---- engine dense: the sums as written ---- */

static void dense_forward(af_convex_problem *p, const double *Z, double *F)
{
    fno_ws *ws = p->ext;
    size_t N = p->sh.N, n = p->sh.n, d = p->sh.d, c = p->sh.c, db = ws->db, cb = ws->cb;
    memset(F, 0, p->T * c * sizeof *F);
    for (size_t g = 0; g < p->gates; g++)
        for (size_t i = 0; i < N; i++)
            for (size_t t = 0; t < n; t++) {
                if (p->D && !p->D[(g * N + i) * n + t])
                    continue;
                double *f = F + (i * n + t) * c;
                for (size_t b = 0; b < p->B; b++) {
                    const double *Zb = Z + (g * p->B + b) * p->zg;
                    for (size_t e = 0; e < n; e++) {
                        const double *x = p->X + (i * n + ws->shift[t * n + e]) * d + b * db;
                        for (size_t k = 0; k < db; k++)
                            for (size_t o = 0; o < cb; o++)
                                f[b * cb + o] += x[k] * Zb[(e * db + k) * cb + o];
                    }
                }
            }
}

static void dense_backward(af_convex_problem *p, const double *res, double *G)
{
    fno_ws *ws = p->ext;
    size_t N = p->sh.N, n = p->sh.n, d = p->sh.d, c = p->sh.c, db = ws->db, cb = ws->cb;
    memset(G, 0, p->P * p->zg * sizeof *G);
    for (size_t g = 0; g < p->gates; g++)
        for (size_t i = 0; i < N; i++)
            for (size_t t = 0; t < n; t++) {
                if (p->D && !p->D[(g * N + i) * n + t])
                    continue;
                const double *r = res + (i * n + t) * c;
                for (size_t b = 0; b < p->B; b++) {
                    double *Gb = G + (g * p->B + b) * p->zg;
                    for (size_t e = 0; e < n; e++) {
                        const double *x = p->X + (i * n + ws->shift[t * n + e]) * d + b * db;
                        for (size_t k = 0; k < db; k++)
                            for (size_t o = 0; o < cb; o++)
                                Gb[(e * db + k) * cb + o] += p->w * x[k] * r[b * cb + o];
                    }
                }
            }
}

static const af_convex_fno_engine fftw_engine = {"fftw", fftw_forward, fftw_backward};
static const af_convex_fno_engine dense_engine = {"dense", dense_forward, dense_backward};
const af_convex_fno_engine *const af_convex_fno_fftw = &fftw_engine;
const af_convex_fno_engine *const af_convex_fno_dense = &dense_engine;

af_status af_convex_problem_set_fno_engine(af_convex_problem *p, const af_convex_fno_engine *e)
{
    if (!e)
        return af_error(AF_EINVAL, "fno engine: NULL");
    if (p->fam != &cx_fno)
        return AF_SUCCESS; /* other families have one evaluation only */
    ((fno_ws *)p->ext)->engine = e;
    return AF_SUCCESS;
}

static void fno_forward(af_convex_problem *p, const double *Z, double *F)
{
    ((fno_ws *)p->ext)->engine->forward(p, Z, F);
}

static void fno_backward(af_convex_problem *p, const double *res, double *G)
{
    ((fno_ws *)p->ext)->engine->backward(p, res, G);
}

/* ---- one head: a = act(circ(X_i^(b)) w1), Fh[:, group b] = a w2^T ---- */

static void fno_activation(const af_convex_problem *p, size_t i, const double *w1, size_t q,
                           double *a)
{
    const fno_ws *ws = p->ext;
    size_t n = p->sh.n, d = p->sh.d, db = ws->db, g = q / p->B, b = q % p->B;
    for (size_t t = 0; t < n; t++) {
        double v = 0;
        if (!p->D || p->D[(g * p->sh.N + i) * n + t])
            for (size_t e = 0; e < n; e++) {
                const double *x = p->X + (i * n + ws->shift[t * n + e]) * d + b * db;
                for (size_t k = 0; k < db; k++)
                    v += x[k] * w1[e * db + k];
            }
        a[t] = v;
    }
}

static void fno_head_forward(const af_convex_problem *p, size_t i, const double *w1,
                             const double *w2, size_t q, double *Fh, double *work)
{
    const fno_ws *ws = p->ext;
    size_t n = p->sh.n, c = p->sh.c, cb = ws->cb, b = q % p->B;
    fno_activation(p, i, w1, q, work);
    memset(Fh, 0, n * c * sizeof *Fh);
    for (size_t t = 0; t < n; t++)
        for (size_t o = 0; o < cb; o++)
            Fh[t * c + b * cb + o] = work[t] * w2[o];
}

static void fno_head_backward(const af_convex_problem *p, size_t i, const double *w1,
                              const double *w2, size_t q, const double *R, double *dw1,
                              double *dw2, double *work)
{
    const fno_ws *ws = p->ext;
    size_t n = p->sh.n, d = p->sh.d, c = p->sh.c, db = ws->db, cb = ws->cb;
    size_t g = q / p->B, b = q % p->B;
    double *a = work;
    fno_activation(p, i, w1, q, a);
    for (size_t t = 0; t < n; t++) {
        const double *r = R + t * c + b * cb;
        double da = 0;
        for (size_t o = 0; o < cb; o++) {
            dw2[o] += a[t] * r[o];
            da += r[o] * w2[o];
        }
        if (da == 0 || (p->D && !p->D[(g * p->sh.N + i) * n + t]))
            continue;
        for (size_t e = 0; e < n; e++) {
            const double *x = p->X + (i * n + ws->shift[t * n + e]) * d + b * db;
            for (size_t k = 0; k < db; k++)
                dw1[e * db + k] += da * x[k];
        }
    }
}

static size_t fno_head_work(const af_convex_problem *p) { return p->sh.n; }
static size_t fno_w1_side(const af_convex_problem *p) { (void)p; return 0; }

const cx_family cx_fno = {
    "fno", fno_setup, fno_gate_size, fno_init, fno_release, fno_forward, fno_backward,
    fno_head_forward, fno_head_backward, fno_head_work, fno_w1_side, fno_mask_size,
};
