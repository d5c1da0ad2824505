/* Calls on the network or VAE being trained, made from the fit's own progress callback: reads
 * and save work and see the parameters of that moment; changes are LATENT_STATUS_BUSY; nothing
 * waits forever (alarm() turns a deadlock into a failure). Also the pretraining callback. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "latent.h"
#include "expect.h"

enum { D = 16, C = 4, ROWS = 512, EPOCHS = 3 };

typedef struct {
    latent_network *net;
    latent_trainer *trainer;
    latent_dataset *data;
    const float *x;
    char path[4096];
    int calls, saved_epoch;
    float codes[8 * C];      /* codes of the first 8 rows at the last epoch end */
    float *params;           /* parameters at the last epoch end */
    size_t n_params;
} net_ctx;

static int32_t on_net_progress(void *user, const latent_progress *p) {
    net_ctx *c = (net_ctx *)user;
    if (p->event != LATENT_EVENT_EPOCH_END) return 0;
    c->calls++;
    /* Reads see the network as it is now. */
    EXPECT(latent_network_encode(c->net, c->x, 8, D, c->codes, 8 * C), LATENT_STATUS_OK);
    EXPECT(latent_network_get_params(c->net, c->params, c->n_params), LATENT_STATUS_OK);
    char buf[512];
    size_t needed = 0;
    EXPECT(latent_network_describe(c->net, buf, sizeof buf, &needed), LATENT_STATUS_OK);
    EXPECT_TRUE(needed > 1);
    double mse = -1;
    EXPECT(latent_network_mse(c->net, c->data, &mse), LATENT_STATUS_OK);
    EXPECT_TRUE(mse >= 0);
    /* A checkpoint of epoch 1. */
    if (p->epoch == 1) {
        EXPECT(latent_network_save(c->net, c->path), LATENT_STATUS_OK);
        c->saved_epoch = 1;
    }
    /* Changes are refused with BUSY and a message. */
    EXPECT(latent_network_set_threads(c->net, 1), LATENT_STATUS_BUSY);
    MSG_HAS("being trained");
    EXPECT(latent_network_set_params(c->net, c->params, c->n_params), LATENT_STATUS_BUSY);
    EXPECT(latent_trainer_fit(c->trainer, c->net, c->data, NULL, NULL, NULL), LATENT_STATUS_BUSY);
    /* The dataset being trained on cannot change under the fit. */
    EXPECT(latent_dataset_scale(c->data, LATENT_SCALING_MIN_MAX), LATENT_STATUS_BUSY);
    MSG_HAS("being trained on");
    /* The trainer takes no other call while it fits. */
    size_t n = 0;
    EXPECT(latent_trainer_history(c->trainer, NULL, 0, &n), LATENT_STATUS_BUSY);
    /* A nested fit of another network with another trainer is fine. */
    latent_network_params q = latent_network_params_default();
    q.input_dim = D;
    q.code_units = 2;
    latent_network *other = NULL;
    latent_train_params tp = latent_train_params_default();
    tp.epochs = 1;
    tp.threads = 1;
    latent_trainer *t2 = NULL;
    EXPECT(latent_network_new(&q, &other), LATENT_STATUS_OK);
    EXPECT(latent_trainer_new(&tp, &t2), LATENT_STATUS_OK);
    EXPECT(latent_trainer_fit(t2, other, c->data, NULL, NULL, NULL), LATENT_STATUS_OK);
    latent_trainer_free(t2);
    latent_network_free(other);
    return 0;
}

typedef struct {
    latent_vae *vae;
    const float *x;
    char path[4096];
    int calls;
    float mean[8 * 2];
} vae_ctx;

static int32_t on_vae_progress(void *user, const latent_progress *p) {
    vae_ctx *c = (vae_ctx *)user;
    if (p->event != LATENT_EVENT_EPOCH_END) return 0;
    c->calls++;
    EXPECT(latent_vae_encode(c->vae, c->x, 8, D, c->mean, NULL, 8 * 2), LATENT_STATUS_OK);
    EXPECT(latent_vae_save(c->vae, c->path), LATENT_STATUS_OK);
    EXPECT(latent_vae_set_threads(c->vae, 1), LATENT_STATUS_BUSY);
    return 0;
}

typedef struct {
    latent_network *net;
    const float *x;
    int calls, ok;
} pre_ctx;

static int32_t on_pretrain_progress(void *user, const latent_progress *p) {
    pre_ctx *c = (pre_ctx *)user;
    if (p->event != LATENT_EVENT_EPOCH_END) return 0;
    float codes[8 * C];
    c->calls++;
    c->ok += latent_network_encode(c->net, c->x, 8, D, codes, sizeof codes / sizeof *codes) == LATENT_STATUS_OK;
    EXPECT(latent_network_set_threads(c->net, 1), LATENT_STATUS_BUSY);
    return 0;
}

