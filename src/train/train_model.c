/* The small Transformer / Sinkformer classifier: forward pass keeping every
 * activation, and its exact hand-written backward pass. All parameters live
 * in one flat vector (Adam, checkpoints and gradient checks see one array);
 * named blocks index into it. Batches of B samples are stacked as B * T
 * token rows so that every linear layer is one dgemm. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include "attnflow/train.h"

#define MAX_BLOCKS 64

typedef struct {
    size_t ln1_g, ln1_b, wqkv, wo, bo;          /* attention block */
    size_t ln2_g, ln2_b, w1, b1, w2, b2;        /* MLP block (if mlp > 0) */
} layer_off;

typedef struct {
    double *H1, *mu1, *rs1, *QKV, *hist, *O, *Zmid;
    double *H2, *mu2, *rs2, *M1, *Rl;
} layer_act;

struct af_model {
    af_model_config cfg;
    size_t T, max_batch, hd; /* hd = heads * head_dim */
    size_t np;
    double *param, *grad;
    /* parameter offsets */
    size_t w_emb, b_emb, w_emb2, b_emb2, cls, pos, lnf_g, lnf_b, w_head, b_head;
    layer_off *lo;
    size_t nblocks;
    const char *bname[MAX_BLOCKS];
    char bname_buf[MAX_BLOCKS][48];
    size_t boff[MAX_BLOCKS], bsize[MAX_BLOCKS];
    /* activations of the last forward pass */
    size_t batch;
    double *X, *E, **Z;   /* Z[0..layers] */
    double *E1, *E1r, *dE1; /* hidden layer of an MLP embedding */
    layer_act *act;
    double *pooled, *F, *muf, *rsf, *logits, *probs;
    int *y;
    /* backward scratch */
    double *dZ, *dZmid, *dH, *dQKV, *dO, *dM, *dR, *dpool, *dF, *dlogits, *dE, *S, *work;
};

af_model_config af_model_config_digits(void)
{
    return (af_model_config){.n_in = 16, .in_dim = 4, .classes = 10, .dim = 128, .heads = 1,
                             .head_dim = 64, .layers = 1, .mlp = 0, .cls = 1, .pos = 1,
                             .pool = AF_POOL_CLS, .n_it = 1};
}

af_model_config af_model_config_pointclouds(void)
{
    return (af_model_config){.n_in = 128, .in_dim = 3, .classes = AF_POINTCLOUD_CLASSES,
                             .embed_hidden = 64, .dim = 64, .heads = 1, .head_dim = 64,
                             .layers = 1, .mlp = 128,
                             .cls = 0, .pos = 0, .pool = AF_POOL_MEAN, .n_it = 1};
}

af_status af_model_config_check(const af_model_config *c)
{
    if (!c->n_in || !c->in_dim || !c->dim || !c->heads || !c->head_dim || !c->layers)
        return af_error(AF_EINVAL, "model: tokens, input dim, dim, heads, head dim and layers "
                                   "must be >= 1");
    if (c->classes < 2)
        return af_error(AF_EINVAL, "model: need at least 2 classes (got %zu)", c->classes);
    if (c->n_it < 1)
        return af_error(AF_EINVAL, "model: n_it must be >= 1 (1 = SoftMax)");
    if (c->pool == AF_POOL_CLS && !c->cls)
        return af_error(AF_EINVAL, "model: CLS pooling needs a CLS token");
    if (c->pool != AF_POOL_CLS && c->pool != AF_POOL_MEAN)
        return af_error(AF_EINVAL, "model: unknown pooling %d", (int)c->pool);
    /* each size bounded first, so that no product below can wrap */
    if (c->layers > 8 || c->heads > 4096 || c->head_dim > 4096 || c->heads * c->head_dim > 4096
        || c->n_in > 4096 || c->in_dim > 4096 || c->dim > 4096 || c->classes > 4096
        || c->mlp > 4096 || c->embed_hidden > 4096 || c->n_it > 100000)
        return af_error(AF_EINVAL, "model: sizes too large for this small trainer");
    return AF_SUCCESS;
}

