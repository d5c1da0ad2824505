# The process-wide settings from R: each setter changes what its getter reports and returns the
# setting before it; the other libraries' names are taken; bad names and numbers are R errors
# that change nothing; bf16 products change encode's bits and f32 gives them back.
library(latent)

check <- function(ok, what) {
  if (!isTRUE(ok)) stop("FAILED: ", what, call. = FALSE)
  cat("ok:", what, "\n")
}
expect_error <- function(expr, pattern, what) {
  msg <- tryCatch({ force(expr); NULL }, error = function(e) conditionMessage(e))
  check(!is.null(msg) && grepl(pattern, msg), paste0(what, " is an R error (", msg, ")"))
}

# Wait policy.
start <- latent_wait_policy()
check(start %in% c("spin", "spin-then-park", "park"), paste("a wait policy in force:", start))
check(identical(latent_set_wait_policy("park"), start), "the setter returns the policy before it")
check(identical(latent_wait_policy(), "park"), "park is in force")
latent_set_wait_policy(" Active ")
check(identical(latent_wait_policy(), "spin"), "OpenMP's active is spin")
latent_set_wait_policy("passive")
check(identical(latent_wait_policy(), "park"), "OpenMP's passive is park")
latent_set_wait_policy("spin-then-park")
check(identical(latent_wait_policy(), "spin-then-park"), "spin-then-park is in force")
expect_error(latent_set_wait_policy("sleepy"), "unknown wait policy \"sleepy\"", "an unknown policy")
expect_error(latent_set_wait_policy(NA_character_), "one string", "NA")
expect_error(latent_set_wait_policy(c("spin", "park")), "one string", "two policies")
expect_error(latent_set_wait_policy(2), "one string", "a number")
check(identical(latent_wait_policy(), "spin-then-park"), "a refused policy changes nothing")
latent_set_wait_policy(start)

# Matmul precision: encode with each and compare.
set.seed(3)
X <- matrix(runif(200 * 24), 200, 24)
net <- latent_network(24, encoder = c(32), code = 8, seed = 5)
invisible(latent_fit(net, X, epochs = 2, batch_size = 50, seed = 5, threads = 1))
first <- latent_matmul_precision()
latent_set_matmul_precision("f32")
f32 <- encode(net, X)
if (latent_bf16_available()) {
  check(identical(latent_set_matmul_precision("bf16"), "f32"), "the setter returns f32")
  check(identical(latent_matmul_precision(), "bf16"), "bf16 is in force")
  b16 <- encode(net, X)
  d <- max(abs(b16 - f32)) / max(abs(f32))
  check(!identical(b16, f32) && d < 2e-2, sprintf("bf16 codes differ from f32's by %.2g of the largest", d))
  latent_set_matmul_precision(" Medium")
  check(identical(latent_matmul_precision(), "bf16"), "JAX's medium is bf16")
  latent_set_matmul_precision("float32")
  check(identical(latent_matmul_precision(), "f32"), "float32 is f32")
  check(identical(encode(net, X), f32), "back in f32 the codes are f32's, bit for bit")
} else {
  expect_error(latent_set_matmul_precision("bf16"), "UNSUPPORTED.*AVX-512 BF16", "bf16 without AVX-512 BF16")
  check(identical(latent_matmul_precision(), "f32"), "the refused bf16 changes nothing")
}
expect_error(latent_set_matmul_precision("fp16"), "unknown matmul precision \"fp16\"", "fp16")
check(identical(latent_matmul_precision(), "f32"), "a refused precision changes nothing")
latent_set_matmul_precision(first)

# Inference cache.
limit0 <- latent_inference_cache()[["limit"]]
check(identical(latent_set_inference_cache_limit(0), limit0), "the setter returns the limit before it")
invisible(encode(net, X))
check(identical(latent_inference_cache(), c(limit = 0, held = 0)), "limit 0 keeps nothing")
latent_set_inference_cache_limit(4e6)
invisible(encode(net, X))
kept <- latent_inference_cache()
check(kept[["limit"]] == 4e6 && kept[["held"]] > 0 && kept[["held"]] <= 4e6,
      sprintf("a 4 MB limit keeps %g bytes after an encode", kept[["held"]]))
check(identical(encode(net, X), f32), "codes from a kept workspace are the same bits")
latent_set_inference_cache_limit(0)
check(latent_inference_cache()[["held"]] == 0, "lowering the limit to 0 frees what was kept at once")
latent_set_inference_cache_limit(4e6)
expect_error(latent_set_inference_cache_limit(-1), "whole number of bytes", "a negative limit")
expect_error(latent_set_inference_cache_limit(1.5), "whole number of bytes", "a fractional limit")
expect_error(latent_set_inference_cache_limit(NA_real_), "is NA", "an NA limit")
expect_error(latent_set_inference_cache_limit("1"), "one number", "a string limit")
check(latent_inference_cache()[["limit"]] == 4e6, "a refused limit changes nothing")
latent_set_inference_cache_limit(limit0)
latent_free(net)
cat("ALL R SETTINGS TESTS PASSED\n")
