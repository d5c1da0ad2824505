# Process-wide settings of the library (C: latent_set_matmul_precision, latent_set_wait_policy,
# latent_set_inference_cache_limit). Each setter returns the setting before it, invisibly, as
# options() does, so old <- latent_set_...(x); ...; latent_set_...(old) restores it.

# A setting's name as the C glue takes it: trimmed, lower case, with the other libraries'
# names for the same thing (PyTorch's and JAX's precisions, OpenMP's wait policies).
.setting_name <- function(x, what, aliases) {
  if (!is.character(x) || length(x) != 1L || is.na(x)) stop("latent: `", what, "` must be one string")
  x <- tolower(trimws(x))
  if (x %in% names(aliases)) aliases[[x]] else x
}

# "f32" (the default) or "bf16": every CPU matrix product of more than 4 rows and 4 columns
# rounds its inputs to bfloat16 and sums in f32, about twice the f32 rate where the CPU has
# AVX-512 BF16 (latent_bf16_available()); parameters, optimizer state and losses stay f32.
# "bf16" elsewhere is an R error that changes nothing.
latent_set_matmul_precision <- function(precision) {
  old <- latent_matmul_precision()
  p <- .setting_name(precision, "precision",
                     c(float32 = "f32", highest = "f32", bfloat16 = "bf16", medium = "bf16"))
  .lc("latent_r_set_matmul_precision", p)
  invisible(old)
}

# The precision in force: the last latent_set_matmul_precision, else $LATENT_MATMUL_PRECISION's
# where the CPU has it, else "f32".
latent_matmul_precision <- function() .lc("latent_r_matmul_precision")

# Whether this CPU multiplies in bfloat16 (AVX-512 BF16: AMD Zen 4 and later, Intel Cooper
# Lake, Sapphire Rapids and later).
latent_bf16_available <- function() .lc("latent_r_bf16_available")

# How idle pool workers wait during a training step: "spin", "spin-then-park" (the default) or
# "park" (OpenMP's "active" and "passive" too). "park" suits a machine shared with other busy
# processes; results are the same bit for bit under each.
latent_set_wait_policy <- function(policy) {
  old <- latent_wait_policy()
  p <- .setting_name(policy, "policy", c(active = "spin", passive = "park"))
  .lc("latent_r_set_wait_policy", p)
  invisible(old)
}

latent_wait_policy <- function() .lc("latent_r_wait_policy")

# The most bytes all models keep, together, between inference calls (default 256 MB; 0 keeps
# none). Results are the same bits whatever the limit.
latent_set_inference_cache_limit <- function(bytes) {
  old <- latent_inference_cache()[["limit"]]
  .lc("latent_r_set_inference_cache_limit", bytes)
  invisible(old)
}

# c(limit = , held = ): the limit in force and the bytes all models keep now.
latent_inference_cache <- function() {
  v <- .lc("latent_r_inference_cache")
  c(limit = v[1], held = v[2])
}
