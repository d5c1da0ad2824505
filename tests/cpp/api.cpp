// Behaviour of latent.hpp, run by tests/cpp.rs: errors become latent::error with the library's
// status and message, exceptions thrown by callbacks come back out of the call that ran them
// (and leave the handles usable), moved-from owners are empty. Prints "all C++ checks passed".
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "latent.hpp"

#define EXPECT(cond)                                                                     \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            std::fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);     \
            return 1;                                                                    \
        }                                                                                \
    } while (0)

// Runs `f`, which must throw latent::error with `status`; returns the message ("" otherwise).
template <class F>
std::string expect_error(latent_status status, F &&f) {
    try {
        f();
    } catch (const latent::error &e) {
        if (e.status() != status) {
            std::fprintf(stderr, "expected %s, got %s: %s\n", latent_status_string(status), e.status_name(), e.what());
            return "";
        }
        // The exception carries the library's message for this thread's last failure.
        if (std::strcmp(e.what(), latent_last_error_message()) != 0) {
            std::fprintf(stderr, "message %s differs from the library's %s\n", e.what(), latent_last_error_message());
            return "";
        }
        return e.what();
    }
    std::fprintf(stderr, "expected latent::error %s, nothing was thrown\n", latent_status_string(status));
    return "";
}

struct stop_training : std::runtime_error {
    explicit stop_training(int epoch) : std::runtime_error("stopped at epoch " + std::to_string(epoch)) {}
};

static latent::Dataset blobs(std::size_t rows, std::size_t cols) {
    std::vector<double> x(rows * cols);
    for (std::size_t r = 0; r < rows; r++)
        for (std::size_t c = 0; c < cols; c++)
            x[r * cols + c] = 0.5 + 0.4 * std::sin(0.7 * static_cast<double>(r % 5) + static_cast<double>(c));
    return latent::Dataset::from_buffer(x, rows);
}