static size_t add_block(af_model *m, const char *name, size_t layer, size_t size)
{
    size_t k = m->nblocks++;
    if (layer == (size_t)-1)
        snprintf(m->bname_buf[k], sizeof m->bname_buf[k], "%s", name);
    else
        snprintf(m->bname_buf[k], sizeof m->bname_buf[k], "%s[%zu]", name, layer);
    m->bname[k] = m->bname_buf[k];
    m->boff[k] = m->np;
    m->bsize[k] = size;
    m->np += size;
    return m->boff[k];
}

void af_model_free(af_model *m)
{
    if (!m)
        return;
    if (m->act)
        for (size_t l = 0; l < m->cfg.layers; l++) {
            layer_act *a = &m->act[l];
            double *bufs[] = {a->H1, a->mu1, a->rs1, a->QKV, a->hist, a->O, a->Zmid,
                              a->H2, a->mu2, a->rs2, a->M1, a->Rl};
            for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
                free(bufs[k]);
        }
    if (m->Z)
        for (size_t l = 0; l <= m->cfg.layers; l++)
            free(m->Z[l]);
    double *bufs[] = {m->param, m->grad, m->X, m->E, m->E1, m->E1r, m->dE1, m->pooled, m->F, m->muf, m->rsf,
                      m->logits, m->probs, m->dZ, m->dZmid, m->dH, m->dQKV, m->dO, m->dM,
                      m->dR, m->dpool, m->dF, m->dlogits, m->dE, m->S, m->work};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
        free(bufs[k]);
    free(m->y);
    free(m->Z);
    free(m->act);
    free(m->lo);
    free(m);
}

