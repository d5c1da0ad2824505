/* Bad input through the C ABI: every case must give its documented status (and never crash). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "latent.h"
#include "expect.h"

static int32_t cancel_after_two(void *user, const latent_progress *p) {
    int *calls = (int *)user;
    (void)p;
    return ++*calls >= 2;
}

/* The stages a pretraining run goes through: one entry per change of (stage, stage_layer). */
typedef struct {
    int n, epochs, cancel_at;
    int32_t stage[16];
    uint32_t layer[16];
    double penalty[16]; /* the largest penalty reported in each entry */
} stage_log;

static int32_t record_stage(void *user, const latent_progress *p) {
    stage_log *log = (stage_log *)user;
    if (p->event != LATENT_EVENT_EPOCH_END) return 0;
    log->epochs++;
    if (log->n == 0 || log->stage[log->n - 1] != p->stage || log->layer[log->n - 1] != p->stage_layer) {
        if (log->n == 16) return 1;
        log->stage[log->n] = p->stage;
        log->layer[log->n] = p->stage_layer;
        log->penalty[log->n] = 0;
        log->n++;
    }
    if (p->penalty > log->penalty[log->n - 1]) log->penalty[log->n - 1] = p->penalty;
    return log->cancel_at > 0 && log->epochs >= log->cancel_at;
}

static int stages_are(const stage_log *log, int n, const int32_t *stage, const uint32_t *layer) {
    if (log->n != n) return 0;
    for (int i = 0; i < n; i++)
        if (log->stage[i] != stage[i] || log->layer[i] != layer[i]) return 0;
    return 1;
}

