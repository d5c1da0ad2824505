/* Shared by the examples: CHECK() stops the program with the library's message on failure. */
#ifndef LATENT_EXAMPLES_COMMON_H
#define LATENT_EXAMPLES_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* After latent_data_find failed for `name`: the resolver's message (where it looked), then where
 * to get the data set on a fresh machine (docs/data.md). */
static inline void example_data_missing(const char *program, const char *name) {
    fprintf(stderr, "%s: %s\n", program, latent_last_error_message());
    if (strcmp(name, "fashion-mnist") == 0)
        fprintf(stderr, "%s: get Fashion-MNIST with `make data` (as root: Debian's dataset-fashion-mnist)\n",
                program);
    else if (strcmp(name, "mnist") == 0)
        fprintf(stderr, "%s: MNIST has no Debian package: put its four IDX files (train-images-idx3-ubyte.gz, ...)\n"
                        "%s: in $LATENT_DATA_DIR/mnist/ (the project's copy: ../shared/data/mnist)\n",
                program, program);
    else if (strncmp(name, "digits", 6) == 0)
        fprintf(stderr, "%s: the 8x8 digits ship with scikit-learn as sklearn/datasets/data/digits.csv.gz:\n"
                        "%s: copy it to $LATENT_DATA_DIR/digits/digits.csv.gz\n",
                program, program);
}

#endif