af_model *af_model_alloc(const af_model_config *cfg, size_t max_batch)
{
    if (af_model_config_check(cfg) != AF_SUCCESS)
        return NULL;
    if (max_batch == 0) {
        af_error(AF_EINVAL, "model: batch size must be >= 1");
        return NULL;
    }
    af_model *m = calloc(1, sizeof *m);
    if (!m) {
        af_error(AF_ENOMEM, "model: out of memory");
        return NULL;
    }
    m->cfg = *cfg;
    const af_model_config *c = &m->cfg;
    size_t D = c->dim, L = c->layers, T = c->n_in + (c->cls ? 1 : 0);
    m->T = T;
    m->hd = c->heads * c->head_dim;
    m->max_batch = max_batch;
    size_t hd = m->hd, R = max_batch * T, B = max_batch, hid = c->mlp;

    size_t eh = c->embed_hidden;
    m->w_emb = add_block(m, "w_embed", (size_t)-1, c->in_dim * (eh ? eh : D));
    m->b_emb = add_block(m, "b_embed", (size_t)-1, eh ? eh : D);
    if (eh) {
        m->w_emb2 = add_block(m, "w_embed2", (size_t)-1, eh * D);
        m->b_emb2 = add_block(m, "b_embed2", (size_t)-1, D);
    }
    if (c->cls)
        m->cls = add_block(m, "cls", (size_t)-1, D);
    if (c->pos)
        m->pos = add_block(m, "pos", (size_t)-1, T * D);
    m->lo = calloc(L, sizeof *m->lo);
    m->act = calloc(L, sizeof *m->act);
    m->Z = calloc(L + 1, sizeof *m->Z);
    if (!m->lo || !m->act || !m->Z)
        goto oom;
    for (size_t l = 0; l < L; l++) {
        layer_off *o = &m->lo[l];
        o->ln1_g = add_block(m, "ln1_gamma", l, D);
        o->ln1_b = add_block(m, "ln1_beta", l, D);
        o->wqkv = add_block(m, "w_qkv", l, D * 3 * hd);
        o->wo = add_block(m, "w_out", l, hd * D);
        o->bo = add_block(m, "b_out", l, D);
        if (hid) {
            o->ln2_g = add_block(m, "ln2_gamma", l, D);
            o->ln2_b = add_block(m, "ln2_beta", l, D);
            o->w1 = add_block(m, "w_mlp1", l, D * hid);
            o->b1 = add_block(m, "b_mlp1", l, hid);
            o->w2 = add_block(m, "w_mlp2", l, hid * D);
            o->b2 = add_block(m, "b_mlp2", l, D);
        }
    }
    m->lnf_g = add_block(m, "lnf_gamma", (size_t)-1, D);
    m->lnf_b = add_block(m, "lnf_beta", (size_t)-1, D);
    m->w_head = add_block(m, "w_head", (size_t)-1, D * c->classes);
    m->b_head = add_block(m, "b_head", (size_t)-1, c->classes);

#define ALLOC(p, count) \
    do { \
        if (!((p) = calloc((count), sizeof *(p)))) \
            goto oom; \
    } while (0)
    ALLOC(m->param, m->np);
    ALLOC(m->grad, m->np);
    ALLOC(m->X, B * c->n_in * c->in_dim);
    ALLOC(m->E, B * c->n_in * D);
    if (eh) {
        ALLOC(m->E1, B * c->n_in * eh);
        ALLOC(m->E1r, B * c->n_in * eh);
        ALLOC(m->dE1, B * c->n_in * eh);
    }
    for (size_t l = 0; l <= L; l++)
        ALLOC(m->Z[l], R * D);
    for (size_t l = 0; l < L; l++) {
        layer_act *a = &m->act[l];
        ALLOC(a->H1, R * D);
        ALLOC(a->mu1, R);
        ALLOC(a->rs1, R);
        ALLOC(a->QKV, R * 3 * hd);
        ALLOC(a->hist, B * c->heads * c->n_it * T * T);
        ALLOC(a->O, R * hd);
        ALLOC(a->Zmid, R * D);
        if (hid) {
            ALLOC(a->H2, R * D);
            ALLOC(a->mu2, R);
            ALLOC(a->rs2, R);
            ALLOC(a->M1, R * hid);
            ALLOC(a->Rl, R * hid);
        }
    }
    ALLOC(m->pooled, B * D);
    ALLOC(m->F, B * D);
    ALLOC(m->muf, B);
    ALLOC(m->rsf, B);
    ALLOC(m->logits, B * c->classes);
    ALLOC(m->probs, B * c->classes);
    ALLOC(m->y, B);
    ALLOC(m->dZ, R * D);
    ALLOC(m->dZmid, R * D);
    ALLOC(m->dH, R * D);
    ALLOC(m->dQKV, R * 3 * hd);
    ALLOC(m->dO, R * hd);
    ALLOC(m->dM, R * (hid ? hid : 1));
    ALLOC(m->dR, R * (hid ? hid : 1));
    ALLOC(m->dpool, B * D);
    ALLOC(m->dF, B * D);
    ALLOC(m->dlogits, B * c->classes);
    ALLOC(m->dE, B * c->n_in * D);
    ALLOC(m->S, T * T + 2 * T);
    ALLOC(m->work, 3 * T * T);
#undef ALLOC
    return m;
oom:
    af_model_free(m);
    af_error(AF_ENOMEM, "model: out of memory");
    return NULL;
}

const af_model_config *af_model_get_config(const af_model *m) { return &m->cfg; }
size_t af_model_tokens(const af_model *m) { return m->T; }
size_t af_model_nparams(const af_model *m) { return m->np; }
double *af_model_params(af_model *m) { return m->param; }
double *af_model_grads(af_model *m) { return m->grad; }
size_t af_model_nblocks(const af_model *m) { return m->nblocks; }