int main(int argc, char **argv) {
    const char *tmp = argc > 1 ? argv[1] : ".";
    char path[4096];
    latent_network_params p = latent_network_params_default();
    latent_network *net = (latent_network *)&p; /* a non-NULL poison value: must become NULL */
    uint32_t units[] = {6};

    /* Construction */
    EXPECT(latent_network_new(NULL, &net), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_network_new(&p, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_network_new(&p, &net), LATENT_STATUS_INVALID_ARGUMENT); /* input_dim 0 */
    EXPECT_TRUE(net == NULL);
    MSG_HAS("input_dim");
    p.input_dim = 5;
    EXPECT(latent_network_new(&p, &net), LATENT_STATUS_INVALID_ARGUMENT); /* code_units 0 */
    p.code_units = 3;
    p.hidden_activation = 99;
    EXPECT(latent_network_new(&p, &net), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("99");
    p.hidden_activation = -1;
    EXPECT(latent_network_new(&p, &net), LATENT_STATUS_INVALID_ARGUMENT);
    p.hidden_activation = LATENT_ACTIVATION_TANH;
    p.loss = 10; /* one past LATENT_LOSS_MCXENT */
    EXPECT(latent_network_new(&p, &net), LATENT_STATUS_INVALID_ARGUMENT);
    p.loss = LATENT_LOSS_MCXENT; /* needs an identity output (logits); the default is sigmoid */
    EXPECT(latent_network_new(&p, &net), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("softmax");
    p.loss = LATENT_LOSS_BINARY_CROSS_ENTROPY;
    p.output_activation = LATENT_ACTIVATION_IDENTITY;
    EXPECT(latent_network_new(&p, &net), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("sigmoid");
    p.output_activation = LATENT_ACTIVATION_SIGMOID;
    p.n_encoder = 1;
    EXPECT(latent_network_new(&p, &net), LATENT_STATUS_NULL_ARGUMENT); /* encoder_units NULL */
    p.encoder_units = units;
    p.mirror_decoder = 2;
    EXPECT(latent_network_new(&p, &net), LATENT_STATUS_INVALID_ARGUMENT);
    p.mirror_decoder = 0; /* explicit decoder with no hidden layer, then tied: mismatch */
    p.tied_weights = 1;
    EXPECT(latent_network_new(&p, &net), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("mirror");
    p.mirror_decoder = 1;
    p.init = 12;
    EXPECT(latent_network_new(&p, &net), LATENT_STATUS_INVALID_ARGUMENT);
    p.init = LATENT_INIT_AUTO;
    EXPECT(latent_network_new(&p, &net), LATENT_STATUS_OK);
    EXPECT_TRUE(net != NULL);
    EXPECT_TRUE(strcmp(latent_last_error_message(), "") == 0);

    /* Inference */
    float x[2 * 5] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.5f, 0.4f, 0.3f, 0.2f, 0.1f};
    float codes[2 * 3];
    EXPECT(latent_network_encode(NULL, x, 2, 5, codes, 6), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_network_encode(net, NULL, 2, 5, codes, 6), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_network_encode(net, x, 2, 5, NULL, 6), LATENT_STATUS_NULL_ARGUMENT);
    /* Zero rows: OK with nothing written (NumPy's and PyTorch's answer), even with NULLs. */
    EXPECT(latent_network_encode(net, x, 0, 5, codes, 6), LATENT_STATUS_OK);
    EXPECT(latent_network_encode(net, NULL, 0, 5, NULL, 0), LATENT_STATUS_OK);
    EXPECT(latent_network_encode(net, x, 2, 0, codes, 6), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_network_encode(net, x, 2, 4, codes, 6), LATENT_STATUS_SHAPE_MISMATCH);
    EXPECT(latent_network_encode(net, x, 2, 5, codes, 5), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT(latent_network_encode(net, x, SIZE_MAX / 2, 5, codes, 6), LATENT_STATUS_INVALID_ARGUMENT);
    x[7] = NAN;
    EXPECT(latent_network_encode(net, x, 2, 5, codes, 6), LATENT_STATUS_NON_FINITE);
    MSG_HAS("row 1, column 2");
    x[7] = INFINITY;
    EXPECT(latent_network_reconstruct(net, x, 2, 5, x, 10), LATENT_STATUS_NON_FINITE);
    x[7] = 0.3f;
    EXPECT(latent_network_encode(net, x, 2, 5, codes, 6), LATENT_STATUS_OK);
    EXPECT(latent_network_decode(net, codes, 2, 2, x, 10), LATENT_STATUS_SHAPE_MISMATCH);
    double scores[2];
    EXPECT(latent_network_reconstruction_error(net, x, 2, 5, scores, 1), LATENT_STATUS_BUFFER_TOO_SMALL);
    size_t count = 0;
    EXPECT(latent_network_param_count(net, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_network_param_count(net, &count), LATENT_STATUS_OK);
    EXPECT_TRUE(count == 5 * 6 + 6 + 6 * 3 + 3 + 6 + 5); /* tied decoder: biases only */
    char small[8];
    size_t needed = 0;
    EXPECT(latent_network_describe(net, small, sizeof small, &needed), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT_TRUE(needed > sizeof small && strlen(small) == sizeof small - 1);
    float bad_params[1] = {0};
    EXPECT(latent_network_set_params(net, bad_params, 1), LATENT_STATUS_SHAPE_MISMATCH);
    EXPECT_TRUE(latent_network_input_dim(NULL) == 0 && latent_network_code_dim(net) == 3);

    /* Datasets */
    latent_dataset *ds = (latent_dataset *)&p;
    double d64[3] = {1, 2, 3};
    EXPECT(latent_dataset_from_buffer(d64, 7, LATENT_LAYOUT_ROW_MAJOR, 1, 3, &ds), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT_TRUE(ds == NULL);
    EXPECT(latent_dataset_from_buffer(d64, LATENT_DTYPE_F64, 9, 1, 3, &ds), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_dataset_from_buffer(NULL, LATENT_DTYPE_F64, LATENT_LAYOUT_ROW_MAJOR, 1, 3, &ds), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_dataset_from_buffer(d64, LATENT_DTYPE_F64, LATENT_LAYOUT_ROW_MAJOR, 0, 3, &ds), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_dataset_from_idx("/nonexistent/images.gz", NULL, &ds), LATENT_STATUS_IO);
    EXPECT(latent_dataset_from_idx(NULL, NULL, &ds), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_dataset_from_buffer(x, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, 2, 5, &ds), LATENT_STATUS_OK);
    latent_dataset *narrow = NULL;
    EXPECT(latent_dataset_from_buffer(d64, LATENT_DTYPE_F64, LATENT_LAYOUT_ROW_MAJOR, 1, 3, &narrow), LATENT_STATUS_OK);
    EXPECT(latent_dataset_scale(ds, 17), LATENT_STATUS_INVALID_ARGUMENT);

    /* Training */
    latent_train_params tp = latent_train_params_default();
    latent_trainer *tr = (latent_trainer *)&p;
    tp.epochs = 0;
    EXPECT(latent_trainer_new(&tp, &tr), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT_TRUE(tr == NULL);
    tp.epochs = 3;
    tp.optimizer = 9;
    EXPECT(latent_trainer_new(&tp, &tr), LATENT_STATUS_INVALID_ARGUMENT);
    tp.optimizer = LATENT_OPTIMIZER_SGD;
    tp.learning_rate = NAN;
    EXPECT(latent_trainer_new(&tp, &tr), LATENT_STATUS_INVALID_ARGUMENT);
    tp.learning_rate = 0.01;
    tp.batch_size = 0;
    EXPECT(latent_trainer_new(&tp, &tr), LATENT_STATUS_INVALID_ARGUMENT);
    tp.batch_size = 1;
    tp.validation_fraction = 1.5;
    EXPECT(latent_trainer_new(&tp, &tr), LATENT_STATUS_INVALID_ARGUMENT);
    tp.validation_fraction = 0;
    tp.shuffle = 2;
    EXPECT(latent_trainer_new(&tp, &tr), LATENT_STATUS_INVALID_ARGUMENT);
    tp.shuffle = 1;
    tp.lr_schedule = 4;
    EXPECT(latent_trainer_new(&tp, &tr), LATENT_STATUS_INVALID_ARGUMENT);
    tp.lr_schedule = LATENT_LR_SCHEDULE_STEP;
    tp.lr_gamma = 0;
    EXPECT(latent_trainer_new(&tp, &tr), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("gamma");
    tp.lr_gamma = NAN;
    EXPECT(latent_trainer_new(&tp, &tr), LATENT_STATUS_INVALID_ARGUMENT);
    tp.lr_gamma = 0.5;
    tp.lr_schedule = LATENT_LR_SCHEDULE_COSINE;
    tp.lr_min = 1.0; /* above learning_rate */
    EXPECT(latent_trainer_new(&tp, &tr), LATENT_STATUS_INVALID_ARGUMENT);
    tp.lr_min = 0;
    tp.warmup_steps = 2;
    tp.momentum_switch_epoch = 1;
    tp.threads = 2;
    tp.progress_every = 1;
    EXPECT(latent_trainer_new(&tp, &tr), LATENT_STATUS_OK);
    EXPECT(latent_trainer_fit(tr, net, narrow, NULL, NULL, NULL), LATENT_STATUS_SHAPE_MISMATCH);
    EXPECT(latent_trainer_fit(tr, NULL, ds, NULL, NULL, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_trainer_fit(tr, net, ds, narrow, NULL, NULL), LATENT_STATUS_SHAPE_MISMATCH);
    int calls = 0;
    EXPECT(latent_trainer_fit(tr, net, ds, NULL, cancel_after_two, &calls), LATENT_STATUS_CANCELLED);
    EXPECT_TRUE(calls == 2);
    EXPECT(latent_network_encode(net, x, 2, 5, codes, 6), LATENT_STATUS_OK); /* still usable */
    EXPECT_TRUE(isfinite(codes[0]) && isfinite(codes[5]));
    size_t epochs = 99;
    EXPECT(latent_trainer_history(tr, NULL, 0, &epochs), LATENT_STATUS_OK);
    EXPECT_TRUE(epochs == 0); /* the cancelled epoch is not recorded */
    EXPECT(latent_trainer_fit(tr, net, ds, NULL, NULL, NULL), LATENT_STATUS_OK);
    latent_epoch_record rec[3];
    EXPECT(latent_trainer_history(tr, rec, 2, &epochs), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT(latent_trainer_history(tr, rec, 3, &epochs), LATENT_STATUS_OK);
    EXPECT_TRUE(epochs == 3 && isfinite(rec[2].train_loss) && isnan(rec[2].valid_loss));
    EXPECT_TRUE(rec[2].learning_rate > 0 && rec[2].learning_rate < rec[0].learning_rate &&
                rec[0].learning_rate < 0.01); /* cosine from 0.01 towards 0 */

    /* Metrics, thresholds, binary codes, Hamming search */
    latent_metrics m;
    EXPECT(latent_network_metrics(net, ds, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_network_metrics(net, narrow, &m), LATENT_STATUS_SHAPE_MISMATCH);
    EXPECT(latent_network_metrics(net, ds, &m), LATENT_STATUS_OK);
    EXPECT_TRUE(m.rows == 2 && isfinite(m.reverse_ce) && m.squared_error_per_row > 0);
    double th = 0, sc[3] = {1, 3, 2};
    EXPECT(latent_anomaly_threshold(sc, 3, 1.5, &th), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("quantile");
    EXPECT(latent_anomaly_threshold(sc, 3, NAN, &th), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_anomaly_threshold(NULL, 3, 0.5, &th), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_anomaly_threshold(sc, 3, 0.75, &th), LATENT_STATUS_OK);
    EXPECT_TRUE(th == 2.5);
    uint64_t bits[2], nearest[4];
    uint32_t dist[4];
    size_t found = 9;
    EXPECT_TRUE(latent_network_code_words(net) == 1);
    EXPECT(latent_network_binary_codes(net, x, 2, 5, 0.5f, bits, 1), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT(latent_network_binary_codes(net, x, 2, 5, NAN, bits, 2), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_network_binary_codes_dataset(net, ds, 0.0f, bits, 2), LATENT_STATUS_OK);
    EXPECT(latent_hamming_top_k(bits, 2, 1, bits, 2, 2, nearest, dist, 3, &found), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT_TRUE(found == 0);
    EXPECT(latent_hamming_top_k(bits, 2, 0, bits, 2, 2, nearest, dist, 4, &found), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_hamming_top_k(bits, 2, 1, bits, 2, 2, nearest, NULL, 4, &found), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_hamming_top_k(bits, 2, 1, bits, 2, 2, nearest, dist, 4, &found), LATENT_STATUS_OK);
    EXPECT_TRUE(found == 2 && dist[0] == 0 && nearest[3] != nearest[2]);

    /* Regularisation settings of a new network */
    latent_network_params q = latent_network_params_default();
    uint32_t enc6[] = {6}, sparse_bad[] = {5}, dec5[] = {5};
    latent_network *reg = (latent_network *)&q;
    q.input_dim = 8;
    q.n_encoder = 1;
    q.encoder_units = enc6;
    q.code_units = 3;
    q.seed = 3;
    q.sparsity = 7;
    EXPECT(latent_network_new(&q, &reg), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT_TRUE(reg == NULL);
    MSG_HAS("sparsity");
    q.sparsity = LATENT_SPARSITY_KL;
    q.code_activation = LATENT_ACTIVATION_RELU; /* KL needs activations in (0, 1) */
    EXPECT(latent_network_new(&q, &reg), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("sigmoid");
    q.code_activation = LATENT_ACTIVATION_SIGMOID;
    q.sparsity_target = 1.5;
    EXPECT(latent_network_new(&q, &reg), LATENT_STATUS_INVALID_ARGUMENT);
    q.sparsity_target = 0.05;
    q.sparse_layers = sparse_bad; /* hidden layers are 0..2: encoder, code, decoder */
    q.n_sparse_layers = 1;
    EXPECT(latent_network_new(&q, &reg), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("sparse layer 5");
    q.sparse_layers = NULL; /* NULL with a count: the code layer, as documented */
    q.n_sparse_layers = 3;
    EXPECT(latent_network_new(&q, &reg), LATENT_STATUS_OK);
    latent_network_free(reg);
    q.n_sparse_layers = 0;
    q.corruption = 9;
    EXPECT(latent_network_new(&q, &reg), LATENT_STATUS_INVALID_ARGUMENT);
    q.corruption = LATENT_CORRUPTION_MASKING;
    q.corruption_level = NAN;
    EXPECT(latent_network_new(&q, &reg), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("corruption_level");
    q.corruption_level = 0.2;
    q.code_noise = -1;
    EXPECT(latent_network_new(&q, &reg), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("code noise");
    q.code_noise = 2;
    q.contractive_weight = 0.01;
    EXPECT(latent_network_new(&q, &reg), LATENT_STATUS_OK);
    /* Save and load keep every setting: the same description. */
    char desc[2048], desc2[2048];
    latent_network *reg2 = NULL;
    EXPECT(latent_network_describe(reg, desc, sizeof desc, NULL), LATENT_STATUS_OK);
    EXPECT_TRUE(strstr(desc, "KL sparsity") && strstr(desc, "masking corruption") &&
                strstr(desc, "contractive") && strstr(desc, "code noise sigma 2"));
    snprintf(path, sizeof path, "%s/regularized.latent", tmp);
    EXPECT(latent_network_save(reg, path), LATENT_STATUS_OK);
    EXPECT(latent_network_load(path, &reg2), LATENT_STATUS_OK);
    EXPECT(latent_network_describe(reg2, desc2, sizeof desc2, NULL), LATENT_STATUS_OK);
    EXPECT_TRUE(strcmp(desc, desc2) == 0);
    latent_network_free(reg2);
    latent_network_free(reg);

    /* Layer-wise pretraining */
    float rows64[64 * 8];
    uint32_t lcg = 12345;
    for (int i = 0; i < 64 * 8; i++) {
        lcg = lcg * 1664525u + 1013904223u;
        rows64[i] = (float)(lcg >> 8) / 16777216.0f;
    }
    latent_dataset *small_ds = NULL;
    EXPECT(latent_dataset_from_buffer(rows64, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, 64, 8, &small_ds),
           LATENT_STATUS_OK);
    latent_network_params pp = latent_network_params_default();
    pp.input_dim = 8;
    pp.n_encoder = 1;
    pp.encoder_units = enc6;
    pp.code_units = 3;
    pp.seed = 4;
    latent_network *pnet = NULL, *skew = NULL;
    EXPECT(latent_network_new(&pp, &pnet), LATENT_STATUS_OK);
    pp.mirror_decoder = 0; /* 8 -> 6 -> [3] -> 5 -> 8 */
    pp.n_decoder = 1;
    pp.decoder_units = dec5;
    EXPECT(latent_network_new(&pp, &skew), LATENT_STATUS_OK);
    latent_pretrain_params pre = latent_pretrain_params_default();
    EXPECT_TRUE(pre.finetune_enabled == 1 && pre.intermediate_finetune == 0 && pre.layers == NULL);
    /* Three entries: the n_layers = 3 case below must not make the library read past them. */
    latent_layer_regularization lr[3] = {latent_layer_regularization_default(),
                                         latent_layer_regularization_default(),
                                         latent_layer_regularization_default()};
    EXPECT_TRUE(lr[0].sparsity == LATENT_SPARSITY_NONE && lr[0].corruption == LATENT_CORRUPTION_NONE);
    lr[0].corruption = LATENT_CORRUPTION_MASKING;
    lr[0].corruption_level = 0.2;
    lr[1].sparsity = LATENT_SPARSITY_L1;
    lr[1].sparsity_weight = 0.01;
    pre.pretrain.epochs = pre.intermediate.epochs = pre.finetune.epochs = 2;
    pre.pretrain.batch_size = pre.intermediate.batch_size = pre.finetune.batch_size = 16;
    pre.pretrain.threads = pre.intermediate.threads = pre.finetune.threads = 1;
    pre.layers = lr;
    pre.n_layers = 1; /* the encoder has 2 layers: the hidden one and the code layer */
    EXPECT(latent_network_pretrain(pnet, NULL, small_ds, NULL, NULL, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_network_pretrain(pnet, &pre, NULL, NULL, NULL, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_network_pretrain(pnet, &pre, small_ds, NULL, NULL, NULL), LATENT_STATUS_INVALID_ARGUMENT);
    pre.n_layers = 3;
    EXPECT(latent_network_pretrain(pnet, &pre, small_ds, NULL, NULL, NULL), LATENT_STATUS_INVALID_ARGUMENT);
    pre.n_layers = 2;
    EXPECT(latent_network_pretrain(skew, &pre, small_ds, NULL, NULL, NULL), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("mirror");
    EXPECT(latent_network_pretrain(pnet, &pre, narrow, NULL, NULL, NULL), LATENT_STATUS_SHAPE_MISMATCH);
    pre.pretrain.epochs = 0;
    EXPECT(latent_network_pretrain(pnet, &pre, small_ds, NULL, NULL, NULL), LATENT_STATUS_INVALID_ARGUMENT);
    pre.pretrain.epochs = 2;
    lr[1].corruption = 9;
    EXPECT(latent_network_pretrain(pnet, &pre, small_ds, NULL, NULL, NULL), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("layers[1]");
    lr[1].corruption = LATENT_CORRUPTION_NONE;
    stage_log log = {0};
    EXPECT(latent_network_pretrain(pnet, &pre, small_ds, NULL, record_stage, &log), LATENT_STATUS_OK);
    {
        const int32_t st[] = {LATENT_STAGE_PRETRAIN, LATENT_STAGE_PRETRAIN, LATENT_STAGE_FINETUNE};
        const uint32_t ly[] = {0, 1, 0};
        EXPECT_TRUE(stages_are(&log, 3, st, ly) && log.epochs == 6);
        /* Masking adds no penalty; L1 on the code layer does. */
        EXPECT_TRUE(log.penalty[0] == 0 && log.penalty[1] > 0);
    }
    stage_log log2 = {0};
    pre.intermediate_finetune = 1;
    EXPECT(latent_network_pretrain(pnet, &pre, small_ds, NULL, record_stage, &log2), LATENT_STATUS_OK);
    {
        /* Two encoder layers: after the last one only the final fine-tuning runs. */
        const int32_t st[] = {LATENT_STAGE_PRETRAIN, LATENT_STAGE_PRETRAIN, LATENT_STAGE_FINETUNE};
        const uint32_t ly[] = {0, 1, 0};
        EXPECT_TRUE(stages_are(&log2, 3, st, ly) && log2.epochs == 6);
    }
    {
        /* Three encoder layers (8 -> 6 -> 5 -> [3]): the partial autoencoder of 2 encoder layers
         * is fine-tuned after the second, before the third is pretrained. */
        const uint32_t enc65[2] = {6, 5};
        latent_network_params p3 = pp;
        p3.mirror_decoder = 1;
        p3.n_encoder = 2;
        p3.encoder_units = enc65;
        latent_network *deep = NULL;
        EXPECT(latent_network_new(&p3, &deep), LATENT_STATUS_OK);
        latent_pretrain_params pre3 = pre;
        pre3.layers = NULL;
        pre3.n_layers = 0;
        stage_log log3 = {0};
        EXPECT(latent_network_pretrain(deep, &pre3, small_ds, NULL, record_stage, &log3), LATENT_STATUS_OK);
        const int32_t st[] = {LATENT_STAGE_PRETRAIN, LATENT_STAGE_PRETRAIN, LATENT_STAGE_INTERMEDIATE_FINETUNE,
                              LATENT_STAGE_PRETRAIN, LATENT_STAGE_FINETUNE};
        const uint32_t ly[] = {0, 1, 2, 2, 0};
        EXPECT_TRUE(stages_are(&log3, 5, st, ly) && log3.epochs == 10);
        latent_network_free(deep);
    }
    EXPECT(latent_network_encode(pnet, x, 2, 5, codes, 6), LATENT_STATUS_SHAPE_MISMATCH); /* 8 columns */
    stage_log cancel = {0};
    cancel.cancel_at = 3; /* in the second layer's pretraining */
    EXPECT(latent_network_pretrain(pnet, &pre, small_ds, NULL, record_stage, &cancel), LATENT_STATUS_CANCELLED);
    EXPECT_TRUE(cancel.epochs == 3 && cancel.n == 2);
    float code8[2 * 3];
    EXPECT(latent_network_encode(pnet, rows64, 2, 8, code8, 6), LATENT_STATUS_OK); /* still usable */
    EXPECT_TRUE(isfinite(code8[0]) && isfinite(code8[5]));
    latent_network_free(skew);
    latent_network_free(pnet);
    latent_dataset_free(small_ds);

    /* Files */
    latent_network *loaded = (latent_network *)&p;
    EXPECT(latent_network_load("/nonexistent/model.latent", &loaded), LATENT_STATUS_IO);
    EXPECT_TRUE(loaded == NULL);
    snprintf(path, sizeof path, "%s/garbage.latent", tmp);
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs("hello, not a model", f);
        fclose(f);
    }
    EXPECT(latent_network_load(path, &loaded), LATENT_STATUS_BAD_FORMAT);
    EXPECT(latent_network_save(net, "/nonexistent-dir/model.latent"), LATENT_STATUS_IO);
    EXPECT(latent_network_save(net, NULL), LATENT_STATUS_NULL_ARGUMENT);

    /* Misc */
    EXPECT_TRUE(strcmp(latent_status_string(999), "unknown status") == 0);
    EXPECT_TRUE(strcmp(latent_status_string(LATENT_STATUS_SHAPE_MISMATCH), "LATENT_STATUS_SHAPE_MISMATCH") == 0);
    EXPECT_TRUE(latent_version_number() == LATENT_VERSION_NUMBER);
    latent_network_free(NULL);
    latent_dataset_free(NULL);
    latent_trainer_free(NULL);

    latent_trainer_free(tr);
    latent_dataset_free(narrow);
    latent_dataset_free(ds);
    latent_network_free(net);
    printf("%d failures\n", failures);
    return failures != 0;
}
