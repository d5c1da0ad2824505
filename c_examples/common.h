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

#endif
