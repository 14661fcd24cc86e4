/* libFuzzer harness: the train checkpoint loader (af_trainer_load_buffer)
 * against a small trainer built once. AF_FUZZ_SEED_OUT=FILE writes a valid
 * checkpoint of that trainer (the seed corpus) and exits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <gsl/gsl_rng.h>
#include "attnflow/train.h"
#include "support/fixtures.h"

static af_trainer *tr;
static af_dataset train_set, test_set;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 3);
    train_set = fx_toy_classes(16, r);
    test_set = fx_toy_classes(8, r);
    gsl_rng_free(r);
    af_train_options o = af_train_options_default();
    o.model.n_in = 4;
    o.model.in_dim = 2;
    o.model.classes = 2;
    o.model.dim = 4;
    o.model.heads = 1;
    o.model.head_dim = 2;
    o.model.layers = 1;
    o.model.mlp = 0;
    o.batch = 8;
    o.eval_batch = 8;
    tr = af_trainer_alloc(&o, &train_set, &test_set);
    if (!tr) {
        fprintf(stderr, "fuzz_checkpoint: %s\n", af_last_error());
        abort();
    }
    const char *seed = getenv("AF_FUZZ_SEED_OUT");
    if (seed) {
        for (int e = 0; e < 2; e++)
            if (af_trainer_advance(tr) != AF_SUCCESS)
                abort();
        if (af_trainer_save(tr, seed) != AF_SUCCESS) {
            fprintf(stderr, "fuzz_checkpoint: %s\n", af_last_error());
            abort();
        }
        exit(0);
    }
    return 0;
}

static void load(const uint8_t *data, size_t size)
{
    /* a refused checkpoint must leave the trainer as it was */
    size_t before = af_trainer_epochs(tr);
    if (af_trainer_load_buffer(tr, "fuzz", data, size) != AF_SUCCESS
        && af_trainer_epochs(tr) != before)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load(data, size);
    /* the same bytes with a correct header (version, length, CRC-32), so
     * that the payload checks behind the checksum are fuzzed too */
    if (size >= 24 && size < (1u << 20)) {
        uint8_t *b = malloc(size);
        if (!b)
            return 0;
        memcpy(b, data, size);
        memcpy(b, "AFTRAIN2", 8);
        uint32_t version = 2, crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), b + 24, (uInt)(size - 24));
        uint64_t len = size - 24;
        memcpy(b + 8, &version, 4);
        memcpy(b + 12, &crc, 4);
        memcpy(b + 16, &len, 8);
        load(b, size);
        free(b);
    }
    return 0;
}
