/* A panic provoked inside a call comes back as LATENT_STATUS_INTERNAL; the process goes on. */
#include <stdio.h>
#include <string.h>

#include "latent.h"

latent_status latent_internal_test_panic(int32_t kind); /* test hook, not in the header */

int main(void) {
    latent_status s = latent_internal_test_panic(0);
    const char *m = latent_last_error_message();
    printf("status %s, message: %s\n", latent_status_string(s), m);
    if (s != LATENT_STATUS_INTERNAL || strstr(m, "test panic requested") == NULL) return 1;
    s = latent_internal_test_panic(1);
    if (s != LATENT_STATUS_INTERNAL) return 2;
    /* and the library still works after it */
    /* a panic on one of the library's pool threads */
    s = latent_internal_test_panic(2);
    if (s != LATENT_STATUS_INTERNAL || strstr(latent_last_error_message(), "pool panic requested") == NULL) return 4;
    s = latent_internal_test_panic(0);
    printf("still alive after three panics\n");
    return s == LATENT_STATUS_INTERNAL ? 0 : 3;
}
