/* Prints sizeof and offsetof of every public struct, for tests/header.rs to compare with Rust. */
#include <stddef.h>
#include <stdio.h>

#include "latent.h"

#define F(T, f) printf(#T "." #f " %zu\n", offsetof(T, f))
#define S(T) printf(#T " %zu\n", sizeof(T))

int main(void) {
    S(latent_network_params);
    F(latent_network_params, input_dim);
    F(latent_network_params, encoder_units);
    F(latent_network_params, encoder_activations);
    F(latent_network_params, hidden_activation);
    F(latent_network_params, code_units);
    F(latent_network_params, mirror_decoder);
    F(latent_network_params, decoder_units);
    F(latent_network_params, decoder_activations);
    F(latent_network_params, output_activation);
    F(latent_network_params, loss);
    F(latent_network_params, tied_weights);
    F(latent_network_params, init);
    F(latent_network_params, seed);
    F(latent_network_params, sparsity);
    F(latent_network_params, sparsity_target);
    F(latent_network_params, sparse_layers);
    F(latent_network_params, n_sparse_layers);
    F(latent_network_params, alternate_sparsity);
    F(latent_network_params, alternate_start);
    F(latent_network_params, contractive_weight);
    F(latent_network_params, corruption);
    F(latent_network_params, corruption_level);
    F(latent_network_params, code_noise);
    F(latent_network_params, encoder_stochastic);
    F(latent_network_params, code_stochastic);
    F(latent_network_params, decoder_stochastic);
    F(latent_network_params, stochastic_sigma);
    S(latent_train_params);
    F(latent_train_params, epochs);
    F(latent_train_params, optimizer);
    F(latent_train_params, learning_rate);
    F(latent_train_params, weight_decay);
    F(latent_train_params, validation_fraction);
    F(latent_train_params, seed);
    F(latent_train_params, threads);
    F(latent_train_params, shuffle);
    F(latent_train_params, progress_every);
    F(latent_train_params, lr_schedule);
    F(latent_train_params, lr_step_epochs);
    F(latent_train_params, warmup_steps);
    F(latent_train_params, lr_gamma);
    F(latent_train_params, lr_min);
    F(latent_train_params, momentum_initial);
    F(latent_train_params, momentum_switch_epoch);
    S(latent_progress);
    F(latent_progress, event);
    F(latent_progress, batch);
    F(latent_progress, loss);
    F(latent_progress, penalty);
    F(latent_progress, stage);
    F(latent_progress, stage_layer);
    F(latent_progress, seconds);
    S(latent_epoch_record);
    F(latent_epoch_record, train_penalty);
    F(latent_epoch_record, samples_per_second);
    F(latent_epoch_record, learning_rate);
    S(latent_csv_params);
    F(latent_csv_params, delimiter);
    F(latent_csv_params, has_header);
    F(latent_csv_params, label_column);
    S(latent_metrics);
    F(latent_metrics, rows);
    F(latent_metrics, mse);
    F(latent_metrics, bce);
    F(latent_metrics, reverse_ce);
    F(latent_metrics, squared_error_per_row);
    F(latent_metrics, mean_code_activation);
    S(latent_vae_params);
    F(latent_vae_params, input_dim);
    F(latent_vae_params, n_encoder);
    F(latent_vae_params, encoder_units);
    F(latent_vae_params, encoder_activations);
    F(latent_vae_params, latent_dim);
    F(latent_vae_params, n_decoder);
    F(latent_vae_params, decoder_units);
    F(latent_vae_params, decoder_activations);
    F(latent_vae_params, hidden_activation);
    F(latent_vae_params, pzx_activation);
    F(latent_vae_params, distribution);
    F(latent_vae_params, distribution_activation);
    F(latent_vae_params, n_parts);
    F(latent_vae_params, parts);
    F(latent_vae_params, num_samples);
    F(latent_vae_params, beta);
    F(latent_vae_params, kl_warmup_steps);
    F(latent_vae_params, constant_posterior_variance);
    F(latent_vae_params, posterior_log_variance);
    F(latent_vae_params, init);
    F(latent_vae_params, seed);
    S(latent_vae_part);
    F(latent_vae_part, size);
    F(latent_vae_part, distribution);
    F(latent_vae_part, activation);
    S(latent_elbo);
    F(latent_elbo, neg_elbo);
    F(latent_elbo, reconstruction);
    F(latent_elbo, kl);
    printf("LATENT_ABI_VERSION %d\n", (int)LATENT_ABI_VERSION);
    return 0;
}
