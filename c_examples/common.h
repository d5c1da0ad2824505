/* Shared by the examples: CHECK() stops the program with the library's message on failure. */
#ifndef LATENT_EXAMPLES_COMMON_H
#define LATENT_EXAMPLES_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#include "latent.h"

#define CHECK(call)                                                                     \
    do {                                                                                \
        latent_status check_status_ = (call);                                           \
        if (check_status_ != LATENT_STATUS_OK) {                                        \
            fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call,    \
                    latent_status_string(check_status_), latent_last_error_message());  \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

/* A quick run: with LATENT_EXAMPLE_SMALL=1 in the environment an example takes `small` (rows,
 * epochs, samples) where it would take `full`, and makes the same calls. The test suite runs
 * every example that way under valgrind, which runs vectorised code up to 1000x slower. */
static inline size_t example_size(size_t full, size_t small) {
    const char *s = getenv("LATENT_EXAMPLE_SMALL");
    return s != NULL && s[0] != '\0' && s[0] != '0' ? small : full;
}

#endif
