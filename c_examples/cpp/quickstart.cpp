// The C++17 quickstart: trains a small autoencoder on the 8x8 digits (UCI, 1797 images) with
// latent.hpp, prints the training progress and the test error, saves the model, reloads it and
// checks that it gives identical codes.
//
//   quickstart_cpp [DIGITS_CSV] [EPOCHS] [MODEL_PATH]
//
// DIGITS_CSV is digits.csv(.gz): 64 pixel columns (0..16) and the class. By default the data
// resolver looks for digits/digits.csv.gz in $LATENT_DATA_DIR, ../shared/data and
// /usr/share/datasets; when it is not there, the program trains on synthetic 8x8 images (bars)
// instead and says so. The digits ship inside scikit-learn's package data as
// sklearn/datasets/data/digits.csv.gz: copy it to $LATENT_DATA_DIR/digits/ (docs/data.md).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "latent.hpp"

namespace {

// 1797 synthetic 8x8 images of one horizontal or vertical bar with noise, labelled by the bar.
latent::Dataset synthetic_digits() {
    const std::size_t rows = 1797;
    std::vector<float> x(rows * 64);
    std::vector<int32_t> labels(rows);
    uint32_t state = 12345;
    auto next = [&state]() {
        state = state * 1664525u + 1013904223u;
        return static_cast<float>(state >> 8) / 16777216.0f;
    };
    for (std::size_t r = 0; r < rows; r++) {
        const int bar = static_cast<int>(r % 16);
        labels[r] = bar;
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 8; j++) {
                const bool on = bar < 8 ? i == bar : j == bar - 8;
                x[r * 64 + static_cast<std::size_t>(i * 8 + j)] = (on ? 14.0f : 1.0f) + 2.0f * next();
            }
    }
    latent::Dataset ds = latent::Dataset::from_buffer(x, rows);
    ds.set_labels(labels);
    return ds;
}

}  // namespace

int main(int argc, char **argv) try {
    std::string path = argc > 1 ? argv[1] : "";
    const unsigned epochs = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 30;
    const std::string model_path = argc > 3 ? argv[3] : "quickstart_cpp.latent";
    std::printf("latent %s (C++)\n", latent::version());

    latent::Dataset all;
    if (path.empty()) {
        try {
            path = latent::data_find("digits/digits.csv.gz");
        } catch (const latent::error &e) {
            std::printf("digits not found (%s): synthetic 8x8 images instead\n", e.status_name());
        }
    }
    if (!path.empty()) {
        latent_csv_params csv = latent_csv_params_default();
        csv.label_column = 64;
        all = latent::Dataset::from_csv(path, csv);
        std::printf("data from %s\n", path.c_str());
    } else {
        all = synthetic_digits();
    }
    all.scale(LATENT_SCALING_MIN_MAX);
    auto [train, test] = all.split(0.2, 7);
    std::printf("%zu training rows, %zu test rows, %zu columns\n", train.rows(), test.rows(), train.cols());

    // 64 -> 32 -> [8] -> 32 -> 64: ReLU hidden layer, linear code, sigmoid output with BCE.
    const uint32_t encoder[] = {32};
    latent_network_params np = latent::Network::default_params();
    np.input_dim = static_cast<uint32_t>(train.cols());
    np.n_encoder = 1;
    np.encoder_units = encoder;
    np.hidden_activation = LATENT_ACTIVATION_RELU;
    np.code_units = 8;
    np.output_activation = LATENT_ACTIVATION_SIGMOID;
    np.loss = LATENT_LOSS_BINARY_CROSS_ENTROPY;
    np.seed = 42;
    latent::Network net(np);
    std::printf("%s\n", net.describe().c_str());

    const double before = net.mse(test);
    latent_train_params tp = latent::Trainer::default_params();
    tp.epochs = epochs;
    tp.batch_size = 32;
    tp.learning_rate = 3e-3;
    tp.seed = 1;
    latent::Trainer trainer(tp);
    trainer.fit(net, train, test, [](const latent_progress &p) {
        if (p.event == LATENT_EVENT_EPOCH_END && (p.epoch + 1) % 10 == 0)
            std::printf("epoch %3u/%u  train loss %.5f  validation loss %.5f\n", p.epoch + 1, p.epochs, p.loss,
                        p.valid_loss);
        return false;  // true would stop training (as non-zero in C, True in Python)
    });
    const double after = net.mse(test);
    std::printf("test squared error per pixel: %.5f before training, %.5f after %zu epochs\n", before, after,
                trainer.history().size());

    // Codes of the first test rows, through a caller's buffer (a span) and as a vector.
    const std::vector<float> rows = test.copy_rows(0, 4);
    float codes[4 * 8];
    net.encode(rows, 4, codes);
    net.save(model_path);
    const latent::Network loaded = latent::Network::load(model_path);
    const std::vector<float> again = loaded.encode(rows, 4);
    bool same = true;
    for (std::size_t i = 0; i < again.size(); i++) same = same && again[i] == codes[i];
    std::printf("code of test row 0:");
    for (int i = 0; i < 8; i++) std::printf(" %.3f", static_cast<double>(codes[i]));
    std::printf("\n%s\n", same ? "reloaded model gives identical codes" : "reloaded model gives DIFFERENT codes");
    return same && after < before ? 0 : 1;
} catch (const latent::error &e) {
    std::fprintf(stderr, "quickstart_cpp: %s: %s\n", e.status_name(), e.what());
    return 1;
}
