/* Checkpoint and resume across processes, as an HPC job that runs out of wall time does.
 *
 *   resume straight DIR THREADS   fit EPOCHS epochs; write DIR/straight.latent and .history
 *   resume part DIR THREADS       the same fit with checkpoint_path DIR/periodic.ck every 2
 *                                 epochs; its progress callback also checkpoints DIR/cb.ck
 *                                 at the end of epoch 3 (latent_trainer_checkpoint from the
 *                                 callback) and stops the fit at the end of epoch 5
 *   resume continue DIR CK NAME   resume from checkpoint CK in a fresh process; fit to the
 *                                 end; write DIR/NAME.latent and .history
 *   resume bad DIR                damaged checkpoints are BAD_FORMAT; NULLs on failure
 *
 * The test (tests/resume.rs) compares the files byte for byte. Histories are written with %a
 * (exact hex floats), without the wall-clock fields. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "latent.h"
#include "expect.h"

enum { D = 16, ROWS = 600, EPOCHS = 8 };

static float x[ROWS * D];

static latent_dataset *make_data(void) {
    uint64_t s = 11;
    for (int i = 0; i < ROWS * D; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((s >> 40) & 0xffff) / 65536.0f;
    }
    latent_dataset *data = NULL;
    EXPECT(latent_dataset_from_buffer(x, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, ROWS, D, &data), LATENT_STATUS_OK);
    return data;
}

static latent_train_params params(int threads) {
    latent_train_params tp = latent_train_params_default();
    tp.epochs = EPOCHS;
    tp.batch_size = 256;
    tp.learning_rate = 0.01;
    tp.lr_schedule = LATENT_LR_SCHEDULE_COSINE;
    tp.warmup_steps = 3;
    tp.validation_fraction = 0.2;
    tp.early_stopping_patience = 4;
    tp.seed = 3;
    tp.threads = (uint32_t)threads;
    return tp;
}

static latent_network *make_network(void) {
    latent_network_params q = latent_network_params_default();
    q.input_dim = D;
    q.code_units = 4;
    q.corruption = LATENT_CORRUPTION_MASKING; /* a denoising network: noise drawn each step */
    q.corruption_level = 0.25;
    latent_network *net = NULL;
    EXPECT(latent_network_new(&q, &net), LATENT_STATUS_OK);
    return net;
}

static void write_outputs(const char *dir, const char *name, latent_trainer *t, latent_network *net) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.latent", dir, name);
    EXPECT(latent_network_save(net, path), LATENT_STATUS_OK);
    size_t n = 0;
    EXPECT(latent_trainer_history(t, NULL, 0, &n), LATENT_STATUS_OK);
    latent_epoch_record *h = calloc(n ? n : 1, sizeof *h);
    EXPECT(latent_trainer_history(t, h, n, &n), LATENT_STATUS_OK);
    snprintf(path, sizeof path, "%s/%s.history", dir, name);
    FILE *f = fopen(path, "w");
    EXPECT_TRUE(f != NULL);
    for (size_t i = 0; f && i < n; i++)
        fprintf(f, "%a %a %a %a\n", h[i].train_loss, h[i].train_penalty, h[i].valid_loss, h[i].learning_rate);
    if (f) fclose(f);
    free(h);
    printf("%s: %zu epochs\n", name, n);
}

typedef struct {
    latent_trainer *trainer;
    char cb_path[4096];
    int batches;
} part_ctx;

