/* Semantic hashing on MNIST: trains an autoencoder with a 32-unit sigmoid code layer, with
 * Gaussian noise added to the code layer's input during training (Salakhutdinov & Hinton's
 * trick: to get past the noise the network pushes the codes toward 0 and 1, so thresholding
 * loses little), turns the codes into 32-bit binary codes (threshold 0.5), and finds each test
 * image's 10 nearest training images by Hamming distance. Prints how binary the codes are and
 * precision@10 by label (chance is about 0.1).
 *
 *   semantic_hash [DATA_DIR] [EPOCHS] [MAX_ROWS] [QUERIES] [CODE_NOISE]
 *
 * MAX_ROWS (default 20000, 0 = all) limits the training rows; QUERIES (default 1000) is the
 * number of test images searched for; CODE_NOISE (default 1, 0 = off) is the noise's standard
 * deviation. Salakhutdinov & Hinton use 4 after RBM pretraining; with this short training from
 * scratch, 2 or more switches off most code units (bits constant over the data) and retrieval
 * suffers, while 1 makes the codes far more binary and retrieves about as well as without noise
 * (better from 5 epochs on).
 * DATA_DIR holds the MNIST IDX files; by default the library's data resolver finds them.
 *
 * MNIST has no Debian package: put its four IDX files in $LATENT_DATA_DIR/mnist/ (the project's
 * copy is ../shared/data/mnist; docs/data.md says where to get them). */
#include "common.h"

static latent_dataset *load(const char *dir, const char *images, const char *labels) {
    char img[4096], lab[4096];
    latent_dataset *ds = NULL;
    snprintf(img, sizeof img, "%s/%s", dir, images);
    snprintf(lab, sizeof lab, "%s/%s", dir, labels);
    CHECK(latent_dataset_from_idx(img, lab, &ds));
    CHECK(latent_dataset_scale(ds, LATENT_SCALING_DIVIDE_255));
    return ds;
}

/* Replaces ds by a seeded subset of at most n of its rows. */
static latent_dataset *subset(latent_dataset *ds, size_t n) {
    size_t rows = latent_dataset_rows(ds);
    if (n == 0 || n >= rows) return ds;
    latent_dataset *keep = NULL, *rest = NULL;
    CHECK(latent_dataset_split(ds, 1.0 - (double)n / (double)rows, 1, &keep, &rest));
    latent_dataset_free(rest);
    latent_dataset_free(ds);
    return keep;
}

/* Packed binary codes of every row of ds (rows x words words, caller frees). */
static uint64_t *hash(const latent_network *net, const latent_dataset *ds, size_t words) {
    size_t n = latent_dataset_rows(ds) * words;
    uint64_t *codes = malloc(n * sizeof *codes);
    if (codes == NULL) exit(1);
    CHECK(latent_network_binary_codes_dataset(net, ds, 0.5f, codes, n));
    return codes;
}

/* Labels of ds (caller frees). */
static int32_t *labels_of(const latent_dataset *ds) {
    size_t n = latent_dataset_rows(ds);
    int32_t *l = malloc(n * sizeof *l);
    if (l == NULL) exit(1);
    CHECK(latent_dataset_labels(ds, l, n));
    return l;
}

int main(int argc, char **argv) {
    char found[4096];
    const char *dir = argc > 1 ? argv[1] : NULL;
    unsigned epochs = argc > 2 ? (unsigned)atoi(argv[2]) : 5;
    size_t max_rows = argc > 3 ? (size_t)atol(argv[3]) : 20000;
    size_t nq = argc > 4 ? (size_t)atol(argv[4]) : 1000;
    double code_noise = argc > 5 ? atof(argv[5]) : 1.0;
    enum { K = 10 };
    if (dir == NULL) {
        if (latent_data_find("mnist", found, sizeof found, NULL) != LATENT_STATUS_OK) {
            example_data_missing("semantic_hash", "mnist");
            return 2;
        }
        dir = found;
    }
    latent_dataset *train = subset(load(dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"), max_rows);
    latent_dataset *test = subset(load(dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"), nq);
    nq = latent_dataset_rows(test);
    printf("%zu training rows, %zu queries, code noise %g\n", latent_dataset_rows(train), nq, code_noise);

    /* 784 -> 512 -> 256 -> [32 sigmoid] -> 256 -> 512 -> 784, ReLU hidden, sigmoid output, BCE. */
    uint32_t encoder[] = {512, 256};
    latent_network_params np = latent_network_params_default();
    np.input_dim = (uint32_t)latent_dataset_cols(train);
    np.n_encoder = 2;
    np.encoder_units = encoder;
    np.code_units = 32;
    np.code_activation = LATENT_ACTIVATION_SIGMOID;
    np.loss = LATENT_LOSS_BINARY_CROSS_ENTROPY;
    np.code_noise = code_noise; /* training only: encoding is deterministic */
    np.seed = 5;
    latent_network *net = NULL;
    CHECK(latent_network_new(&np, &net));
    latent_train_params tp = latent_train_params_default();
    tp.epochs = epochs;
    tp.seed = 5;
    latent_trainer *trainer = NULL;
    CHECK(latent_trainer_new(&tp, &trainer));
    CHECK(latent_trainer_fit(trainer, net, train, NULL, NULL, NULL));

    latent_metrics m;
    CHECK(latent_network_metrics(net, test, &m));
    printf("test: squared error per image %.2f, binary cross-entropy %.4f, mean code activation %.3f\n",
           m.squared_error_per_row, m.bce, m.mean_code_activation);

    /* How binary the test codes are: the fraction of code values within 0.1 of 0 or 1. */
    size_t k = latent_network_code_dim(net), near = 0;
    float *code = malloc(nq * k * sizeof *code);
    if (code == NULL) return 1;
    CHECK(latent_network_encode_dataset(net, test, code, nq * k));
    for (size_t i = 0; i < nq * k; i++) near += code[i] < 0.1f || code[i] > 0.9f;
    printf("code values within 0.1 of 0 or 1: %.3f\n", (double)near / (double)(nq * k));
    free(code);

    size_t words = latent_network_code_words(net), n = latent_dataset_rows(train), hits = 0, got = 0;
    uint64_t *table = hash(net, train, words), *queries = hash(net, test, words);
    uint64_t *index = malloc(nq * K * sizeof *index);
    uint32_t *distance = malloc(nq * K * sizeof *distance);
    int32_t *train_labels = labels_of(train), *test_labels = labels_of(test);
    if (index == NULL || distance == NULL) return 1;
    CHECK(latent_hamming_top_k(table, n, words, queries, nq, K, index, distance, nq * K, &got));
    for (size_t q = 0; q < nq; q++)
        for (size_t j = 0; j < got; j++) hits += train_labels[index[q * K + j]] == test_labels[q];
    for (size_t q = 0; q < 3 && q < nq; q++) {
        printf("query %zu (digit %d): nearest", q, (int)test_labels[q]);
        for (size_t j = 0; j < 5 && j < got; j++)
            printf(" %d@%u", (int)train_labels[index[q * K + j]], (unsigned)distance[q * K + j]);
        printf("  (digit@Hamming distance)\n");
    }
    printf("precision@%d by label: %.3f (chance about 0.1)\n", K, (double)hits / (double)(nq * got));

    free(table);
    free(queries);
    free(index);
    free(distance);
    free(train_labels);
    free(test_labels);
    latent_trainer_free(trainer);
    latent_network_free(net);
    latent_dataset_free(train);
    latent_dataset_free(test);
    return 0;
}
