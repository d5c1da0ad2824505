/* Transfer learning through the C API: a classifier from a trained autoencoder's encoder and
 * from a VAE's, the transferred parameters equal to the source's bit for bit, frozen layers
 * bit-identical after a fit and thawed after their epochs, layer-wise pretraining of a
 * classifier, and every documented status for bad input. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "latent.h"
#include "expect.h"

enum { ROWS = 300, D = 6, K = 3, CODE = 3 };

static uint64_t state = 0x2545F4914F6CDD1Dull;
static double uniform(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (double)(state >> 11) / 9007199254740992.0;
}

/* All parameters of a network (caller frees). */
static float *params_of(const latent_network *net, size_t *n) {
    EXPECT(latent_network_param_count(net, n), LATENT_STATUS_OK);
    float *p = malloc(*n * sizeof *p);
    EXPECT(latent_network_get_params(net, p, *n), LATENT_STATUS_OK);
    return p;
}

/* Where layer l's biases end: the next layer's weights, or the end of the parameters. */
static size_t bias_end(const latent_network *net, size_t l) {
    size_t n, w, wl, b;
    EXPECT(latent_network_param_count(net, &n), LATENT_STATUS_OK);
    return latent_network_layer_offsets(net, l + 1, &w, &wl, &b) == LATENT_STATUS_OK ? w : n;
}

/* Whether layer la of a (parameters pa) and layer lb of b (pb) hold the same bits. */
static int same_layer(const latent_network *a, const float *pa, size_t la, const latent_network *b,
                      const float *pb, size_t lb) {
    size_t wa, wla, ba, wb, wlb, bb;
    EXPECT(latent_network_layer_offsets(a, la, &wa, &wla, &ba), LATENT_STATUS_OK);
    EXPECT(latent_network_layer_offsets(b, lb, &wb, &wlb, &bb), LATENT_STATUS_OK);
    size_t na = bias_end(a, la) - ba, nb = bias_end(b, lb) - bb;
    return wla == wlb && na == nb && memcmp(pa + wa, pb + wb, wla * sizeof *pa) == 0 &&
           memcmp(pa + ba, pb + bb, na * sizeof *pa) == 0;
}