/* Non-zero stops the fit: the job "runs out of time" after epoch 5 (0-based 4). */
static int32_t on_progress(void *user, const latent_progress *p) {
    part_ctx *c = (part_ctx *)user;
    if (p->event == LATENT_EVENT_BATCH) {
        /* Mid-epoch: refused, nothing written. */
        if (c->batches++ == 0) {
            EXPECT(latent_trainer_checkpoint(c->trainer, c->cb_path), LATENT_STATUS_INVALID_ARGUMENT);
            MSG_HAS("epoch end");
        }
        return 0;
    }
    if (p->epoch == 2) EXPECT(latent_trainer_checkpoint(c->trainer, c->cb_path), LATENT_STATUS_OK);
    /* The trainer's other calls stay BUSY inside its callback. */
    size_t n = 0;
    EXPECT(latent_trainer_history(c->trainer, NULL, 0, &n), LATENT_STATUS_BUSY);
    EXPECT(latent_trainer_checkpoint(c->trainer, NULL), LATENT_STATUS_NULL_ARGUMENT);
    return p->epoch == 4;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: resume straight|part|continue|bad DIR ...\n");
        return 2;
    }
    const char *mode = argv[1], *dir = argv[2];
    latent_dataset *data = make_data();
    char path[4096];
    if (!strcmp(mode, "straight") && argc == 4) {
        latent_train_params tp = params(atoi(argv[3]));
        latent_trainer *t = NULL;
        latent_network *net = make_network();
        EXPECT(latent_trainer_new(&tp, &t), LATENT_STATUS_OK);
        EXPECT(latent_trainer_fit(t, net, data, NULL, NULL, NULL), LATENT_STATUS_OK);
        write_outputs(dir, "straight", t, net);
        latent_trainer_free(t);
        latent_network_free(net);
    } else if (!strcmp(mode, "part") && argc == 4) {
        latent_train_params tp = params(atoi(argv[3]));
        snprintf(path, sizeof path, "%s/periodic.ck", dir);
        tp.checkpoint_path = path;
        tp.checkpoint_every = 2;
        tp.progress_every = 1;
        part_ctx c;
        memset(&c, 0, sizeof c);
        snprintf(c.cb_path, sizeof c.cb_path, "%s/cb.ck", dir);
        latent_network *net = make_network();
        EXPECT(latent_trainer_new(&tp, &c.trainer), LATENT_STATUS_OK);
        /* Outside a fit there is nothing to checkpoint. */
        EXPECT(latent_trainer_checkpoint(c.trainer, c.cb_path), LATENT_STATUS_INVALID_ARGUMENT);
        MSG_HAS("progress callback");
        EXPECT(latent_trainer_fit(c.trainer, net, data, NULL, on_progress, &c), LATENT_STATUS_CANCELLED);
        latent_trainer_free(c.trainer);
        latent_network_free(net);
        printf("part: stopped after epoch 5\n");
    } else if (!strcmp(mode, "continue") && argc == 5) {
        latent_trainer *t = NULL;
        latent_network *net = NULL;
        EXPECT(latent_trainer_resume_network(argv[3], &t, &net), LATENT_STATUS_OK);
        /* A VAE cannot be resumed from a network's checkpoint. */
        latent_trainer *t2 = NULL;
        latent_vae *vae = NULL;
        EXPECT(latent_trainer_resume_vae(argv[3], &t2, &vae), LATENT_STATUS_BAD_FORMAT);
        MSG_HAS("wrong kind");
        EXPECT_TRUE(t2 == NULL && vae == NULL);
        EXPECT(latent_trainer_fit(t, net, data, NULL, NULL, NULL), LATENT_STATUS_OK);
        write_outputs(dir, argv[4], t, net);
        latent_trainer_free(t);
        latent_network_free(net);
    } else if (!strcmp(mode, "bad") && argc == 3) {
        snprintf(path, sizeof path, "%s/cb.ck", dir);
        FILE *f = fopen(path, "rb");
        EXPECT_TRUE(f != NULL);
        static unsigned char buf[1 << 20];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f) fclose(f);
        EXPECT_TRUE(n > 100 && n < sizeof buf);
        char bad[4096];
        snprintf(bad, sizeof bad, "%s/bad.ck", dir);
        latent_trainer *t = (latent_trainer *)1;
        latent_network *net = (latent_network *)1;
        /* Truncated by one byte, then one byte changed in the middle. */
        for (int k = 0; k < 2; k++) {
            f = fopen(bad, "wb");
            EXPECT_TRUE(f != NULL);
            if (k == 1) buf[n / 2] ^= 0x40;
            if (f) {
                fwrite(buf, 1, k == 0 ? n - 1 : n, f);
                fclose(f);
            }
            EXPECT(latent_trainer_resume_network(bad, &t, &net), LATENT_STATUS_BAD_FORMAT);
            MSG_HAS("checksum mismatch");
            EXPECT_TRUE(t == NULL && net == NULL);
        }
        /* A model file is not a checkpoint. */
        snprintf(bad, sizeof bad, "%s/straight.latent", dir);
        EXPECT(latent_trainer_resume_network(bad, &t, &net), LATENT_STATUS_BAD_FORMAT);
        MSG_HAS("bad magic");
        EXPECT(latent_trainer_resume_network(NULL, &t, &net), LATENT_STATUS_NULL_ARGUMENT);
        EXPECT(latent_trainer_resume_network(bad, NULL, &net), LATENT_STATUS_NULL_ARGUMENT);
        /* checkpoint_every without a path, and the checkpoint fields where they do not belong. */
        latent_train_params tp = params(1);
        tp.checkpoint_every = 2;
        EXPECT(latent_trainer_new(&tp, &t), LATENT_STATUS_INVALID_ARGUMENT);
        tp.checkpoint_path = bad;
        tp.checkpoint_every = 0;
        EXPECT(latent_trainer_new(&tp, &t), LATENT_STATUS_INVALID_ARGUMENT);
    } else {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    latent_dataset_free(data);
    printf("%d failures\n", failures);
    return failures != 0;
}