const char *af_model_block(const af_model *m, size_t k, size_t *offset, size_t *size)
{
    if (k >= m->nblocks)
        return NULL;
    if (offset)
        *offset = m->boff[k];
    if (size)
        *size = m->bsize[k];
    return m->bname[k];
}

static void fill_uniform(gsl_rng *rng, double *p, size_t n, double fan_in)
{
    double a = 1 / sqrt(fan_in);
    for (size_t k = 0; k < n; k++)
        p[k] = a * (2 * gsl_rng_uniform(rng) - 1);
}

static void fill_const(double *p, size_t n, double v)
{
    for (size_t k = 0; k < n; k++)
        p[k] = v;
}

void af_model_init(af_model *m, gsl_rng *rng)
{
    const af_model_config *c = &m->cfg;
    double *P = m->param;
    size_t D = c->dim, hd = m->hd, hid = c->mlp;
    size_t eh = c->embed_hidden;
    fill_uniform(rng, P + m->w_emb, c->in_dim * (eh ? eh : D), (double)c->in_dim);
    fill_uniform(rng, P + m->b_emb, eh ? eh : D, (double)c->in_dim);
    if (eh) {
        fill_uniform(rng, P + m->w_emb2, eh * D, (double)eh);
        fill_uniform(rng, P + m->b_emb2, D, (double)eh);
    }
    if (c->cls)
        for (size_t k = 0; k < D; k++)
            P[m->cls + k] = gsl_ran_gaussian(rng, 1.0);
    if (c->pos)
        for (size_t k = 0; k < m->T * D; k++)
            P[m->pos + k] = gsl_ran_gaussian(rng, 1.0);
    for (size_t l = 0; l < c->layers; l++) {
        const layer_off *o = &m->lo[l];
        fill_const(P + o->ln1_g, D, 1.0);
        fill_const(P + o->ln1_b, D, 0.0);
        fill_uniform(rng, P + o->wqkv, D * 3 * hd, (double)D);
        fill_uniform(rng, P + o->wo, hd * D, (double)hd);
        fill_uniform(rng, P + o->bo, D, (double)hd);
        if (hid) {
            fill_const(P + o->ln2_g, D, 1.0);
            fill_const(P + o->ln2_b, D, 0.0);
            fill_uniform(rng, P + o->w1, D * hid, (double)D);
            fill_uniform(rng, P + o->b1, hid, (double)D);
            fill_uniform(rng, P + o->w2, hid * D, (double)hid);
            fill_uniform(rng, P + o->b2, D, (double)hid);
        }
    }
    fill_const(P + m->lnf_g, D, 1.0);
    fill_const(P + m->lnf_b, D, 0.0);
    fill_uniform(rng, P + m->w_head, D * c->classes, (double)D);
    fill_uniform(rng, P + m->b_head, c->classes, (double)D);
}

