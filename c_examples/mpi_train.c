/* Data-parallel training across MPI ranks: every rank loads the same MNIST digits, the trainer
 * gets the communicator, and each rank trains on its half of every global minibatch; all ranks
 * end with the same parameters.
 *
 *   mpirun -np 2 ./build/mpi_train [rows] [epochs] [params_out_prefix|-] [mpi|alone] [threads]
 *                                  [train.npy|shard_dir]
 *
 * With "alone" as the 4th argument it trains without the communicator (the single-process
 * reference). Prints the final loss, the training seconds and a checksum of the parameters
 * per rank; with a prefix, writes each rank's parameters to prefix.rankN. With a 6th argument
 * the training rows are streamed from that .npy file (or directory of shards) instead, each rank
 * reading only its own slice; the loss is still measured on the `rows` digits.
 *
 * MNIST has no Debian package: put its four IDX files in $LATENT_DATA_DIR/mnist/ (the project's
 * copy is ../shared/data/mnist; docs/data.md says where to get them). */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    size_t rows = argc > 1 ? (size_t)atol(argv[1]) : 6000;
    unsigned epochs = argc > 2 ? (unsigned)atoi(argv[2]) : 2;
    const char *out = argc > 3 && strcmp(argv[3], "-") != 0 ? argv[3] : NULL;
    unsigned threads = argc > 5 ? (unsigned)atoi(argv[5]) : 1;
    int use_mpi = !(argc > 4 && strcmp(argv[4], "alone") == 0);
    /* A .npy file (or a directory of shards) to stream the training rows from: each rank then
     * reads only its own slice of them (docs/data.md, "Data larger than memory"). */
    const char *stream_path = argc > 6 ? argv[6] : NULL;

    char dir[4096], img[4200], lab[4200];
    CHECK(latent_data_find("mnist", dir, sizeof dir, NULL));
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte.gz", dir);
    latent_dataset *all = NULL, *data = NULL, *rest = NULL;
    CHECK(latent_dataset_from_idx(img, lab, &all));
    CHECK(latent_dataset_scale(all, LATENT_SCALING_DIVIDE_255));
    /* `rows` digits: a seeded split whose second part has that many (in their original order). */
    CHECK(latent_dataset_split(all, (double)rows / (double)latent_dataset_rows(all), 0, &rest, &data));
    rows = latent_dataset_rows(data);

    uint32_t hidden[] = {256};
    latent_network_params p = latent_network_params_default();
    p.input_dim = 784;
    p.n_encoder = 1;
    p.encoder_units = hidden;
    p.code_units = 32;
    p.output_activation = LATENT_ACTIVATION_SIGMOID;
    p.loss = LATENT_LOSS_BINARY_CROSS_ENTROPY;
    p.seed = 1;
    latent_network *net = NULL;
    CHECK(latent_network_new(&p, &net));
    latent_train_params tp = latent_train_params_default();
    tp.epochs = epochs;
    tp.batch_size = 200;
    /* SGD with momentum: the parameters then differ from single-process training only by
     * rounding (Adam's m / sqrt(v) turns the rounding noise of near-zero gradients into full
     * steps of either sign, so its parameters drift apart by up to a few learning rates). */
    tp.optimizer = LATENT_OPTIMIZER_SGD;
    tp.learning_rate = 0.5;
    tp.momentum = 0.9;
    tp.threads = threads;
    tp.seed = 3;
    latent_trainer *tr = NULL;
    CHECK(latent_trainer_new(&tp, &tr));
    if (use_mpi) CHECK(latent_trainer_set_mpi_comm(tr, (int32_t)MPI_Comm_c2f(MPI_COMM_WORLD)));
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    if (stream_path) {
        latent_stream *stream = NULL;
        CHECK(latent_stream_open(stream_path, &stream));
        CHECK(latent_trainer_fit_stream(tr, net, stream, NULL, NULL, NULL));
        rows = latent_stream_rows(stream);
        latent_stream_free(stream);
    } else {
        CHECK(latent_trainer_fit(tr, net, data, NULL, NULL, NULL));
    }
    double secs = MPI_Wtime() - t0;
    double loss = 0;
    CHECK(latent_network_loss(net, data, &loss));
    size_t n = 0;
    CHECK(latent_network_param_count(net, &n));
    float *w = malloc(n * sizeof *w);
    CHECK(latent_network_get_params(net, w, n));
    uint64_t sum = 1469598103934665603ull; /* FNV-1a over the parameters' bytes */
    for (size_t i = 0; i < n * sizeof *w; i++) sum = (sum ^ ((unsigned char *)w)[i]) * 1099511628211ull;
    printf("rank %d/%d: loss %.6f, %.3f s, %.0f samples/s, params %016llx\n", rank, size, loss, secs,
           (double)rows * epochs / secs, (unsigned long long)sum);
    if (out) {
        char path[4300];
        snprintf(path, sizeof path, "%s.rank%d", out, rank);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(w, sizeof *w, n, f) != n) return 1;
        fclose(f);
    }
    free(w);
    latent_trainer_free(tr); /* before MPI_Finalize: it holds a duplicated communicator */
    latent_network_free(net);
    latent_dataset_free(all);
    latent_dataset_free(data);
    latent_dataset_free(rest);
    MPI_Finalize();
    return 0;
}
