/* The contract tests' checks: EXPECT(call, status) and EXPECT_TRUE(cond) count failures and
 * print them with the library's message; MSG_HAS(s) checks the last error message. Each test
 * prints "<n> failures" at the end and exits non-zero on any. */
#ifndef LATENT_TESTS_EXPECT_H
#define LATENT_TESTS_EXPECT_H

#include <stdio.h>
#include <string.h>

#include "latent.h"

static int failures = 0;

#define EXPECT(call, want)                                                                     \
    do {                                                                                       \
        latent_status got_ = (call);                                                           \
        if (got_ != (want)) {                                                                  \
            printf("FAIL %s:%d: %s gave %s, want %s (%s)\n", __FILE__, __LINE__, #call,        \
                   latent_status_string(got_), latent_status_string(want),                     \
                   latent_last_error_message());                                               \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

#define EXPECT_TRUE(cond)                                                       \
    do {                                                                        \
        if (!(cond)) {                                                          \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);              \
            failures++;                                                         \
        }                                                                       \
    } while (0)

#define MSG_HAS(s) EXPECT_TRUE(strstr(latent_last_error_message(), (s)) != NULL)

#endif