af_status af_model_forward(af_model *m, size_t batch, const double *x, const int *y,
                           double *loss, size_t *correct)
{
    const af_model_config *c = &m->cfg;
    if (batch == 0 || batch > m->max_batch)
        return af_error(AF_EINVAL, "model: batch of %zu samples (workspace holds 1..%zu)",
                        batch, m->max_batch);
    for (size_t b = 0; b < batch; b++)
        if (y[b] < 0 || (size_t)y[b] >= c->classes)
            return af_error(AF_EINVAL, "model: label %d outside 0..%zu", y[b], c->classes - 1);
    const double *P = m->param;
    size_t D = c->dim, T = m->T, hd = m->hd, dh = c->head_dim, H = c->heads;
    size_t R = batch * T, nin = c->n_in, hid = c->mlp, ct = c->cls ? 1 : 0;
    double scale = 1 / sqrt((double)dh);
    m->batch = batch;
    memcpy(m->X, x, batch * nin * c->in_dim * sizeof *x);
    memcpy(m->y, y, batch * sizeof *y);

    /* token embedding, CLS, positions */
    size_t eh = c->embed_hidden;
    if (eh) {
        af_nn_linear_forward(batch * nin, c->in_dim, eh, m->X, P + m->w_emb, P + m->b_emb,
                             m->E1);
        af_nn_relu_forward(batch * nin * eh, m->E1, m->E1r);
        af_nn_linear_forward(batch * nin, eh, D, m->E1r, P + m->w_emb2, P + m->b_emb2, m->E);
    } else {
        af_nn_linear_forward(batch * nin, c->in_dim, D, m->X, P + m->w_emb, P + m->b_emb,
                             m->E);
    }
    double *Z0 = m->Z[0];
    for (size_t b = 0; b < batch; b++)
        for (size_t t = 0; t < T; t++) {
            double *z = Z0 + (b * T + t) * D;
            const double *src = t < ct ? P + m->cls : m->E + (b * nin + t - ct) * D;
            for (size_t k = 0; k < D; k++)
                z[k] = src[k] + (c->pos ? P[m->pos + t * D + k] : 0.0);
        }

    for (size_t l = 0; l < c->layers; l++) {
        const layer_off *o = &m->lo[l];
        layer_act *a = &m->act[l];
        const double *Zin = m->Z[l];
        af_nn_layernorm_forward(R, D, Zin, P + o->ln1_g, P + o->ln1_b, a->H1, a->mu1, a->rs1);
        af_nn_linear_forward(R, D, 3 * hd, a->H1, P + o->wqkv, NULL, a->QKV);
        for (size_t b = 0; b < batch; b++)
            for (size_t h = 0; h < H; h++) {
                const double *q = a->QKV + b * T * 3 * hd + h * dh;
                af_nn_attention_forward(T, dh, scale, c->n_it, q, 3 * hd, q + hd, 3 * hd,
                                        q + 2 * hd, 3 * hd, m->S,
                                        a->hist + (b * H + h) * c->n_it * T * T,
                                        a->O + b * T * hd + h * dh, hd);
            }
        af_nn_linear_forward(R, hd, D, a->O, P + o->wo, P + o->bo, a->Zmid);
        for (size_t k = 0; k < R * D; k++)
            a->Zmid[k] += Zin[k];
        double *Zout = m->Z[l + 1];
        if (hid) {
            af_nn_layernorm_forward(R, D, a->Zmid, P + o->ln2_g, P + o->ln2_b, a->H2, a->mu2,
                                    a->rs2);
            af_nn_linear_forward(R, D, hid, a->H2, P + o->w1, P + o->b1, a->M1);
            af_nn_relu_forward(R * hid, a->M1, a->Rl);
            af_nn_linear_forward(R, hid, D, a->Rl, P + o->w2, P + o->b2, Zout);
            for (size_t k = 0; k < R * D; k++)
                Zout[k] += a->Zmid[k];
        } else {
            memcpy(Zout, a->Zmid, R * D * sizeof *Zout);
        }
    }

    const double *ZL = m->Z[c->layers];
    for (size_t b = 0; b < batch; b++) {
        double *p = m->pooled + b * D;
        if (c->pool == AF_POOL_CLS) {
            memcpy(p, ZL + b * T * D, D * sizeof *p);
        } else {
            memset(p, 0, D * sizeof *p);
            for (size_t t = 0; t < T; t++)
                for (size_t k = 0; k < D; k++)
                    p[k] += ZL[(b * T + t) * D + k];
            for (size_t k = 0; k < D; k++)
                p[k] /= (double)T;
        }
    }
    af_nn_layernorm_forward(batch, D, m->pooled, P + m->lnf_g, P + m->lnf_b, m->F, m->muf,
                            m->rsf);
    af_nn_linear_forward(batch, D, c->classes, m->F, P + m->w_head, P + m->b_head, m->logits);
    double ls = af_nn_xent(batch, c->classes, m->logits, m->y, m->probs, NULL, 1.0, correct);
    if (loss)
        *loss = ls;
    if (!isfinite(ls))
        return af_error(AF_ENUMERIC, "model: non-finite loss (diverged?)");
    return AF_SUCCESS;
}

