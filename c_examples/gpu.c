/* Training on a GPU from C: list the devices, move a network to GPU 0 when there is one (the
 * same calls run on the CPU when there is none), train, encode there, save, and check that the
 * saved model gives the same codes on the CPU.
 *
 *   ./build/gpu */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common.h"

enum { ROWS = 4096, COLS = 64, CODE = 8 };

int main(void) {
    int32_t n = 0;
    latent_status s = latent_device_count(&n);
    if (s == LATENT_STATUS_OK) {
        for (int32_t i = 0; i < n; i++) {
            latent_device_info info;
            CHECK(latent_device_get_info(i, &info));
            printf("GPU %d: %s, %llu MiB, compute capability %d.%d\n", i, info.name,
                   (unsigned long long)(info.total_memory >> 20), info.compute_major, info.compute_minor);
        }
    } else {
        printf("no GPU: %s\n", latent_last_error_message());
    }

    /* Rows on an 8-dimensional curved surface in 64 dimensions. */
    float *x = malloc(sizeof *x * ROWS * COLS);
    uint64_t state = 42;
    for (size_t r = 0; r < ROWS; r++) {
        float u[CODE];
        for (int k = 0; k < CODE; k++) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            u[k] = (float)(state >> 40) / (float)(1 << 24);
        }
        for (int c = 0; c < COLS; c++) {
            float v = 0.0f;
            for (int k = 0; k < CODE; k++) v += sinf((float)(c * (k + 1)) * 0.1f + 3.0f * u[k]);
            x[r * COLS + c] = 0.5f + 0.06f * v;
        }
    }
    latent_dataset *data = NULL;
    CHECK(latent_dataset_from_buffer(x, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, ROWS, COLS, &data));

    latent_network_params p = latent_network_params_default();
    p.input_dim = COLS;
    uint32_t hidden[] = {48};
    p.n_encoder = 1;
    p.encoder_units = hidden;
    p.hidden_activation = LATENT_ACTIVATION_TANH;
    p.code_units = CODE;
    p.seed = 7;
    latent_network *net = NULL;
    CHECK(latent_network_new(&p, &net));

    int on_gpu = n > 0 && latent_network_to_device(net, LATENT_DEVICE_CUDA, 0) == LATENT_STATUS_OK;
    int32_t device = -1, ordinal = -1;
    CHECK(latent_network_device(net, &device, &ordinal));
    printf("training on %s\n", device == LATENT_DEVICE_CUDA ? "GPU 0" : "the CPU");
    if (on_gpu != (device == LATENT_DEVICE_CUDA)) return 1;

    latent_train_params tp = latent_train_params_default();
    tp.epochs = (uint32_t)example_size(15, 1); /* 1: a quick run (common.h) */
    tp.batch_size = 64;
    tp.optimizer = LATENT_OPTIMIZER_ADAM;
    tp.learning_rate = 3e-3f;
    tp.validation_fraction = 0.1;
    latent_trainer *tr = NULL;
    CHECK(latent_trainer_new(&tp, &tr));
    CHECK(latent_trainer_fit(tr, net, data, NULL, NULL, NULL));
    latent_epoch_record rec[15];
    size_t epochs = 0;
    CHECK(latent_trainer_history(tr, rec, 15, &epochs));
    printf("loss: epoch 1 %.5f, epoch %zu %.5f (validation %.5f)\n", rec[0].train_loss, epochs,
           rec[epochs - 1].train_loss, rec[epochs - 1].valid_loss);

    float *codes = malloc(sizeof *codes * ROWS * CODE), *again = malloc(sizeof *again * ROWS * CODE);
    CHECK(latent_network_encode(net, x, ROWS, COLS, codes, ROWS * CODE));
    CHECK(latent_network_save(net, "gpu_example.latent"));
    latent_network *cpu = NULL;
    CHECK(latent_network_load("gpu_example.latent", &cpu));
    CHECK(latent_network_encode(cpu, x, ROWS, COLS, again, ROWS * CODE));
    double worst = 0.0;
    for (size_t i = 0; i < (size_t)ROWS * CODE; i++) {
        double d = fabs((double)codes[i] - (double)again[i]);
        if (d > worst) worst = d;
    }
    printf("codes: device vs the saved model on the CPU differ by at most %.2e\n", worst);
    remove("gpu_example.latent");
    CHECK(latent_network_to_device(net, LATENT_DEVICE_CPU, 0));

    latent_network_free(cpu);
    latent_network_free(net);
    latent_trainer_free(tr);
    latent_dataset_free(data);
    free(codes);
    free(again);
    free(x);
    int learned = epochs == 1 || rec[epochs - 1].train_loss < 0.5 * rec[0].train_loss;
    return worst < 1e-4 && learned ? 0 : 1;
}
