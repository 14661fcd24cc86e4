/* libFuzzer harness: the number-list parser of the options (--mean 1,2,
 * --values 'a; b', --ns ...), cli_parse_list. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "cli_fake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    double out[8];
    long n = cli_parse_list(s, out, 8);
    if (n < -1)
        abort();
    for (long k = 0; k < n && k < 8; k++)
        if (!isfinite(out[k]))
            abort(); /* only finite numbers are accepted */
    free(s);
    return 0;
}