void af_model_backward(af_model *m)
{
    const af_model_config *c = &m->cfg;
    const double *P = m->param;
    double *G = m->grad;
    size_t batch = m->batch, D = c->dim, T = m->T, hd = m->hd, dh = c->head_dim;
    size_t H = c->heads, R = batch * T, nin = c->n_in, hid = c->mlp, ct = c->cls ? 1 : 0;
    double scale = 1 / sqrt((double)dh);
    memset(G, 0, m->np * sizeof *G);

    /* loss -> head -> final LayerNorm -> pooling */
    memset(m->dlogits, 0, batch * c->classes * sizeof *m->dlogits);
    for (size_t b = 0; b < batch; b++)
        for (size_t k = 0; k < c->classes; k++)
            m->dlogits[b * c->classes + k] =
                (m->probs[b * c->classes + k] - ((size_t)m->y[b] == k)) / (double)batch;
    memset(m->dF, 0, batch * D * sizeof *m->dF);
    af_nn_linear_backward(batch, D, c->classes, m->F, P + m->w_head, m->dlogits, m->dF,
                          G + m->w_head, G + m->b_head);
    memset(m->dpool, 0, batch * D * sizeof *m->dpool);
    af_nn_layernorm_backward(batch, D, m->pooled, P + m->lnf_g, m->muf, m->rsf, m->dF,
                             m->dpool, G + m->lnf_g, G + m->lnf_b);
    memset(m->dZ, 0, R * D * sizeof *m->dZ);
    for (size_t b = 0; b < batch; b++) {
        const double *dp = m->dpool + b * D;
        if (c->pool == AF_POOL_CLS) {
            memcpy(m->dZ + b * T * D, dp, D * sizeof *dp);
        } else {
            for (size_t t = 0; t < T; t++)
                for (size_t k = 0; k < D; k++)
                    m->dZ[(b * T + t) * D + k] = dp[k] / (double)T;
        }
    }

    for (size_t l = c->layers; l-- > 0;) {
        const layer_off *o = &m->lo[l];
        layer_act *a = &m->act[l];
        /* dZ holds d/dZ_{l+1}; after the MLP block, dZmid = d/dZmid */
        memcpy(m->dZmid, m->dZ, R * D * sizeof *m->dZ);
        if (hid) {
            memset(m->dR, 0, R * hid * sizeof *m->dR);
            af_nn_linear_backward(R, hid, D, a->Rl, P + o->w2, m->dZ, m->dR, G + o->w2,
                                  G + o->b2);
            memset(m->dM, 0, R * hid * sizeof *m->dM);
            af_nn_relu_backward(R * hid, a->M1, m->dR, m->dM);
            memset(m->dH, 0, R * D * sizeof *m->dH);
            af_nn_linear_backward(R, D, hid, a->H2, P + o->w1, m->dM, m->dH, G + o->w1,
                                  G + o->b1);
            af_nn_layernorm_backward(R, D, a->Zmid, P + o->ln2_g, a->mu2, a->rs2, m->dH,
                                     m->dZmid, G + o->ln2_g, G + o->ln2_b);
        }
        /* attention block: Zmid = Zin + O Wo + bo, O = attention(H1 Wqkv) */
        memset(m->dO, 0, R * hd * sizeof *m->dO);
        af_nn_linear_backward(R, hd, D, a->O, P + o->wo, m->dZmid, m->dO, G + o->wo,
                              G + o->bo);
        memset(m->dQKV, 0, R * 3 * hd * sizeof *m->dQKV);
        for (size_t b = 0; b < batch; b++)
            for (size_t h = 0; h < H; h++) {
                size_t off = b * T * 3 * hd + h * dh;
                const double *q = a->QKV + off;
                double *dq = m->dQKV + off;
                af_nn_attention_backward(T, dh, scale, c->n_it, q, 3 * hd, q + hd, 3 * hd,
                                         q + 2 * hd, 3 * hd,
                                         a->hist + (b * H + h) * c->n_it * T * T,
                                         m->dO + b * T * hd + h * dh, hd, dq, dq + hd,
                                         dq + 2 * hd, m->work);
            }
        memset(m->dH, 0, R * D * sizeof *m->dH);
        af_nn_linear_backward(R, D, 3 * hd, a->H1, P + o->wqkv, m->dQKV, m->dH, G + o->wqkv,
                              NULL);
        /* residual: d/dZin = dZmid + LayerNorm backward */
        memcpy(m->dZ, m->dZmid, R * D * sizeof *m->dZ);
        af_nn_layernorm_backward(R, D, m->Z[l], P + o->ln1_g, a->mu1, a->rs1, m->dH, m->dZ,
                                 G + o->ln1_g, G + o->ln1_b);
    }

    /* embedding, CLS, positions */
    for (size_t b = 0; b < batch; b++)
        for (size_t t = 0; t < T; t++) {
            const double *dz = m->dZ + (b * T + t) * D;
            if (c->pos)
                for (size_t k = 0; k < D; k++)
                    G[m->pos + t * D + k] += dz[k];
            if (t < ct)
                for (size_t k = 0; k < D; k++)
                    G[m->cls + k] += dz[k];
            else
                memcpy(m->dE + (b * nin + t - ct) * D, dz, D * sizeof *dz);
        }
    size_t eh = c->embed_hidden;
    if (eh) {
        size_t ne = batch * nin * eh;
        memset(m->dE1, 0, ne * sizeof *m->dE1);
        af_nn_linear_backward(batch * nin, eh, D, m->E1r, P + m->w_emb2, m->dE, m->dE1,
                              G + m->w_emb2, G + m->b_emb2);
        /* relu backward in place: dE1r -> dE1 (zero where E1 <= 0) */
        for (size_t k = 0; k < ne; k++)
            if (!(m->E1[k] > 0))
                m->dE1[k] = 0;
        af_nn_linear_backward(batch * nin, c->in_dim, eh, m->X, P + m->w_emb, m->dE1, NULL,
                              G + m->w_emb, G + m->b_emb);
    } else {
        af_nn_linear_backward(batch * nin, c->in_dim, D, m->X, P + m->w_emb, m->dE, NULL,
                              G + m->w_emb, G + m->b_emb);
    }
}

