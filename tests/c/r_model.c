/* Loads a model saved by the R binding (R/latent/tests/test_latent.R) and prints the codes of
 * the rows it wrote, as R printed them ("%.9g", one row a line): tests/r.rs compares the two. */
#include <stdio.h>
#include <stdlib.h>

#include "latent.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: r_model MODEL INPUTS ROWS\n");
        return 2;
    }
    latent_network *net = NULL;
    if (latent_network_load(argv[1], &net) != LATENT_STATUS_OK) {
        fprintf(stderr, "load: %s\n", latent_last_error_message());
        return 1;
    }
    size_t rows = (size_t)atoi(argv[3]), cols = latent_network_input_dim(net), k = latent_network_code_dim(net);
    float *x = malloc(rows * cols * sizeof *x), *codes = malloc(rows * k * sizeof *codes);
    FILE *f = fopen(argv[2], "r");
    if (!x || !codes || !f) return 1;
    for (size_t i = 0; i < rows * cols; i++) {
        double v;
        if (fscanf(f, "%lf", &v) != 1) {
            fprintf(stderr, "short input at value %zu\n", i);
            return 1;
        }
        x[i] = (float)v;
    }
    fclose(f);
    if (latent_network_encode(net, x, rows, cols, codes, rows * k) != LATENT_STATUS_OK) {
        fprintf(stderr, "encode: %s\n", latent_last_error_message());
        return 1;
    }
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < k; j++) printf("%.9g%s", (double)codes[i * k + j], j + 1 < k ? " " : "\n");
    free(x);
    free(codes);
    latent_network_free(net);
    return 0;
}
