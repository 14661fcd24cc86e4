/* libFuzzer harness: the digits reader (af_digits_parse, the text inside
 * digits.csv.gz). */
#include <stdint.h>
#include <stdlib.h>
#include "attnflow/train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    af_dataset ds;
    if (af_digits_parse("fuzz", (const char *)data, size, &ds) == AF_SUCCESS) {
        for (size_t i = 0; i < ds.n; i++) {
            if (ds.y[i] < 0 || ds.y[i] > 9)
                abort();
            for (size_t k = 0; k < 64; k++)
                if (!(ds.x[i * 64 + k] >= 0 && ds.x[i * 64 + k] <= 1))
                    abort();
        }
        af_dataset_free(&ds);
    }
    return 0;
}