const double *af_model_attention(const af_model *m, size_t b, size_t layer, size_t head)
{
    const af_model_config *c = &m->cfg;
    size_t T = m->T;
    return m->act[layer].hist + ((b * c->heads + head) * c->n_it + c->n_it - 1) * T * T;
}

const double *af_model_logits(const af_model *m) { return m->logits; }

af_status af_model_token_features(af_model *m, size_t n, const double *x, double *out)
{
    const af_model_config *c = &m->cfg;
    size_t D = c->dim, T = m->T, ct = c->cls ? 1 : 0, row = c->n_in * c->in_dim;
    int *y = calloc(m->max_batch, sizeof *y); /* labels only feed the loss, unused here */
    if (!y)
        return af_error(AF_ENOMEM, "token features: out of memory");
    af_status st = AF_SUCCESS;
    for (size_t b0 = 0; b0 < n && !st; b0 += m->max_batch) {
        size_t nb = n - b0 < m->max_batch ? n - b0 : m->max_batch;
        st = af_model_forward(m, nb, x + b0 * row, y, NULL, NULL);
        const double *ZL = m->Z[c->layers];
        for (size_t b = 0; !st && b < nb; b++)
            memcpy(out + (b0 + b) * c->n_in * D, ZL + (b * T + ct) * D, c->n_in * D * sizeof *out);
    }
    free(y);
    return st;
}