int main(int argc, char **argv) {
    const char *tmp = argc > 1 ? argv[1] : ".";
    alarm(120); /* a deadlock fails the test instead of hanging it */
    static float x[ROWS * D];
    uint64_t s = 7;
    for (int i = 0; i < ROWS * D; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((s >> 40) & 0xffff) / 65536.0f;
    }
    latent_dataset *data = NULL;
    EXPECT(latent_dataset_from_buffer(x, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, ROWS, D, &data), LATENT_STATUS_OK);

    /* A network. */
    uint32_t enc[] = {8};
    latent_network_params np = latent_network_params_default();
    np.input_dim = D;
    np.n_encoder = 1;
    np.encoder_units = enc;
    np.code_units = C;
    np.seed = 3;
    latent_train_params tp = latent_train_params_default();
    tp.epochs = EPOCHS;
    tp.batch_size = 64;
    tp.seed = 5;
    tp.validation_fraction = 0.0;
    net_ctx c;
    memset(&c, 0, sizeof c);
    EXPECT(latent_network_new(&np, &c.net), LATENT_STATUS_OK);
    EXPECT(latent_trainer_new(&tp, &c.trainer), LATENT_STATUS_OK);
    c.data = data;
    c.x = x;
    snprintf(c.path, sizeof c.path, "%s/reentry_epoch1.latent", tmp);
    EXPECT(latent_network_param_count(c.net, &c.n_params), LATENT_STATUS_OK);
    c.params = malloc(c.n_params * sizeof *c.params);
    EXPECT(latent_trainer_fit(c.trainer, c.net, data, NULL, on_net_progress, &c), LATENT_STATUS_OK);
    EXPECT_TRUE(c.calls == EPOCHS);
    /* The last callback saw the final network. */
    float after[8 * C];
    float *final_params = malloc(c.n_params * sizeof *final_params);
    EXPECT(latent_network_encode(c.net, x, 8, D, after, 8 * C), LATENT_STATUS_OK);
    EXPECT(latent_network_get_params(c.net, final_params, c.n_params), LATENT_STATUS_OK);
    EXPECT_TRUE(memcmp(after, c.codes, sizeof after) == 0);
    EXPECT_TRUE(memcmp(final_params, c.params, c.n_params * sizeof *final_params) == 0);
    /* The epoch-1 checkpoint is a whole network with the parameters of that epoch: not the
     * initial ones, not the final ones. */
    latent_network *ck = NULL;
    EXPECT(latent_network_load(c.path, &ck), LATENT_STATUS_OK);
    if (ck) {
        float *ckp = malloc(c.n_params * sizeof *ckp);
        EXPECT(latent_network_get_params(ck, ckp, c.n_params), LATENT_STATUS_OK);
        EXPECT_TRUE(memcmp(ckp, final_params, c.n_params * sizeof *ckp) != 0);
        latent_network *fresh = NULL;
        EXPECT(latent_network_new(&np, &fresh), LATENT_STATUS_OK);
        float *init = malloc(c.n_params * sizeof *init);
        EXPECT(latent_network_get_params(fresh, init, c.n_params), LATENT_STATUS_OK);
        EXPECT_TRUE(memcmp(ckp, init, c.n_params * sizeof *ckp) != 0);
        free(init);
        free(ckp);
        latent_network_free(fresh);
        latent_network_free(ck);
    }
    /* After the fit the network and trainer take changes again. */
    EXPECT(latent_network_set_threads(c.net, 1), LATENT_STATUS_OK);
    size_t n = 0;
    EXPECT(latent_trainer_history(c.trainer, NULL, 0, &n), LATENT_STATUS_OK);
    EXPECT_TRUE(n == EPOCHS);

    /* A VAE. */
    latent_vae_params vp = latent_vae_params_default();
    vp.input_dim = D;
    vp.latent_dim = 2;
    vae_ctx v;
    memset(&v, 0, sizeof v);
    v.x = x;
    snprintf(v.path, sizeof v.path, "%s/reentry_vae.latent", tmp);
    EXPECT(latent_vae_new(&vp, &v.vae), LATENT_STATUS_OK);
    EXPECT(latent_trainer_fit_vae(c.trainer, v.vae, data, NULL, on_vae_progress, &v), LATENT_STATUS_OK);
    EXPECT_TRUE(v.calls == EPOCHS);
    latent_vae *vl = NULL;
    EXPECT(latent_vae_load(v.path, &vl), LATENT_STATUS_OK);
    float mean[8 * 2];
    EXPECT(latent_vae_encode(v.vae, x, 8, D, mean, NULL, 8 * 2), LATENT_STATUS_OK);
    EXPECT_TRUE(memcmp(mean, v.mean, sizeof mean) == 0);
    latent_vae_free(vl);
    latent_vae_free(v.vae);

    /* Pretraining's callback reads the deep network as it stands. */
    uint32_t deep[] = {8};
    np.encoder_units = deep;
    latent_network *pn = NULL;
    EXPECT(latent_network_new(&np, &pn), LATENT_STATUS_OK);
    latent_pretrain_params pp = latent_pretrain_params_default();
    pp.pretrain.epochs = 1;
    pp.finetune.epochs = 1;
    pre_ctx pc = {pn, x, 0, 0};
    EXPECT(latent_network_pretrain(pn, &pp, data, NULL, on_pretrain_progress, &pc), LATENT_STATUS_OK);
    EXPECT_TRUE(pc.calls >= 2 && pc.ok == pc.calls);
    latent_network_free(pn);

    free(final_params);
    free(c.params);
    latent_trainer_free(c.trainer);
    latent_network_free(c.net);
    latent_dataset_free(data);
    printf("%d failures\n", failures);
    return failures != 0;
}