int main() {
    const uint32_t hidden[] = {12};
    latent_network_params np = latent::Network::default_params();
    np.input_dim = 16;
    np.n_encoder = 1;
    np.encoder_units = hidden;
    np.code_units = 4;
    np.seed = 3;

    // Bad input: the status and message of the failed call.
    {
        latent_network_params bad = np;
        bad.input_dim = 0;
        std::string m = expect_error(LATENT_STATUS_INVALID_ARGUMENT, [&] { latent::Network n(bad); });
        EXPECT(!m.empty());
        std::printf("bad params: %s\n", m.c_str());
        latent::Network net(np);
        std::vector<float> x(3 * 15, 0.5f);  // 15 columns for a 16-input network
        m = expect_error(LATENT_STATUS_SHAPE_MISMATCH, [&] { net.encode(x, 3); });
        EXPECT(m.find("15") != std::string::npos);
        std::printf("wrong width: %s\n", m.c_str());
        std::vector<float> row(16, 0.5f);
        float small[2];
        m = expect_error(LATENT_STATUS_BUFFER_TOO_SMALL, [&] { net.encode(row, 1, small); });
        EXPECT(!m.empty());
        m = expect_error(LATENT_STATUS_IO, [] { latent::Dataset::from_csv("/nonexistent/latent.csv"); });
        EXPECT(m.find("/nonexistent/latent.csv") != std::string::npos);
        std::vector<float> nan_row(16, 0.0f);
        nan_row[5] = std::nanf("");
        m = expect_error(LATENT_STATUS_NON_FINITE, [&] { latent::Dataset::from_buffer(nan_row, 1); });
        EXPECT(!m.empty());
        // 17 values are not 2 equal rows: thrown by the C++ layer itself.
        try {
            std::vector<float> odd(17, 0.0f);
            net.encode(odd, 2);
            EXPECT(false);
        } catch (const latent::error &e) {
            EXPECT(e.status() == LATENT_STATUS_SHAPE_MISMATCH);
        }
    }

    // A throwing progress callback: training stops, the exception comes out of fit() unchanged,
    // and the network stays usable (and trainable).
    {
        latent::Dataset train = blobs(200, 16);
        latent::Network net(np);
        latent_train_params tp = latent::Trainer::default_params();
        tp.epochs = 20;
        tp.batch_size = 20;
        tp.validation_fraction = 0.0;
        latent::Trainer trainer(tp);
        int epochs_seen = 0;
        bool caught = false;
        try {
            trainer.fit(net, train, [&](const latent_progress &p) {
                if (p.event == LATENT_EVENT_EPOCH_END && ++epochs_seen == 3) throw stop_training(3);
                return false;
            });
        } catch (const stop_training &e) {
            caught = std::string(e.what()) == "stopped at epoch 3";
        }
        EXPECT(caught);
        EXPECT(epochs_seen == 3);
        std::vector<float> codes = net.encode(train);
        EXPECT(codes.size() == 200 * 4);
        for (float v : codes) EXPECT(std::isfinite(v));
        // Returning true stops without an exception (as non-zero in C, True in Python): fit()
        // says it did not finish.
        int calls = 0;
        EXPECT(!trainer.fit(net, train, [&](const latent_progress &) { return ++calls >= 2; }));
        EXPECT(calls == 2);
        const double before = net.mse(train);
        EXPECT(trainer.fit(net, train));
        EXPECT(net.mse(train) < before);
        EXPECT(!trainer.history().empty());
        std::printf("callback exception propagated after %d epochs; network retrained to mse %.4f\n", epochs_seen,
                    net.mse(train));
    }

    // Move-only owners: moved-from ones are empty, release() hands the handle over.
    {
        latent::Network a(np);
        latent_network *raw = a.get();
        latent::Network b = std::move(a);
        EXPECT(!a && a.get() == nullptr);
        EXPECT(b && b.get() == raw);
        latent::Network c;
        EXPECT(!c);
        c = std::move(b);
        EXPECT(!b && c.get() == raw);
        latent::Network d = c.clone();
        EXPECT(d && d.get() != raw && d.params() == c.params());
        latent_network *mine = c.release();
        EXPECT(!c && mine == raw);
        latent_network_free(mine);
        latent::Dataset ds = blobs(10, 16);
        latent::Dataset moved = std::move(ds);
        EXPECT(!ds && moved.rows() == 10);
        latent::Trainer t(latent::Trainer::default_params());
        latent::Trainer t2 = std::move(t);
        EXPECT(!t && t2);
        latent::MonteCarlo m(2, latent::MonteCarlo::default_params());
        latent::MonteCarlo m2 = std::move(m);
        EXPECT(!m && m2.n_params() == 2);
        std::printf("moved-from owners are empty\n");
    }

    // Monte-Carlo: a std::function loss; a throwing one propagates.
    {
        latent_montecarlo_params mp = latent::MonteCarlo::default_params();
        mp.seed = 5;
        mp.threads = 2;
        latent::MonteCarlo mc(2, mp);
        mc.set_prior(0, 2, LATENT_PRIOR_UNIFORM, -5, 5);
        mc.minimize([](latent::span<const double> w) { return (w[0] - 1) * (w[0] - 1) + (w[1] + 2) * (w[1] + 2); });
        std::vector<double> best = mc.best();
        EXPECT(std::fabs(best[0] - 1) < 1e-2 && std::fabs(best[1] + 2) < 1e-2);
        latent::MonteCarlo::intervals_t ci = mc.intervals(
            [](latent::span<const double> w) { return (w[0] - 1) * (w[0] - 1) + (w[1] + 2) * (w[1] + 2); }, 0.95, 1.0,
            0);
        EXPECT(ci.lower[0] < best[0] && best[0] < ci.upper[0]);
        std::printf("monte-carlo best %.4f %.4f\n", best[0], best[1]);
        latent::MonteCarlo thrower(2, mp);
        thrower.set_prior(0, 2, LATENT_PRIOR_UNIFORM, -5, 5);
        bool caught = false;
        try {
            thrower.minimize([](latent::span<const double>) -> double { throw std::invalid_argument("bad loss"); });
        } catch (const std::invalid_argument &e) {
            caught = std::string(e.what()) == "bad loss";
        }
        EXPECT(caught);
    }

    // VAE: new, fit, encode, sample.
    {
        latent_vae_params vp = latent::Vae::default_params();
        const uint32_t vh[] = {12};
        vp.input_dim = 16;
        vp.n_encoder = 1;
        vp.encoder_units = vh;
        vp.latent_dim = 2;
        vp.seed = 9;
        latent::Vae vae(vp);
        latent::Dataset train = blobs(100, 16);
        latent_train_params tp = latent::Trainer::default_params();
        tp.epochs = 3;
        tp.validation_fraction = 0.0;
        latent::Trainer trainer(tp);
        EXPECT(trainer.fit(vae, train));
        latent::Vae::posterior q = vae.encode(train);
        EXPECT(q.mean.size() == 200 && q.logvar.size() == 200);
        std::vector<float> samples = vae.sample(5, 1);
        EXPECT(samples.size() == 5 * 16);
        EXPECT(std::isfinite(vae.elbo(train).neg_elbo));
    }

    // Checkpoint from the progress callback, stop, resume: the straight fit's parameters.
    {
        latent::Dataset train = blobs(300, 16);
        latent_train_params tp = latent::Trainer::default_params();
        tp.epochs = 5;
        tp.batch_size = 64;
        tp.threads = 1;
        latent::Network straight(np);
        latent::Trainer t0(tp);
        EXPECT(t0.fit(straight, train));
        latent::Network net(np);
        latent::Trainer trainer(tp);
        const std::string ck = "api_resume.ck";
        bool stopped = !trainer.fit(net, train, [&](const latent_progress &p) {
            if (p.event == LATENT_EVENT_EPOCH_END && p.epoch == 1) {
                trainer.checkpoint(ck);
                return true;
            }
            return false;
        });
        EXPECT(stopped);
        std::string m = expect_error(LATENT_STATUS_INVALID_ARGUMENT, [&] { trainer.checkpoint(ck); });
        EXPECT(m.find("progress callback") != std::string::npos);
        auto resumed = latent::Trainer::resume_network(ck);
        EXPECT(resumed.first.fit(resumed.second, train));
        EXPECT(resumed.second.params() == straight.params());
        EXPECT(resumed.first.history().size() == 5);
        expect_error(LATENT_STATUS_BAD_FORMAT, [&] { latent::Trainer::resume_vae(ck); });
        std::remove(ck.c_str());
    }

    std::printf("all C++ checks passed\n");
    return 0;
}