int main(void) {
    static float x[ROWS * D];
    static int32_t labels[ROWS];
    for (int r = 0; r < ROWS; r++) {
        labels[r] = r % K;
        for (int c = 0; c < D; c++) x[r * D + c] = (float)(0.25 * uniform() + (c % K == labels[r] ? 0.6 : 0.1));
    }
    latent_dataset *ds = NULL;
    EXPECT(latent_dataset_from_buffer(x, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, ROWS, D, &ds), LATENT_STATUS_OK);
    latent_train_params tp = latent_train_params_default();
    tp.epochs = 3;
    tp.batch_size = 32;
    tp.learning_rate = 0.01;
    tp.threads = 1;
    latent_trainer *tr = NULL;
    EXPECT(latent_trainer_new(&tp, &tr), LATENT_STATUS_OK);

    /* The source autoencoder D -> 5 -> [CODE] -> 5 -> D, trained without labels. */
    uint32_t enc[] = {5};
    latent_network_params ap = latent_network_params_default();
    ap.input_dim = D;
    ap.n_encoder = 1;
    ap.encoder_units = enc;
    ap.hidden_activation = LATENT_ACTIVATION_TANH;
    ap.code_units = CODE;
    ap.seed = 3;
    latent_network *ae = NULL;
    EXPECT(latent_network_new(&ap, &ae), LATENT_STATUS_OK);
    EXPECT(latent_trainer_fit(tr, ae, ds, NULL, NULL, NULL), LATENT_STATUS_OK);
    EXPECT(latent_dataset_set_labels(ds, labels, ROWS), LATENT_STATUS_OK);

    /* A classifier: the encoder's 2 layers, a new 4-unit ReLU layer, K logits. */
    uint32_t hidden[] = {4};
    latent_activation acts[] = {LATENT_ACTIVATION_RELU};
    latent_network *net = NULL;
    EXPECT(latent_network_new_supervised_from_encoder(ae, 1, hidden, acts, LATENT_TASK_CLASSIFY, K, 7, &net),
           LATENT_STATUS_OK);
    size_t layers = 0;
    EXPECT(latent_network_layer_count(net, &layers), LATENT_STATUS_OK);
    EXPECT_TRUE(layers == 4);
    EXPECT_TRUE(latent_network_task(net) == LATENT_TASK_CLASSIFY && latent_network_output_dim(net) == K);
    EXPECT_TRUE(latent_network_input_dim(net) == D && latent_network_code_dim(net) == 4);
    size_t n_ae, n_net;
    float *p_ae = params_of(ae, &n_ae);
    float *p0 = params_of(net, &n_net);
    EXPECT_TRUE(same_layer(net, p0, 0, ae, p_ae, 0) && same_layer(net, p0, 1, ae, p_ae, 1));

    /* Frozen for the whole fit: the transferred layers keep their bits, the others train. */
    uint32_t first = 9, count = 9, epochs = 9;
    EXPECT(latent_network_frozen(net, &first, &count, &epochs), LATENT_STATUS_OK);
    EXPECT_TRUE(first == 0 && count == 0 && epochs == 0);
    EXPECT(latent_network_freeze(net, 0, 2, 0), LATENT_STATUS_OK);
    EXPECT(latent_network_frozen(net, &first, &count, &epochs), LATENT_STATUS_OK);
    EXPECT_TRUE(first == 0 && count == 2 && epochs == 0);
    EXPECT(latent_trainer_reset(tr), LATENT_STATUS_OK);
    EXPECT(latent_trainer_fit(tr, net, ds, NULL, NULL, NULL), LATENT_STATUS_OK);
    float *p1 = params_of(net, &n_net);
    EXPECT_TRUE(same_layer(net, p1, 0, net, p0, 0) && same_layer(net, p1, 1, net, p0, 1));
    EXPECT_TRUE(!same_layer(net, p1, 2, net, p0, 2) && !same_layer(net, p1, 3, net, p0, 3));
    /* A clone keeps the freeze. */
    latent_network *copy = NULL;
    EXPECT(latent_network_clone(net, &copy), LATENT_STATUS_OK);
    EXPECT(latent_network_frozen(copy, &first, &count, &epochs), LATENT_STATUS_OK);
    EXPECT_TRUE(count == 2);
    latent_network_free(copy);

    /* Frozen for 2 epochs: a 3-epoch fit ends thawed, and the layers moved in its last epoch. */
    EXPECT(latent_network_freeze(net, 0, 2, 2), LATENT_STATUS_OK);
    EXPECT(latent_trainer_fit(tr, net, ds, NULL, NULL, NULL), LATENT_STATUS_OK);
    EXPECT(latent_network_frozen(net, &first, &count, &epochs), LATENT_STATUS_OK);
    EXPECT_TRUE(count == 0);
    float *p2 = params_of(net, &n_net);
    EXPECT_TRUE(!same_layer(net, p2, 0, net, p0, 0));
    /* Thawing by n_layers = 0. */
    EXPECT(latent_network_freeze(net, 1, 1, 0), LATENT_STATUS_OK);
    EXPECT(latent_network_freeze(net, 0, 0, 0), LATENT_STATUS_OK);
    EXPECT(latent_network_frozen(net, &first, &count, &epochs), LATENT_STATUS_OK);
    EXPECT_TRUE(count == 0);
    latent_evaluation ev;
    EXPECT(latent_network_evaluate(net, ds, &ev, NULL, 0), LATENT_STATUS_OK);
    printf("classifier from the encoder: training accuracy %.3f\n", ev.accuracy);
    EXPECT_TRUE(ev.accuracy > 0.9);

    /* A regression head straight on the code, from a VAE. */
    latent_vae_params vp = latent_vae_params_default();
    uint32_t venc[] = {5}, vdec[] = {5};
    vp.input_dim = D;
    vp.n_encoder = 1;
    vp.encoder_units = venc;
    vp.n_decoder = 1;
    vp.decoder_units = vdec;
    vp.latent_dim = 2;
    latent_vae *vae = NULL;
    EXPECT(latent_vae_new(&vp, &vae), LATENT_STATUS_OK);
    latent_network *reg = NULL;
    EXPECT(latent_network_new_supervised_from_vae(vae, 0, NULL, NULL, LATENT_TASK_REGRESS, 2, 1, &reg),
           LATENT_STATUS_OK);
    EXPECT(latent_network_layer_count(reg, &layers), LATENT_STATUS_OK);
    EXPECT_TRUE(layers == 3 && latent_network_code_dim(reg) == 2 && latent_network_output_dim(reg) == 2);
    /* Its code is the posterior mean. */
    float code[4 * 2], mean[4 * 2], logvar[4 * 2];
    EXPECT(latent_network_encode(reg, x, 4, D, code, 8), LATENT_STATUS_OK);
    EXPECT(latent_vae_encode(vae, x, 4, D, mean, logvar, 8), LATENT_STATUS_OK);
    for (int i = 0; i < 8; i++) EXPECT_TRUE(fabsf(code[i] - mean[i]) <= 1e-5f);

    /* Layer-wise pretraining of a classifier, then fine-tuning on the labels. */
    latent_network_params cp = latent_network_params_default();
    uint32_t cenc[] = {8};
    cp.input_dim = D;
    cp.n_encoder = 1;
    cp.encoder_units = cenc;
    cp.hidden_activation = LATENT_ACTIVATION_SIGMOID;
    cp.code_units = 4;
    cp.code_activation = LATENT_ACTIVATION_SIGMOID;
    cp.task = LATENT_TASK_CLASSIFY;
    cp.outputs = K;
    cp.output_activation = LATENT_ACTIVATION_IDENTITY;
    latent_network *cls = NULL;
    EXPECT(latent_network_new(&cp, &cls), LATENT_STATUS_OK);
    latent_pretrain_params pp = latent_pretrain_params_default();
    pp.pretrain = tp;
    pp.finetune = tp;
    pp.finetune.epochs = 20;
    EXPECT(latent_network_pretrain(cls, &pp, ds, NULL, NULL, NULL), LATENT_STATUS_OK);
    EXPECT(latent_network_evaluate(cls, ds, &ev, NULL, 0), LATENT_STATUS_OK);
    printf("pretrained classifier: training accuracy %.3f\n", ev.accuracy);
    EXPECT_TRUE(ev.accuracy > 0.9);
    /* Its training data needs labels. */
    latent_dataset *unlabelled = NULL;
    EXPECT(latent_dataset_from_buffer(x, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, ROWS, D, &unlabelled),
           LATENT_STATUS_OK);
    EXPECT(latent_network_pretrain(cls, &pp, unlabelled, NULL, NULL, NULL), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("labels");

    /* Bad input. */
    latent_network *bad = (latent_network *)ds;
    EXPECT(latent_network_new_supervised_from_encoder(NULL, 1, hidden, acts, LATENT_TASK_CLASSIFY, K, 0, &bad),
           LATENT_STATUS_NULL_ARGUMENT);
    EXPECT_TRUE(bad == NULL);
    EXPECT(latent_network_new_supervised_from_encoder(ae, 1, hidden, acts, LATENT_TASK_CLASSIFY, K, 0, NULL),
           LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_network_new_supervised_from_encoder(ae, 1, NULL, acts, LATENT_TASK_CLASSIFY, K, 0, &bad),
           LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_network_new_supervised_from_encoder(ae, 1, hidden, acts, LATENT_TASK_RECONSTRUCT, K, 0, &bad),
           LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("supervised");
    EXPECT(latent_network_new_supervised_from_encoder(ae, 1, hidden, acts, 7, K, 0, &bad),
           LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_network_new_supervised_from_encoder(ae, 1, hidden, acts, LATENT_TASK_CLASSIFY, 1, 0, &bad),
           LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("classes");
    uint32_t zero[] = {0};
    EXPECT(latent_network_new_supervised_from_encoder(ae, 1, zero, acts, LATENT_TASK_CLASSIFY, K, 0, &bad),
           LATENT_STATUS_INVALID_ARGUMENT);
    latent_activation nonsense[] = {99};
    EXPECT(latent_network_new_supervised_from_encoder(ae, 1, hidden, nonsense, LATENT_TASK_CLASSIFY, K, 0, &bad),
           LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_network_new_supervised_from_encoder(ae, 1000, hidden, acts, LATENT_TASK_CLASSIFY, K, 0, &bad),
           LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_network_new_supervised_from_vae(NULL, 0, NULL, NULL, LATENT_TASK_REGRESS, 2, 0, &bad),
           LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_network_new_supervised_from_vae(vae, 0, NULL, NULL, LATENT_TASK_REGRESS, 0, 0, &bad),
           LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT_TRUE(bad == NULL);
    EXPECT(latent_network_freeze(NULL, 0, 1, 0), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_network_freeze(net, 0, 5, 0), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("4 layers");
    EXPECT(latent_network_freeze(net, 4, 1, 0), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_network_freeze(net, UINT32_MAX, UINT32_MAX, 0), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_network_frozen(NULL, &first, &count, &epochs), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_network_frozen(net, NULL, &count, &epochs), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_network_layer_count(NULL, &layers), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_network_layer_count(net, NULL), LATENT_STATUS_NULL_ARGUMENT);

    free(p_ae);
    free(p0);
    free(p1);
    free(p2);
    latent_network_free(cls);
    latent_network_free(reg);
    latent_vae_free(vae);
    latent_network_free(net);
    latent_network_free(ae);
    latent_dataset_free(unlabelled);
    latent_dataset_free(ds);
    latent_trainer_free(tr);
    printf("%d failures\n", failures);
    return failures != 0;
}
