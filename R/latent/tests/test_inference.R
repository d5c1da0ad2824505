# Inference on R's own matrix, through the installed package and without data files (R CMD
# check runs it; so does tests/r.rs): encode, reconstruct, predict, reconstruction_error and
# latent_loss hand the column-major double matrix to the library's _buffer calls where it lies.
# Checked here: the results are bit-identical to the copying path (a dataset and a float
# buffer), the matrix is not duplicated on the R side (tracemem), and bad input is an R error.
library(latent)

check <- function(ok, what) {
  if (!isTRUE(ok)) stop("FAILED: ", what, call. = FALSE)
  cat("ok:", what, "\n")
}
expect_error <- function(expr, pattern, what) {
  msg <- tryCatch({ force(expr); NULL }, error = function(e) conditionMessage(e))
  check(!is.null(msg) && grepl(pattern, msg), paste0(what, " is an R error (", msg, ")"))
}
paths <- c("encode", "reconstruct", "predict", "reconstruction_error", "loss")
direct <- function(net, x, what) {
  switch(what, encode = encode(net, x), reconstruct = reconstruct(net, x), predict = predict(net, x),
         reconstruction_error = reconstruction_error(net, x), loss = latent_loss(net, x))
}

set.seed(7)
# 3000 rows: more than one of the library's 1024-row inference blocks, and enough elements
# (60,000) for its threaded path.
X <- matrix(runif(3000 * 20), 3000, 20)
net <- latent_network(20, encoder = c(16), code = 4, seed = 3)
h <- latent_fit(net, X[1:600, ], epochs = 3, batch_size = 32, learning_rate = 3e-3, seed = 3, threads = 1)
check(nrow(h) == 3 && h$train_loss[3] < h$train_loss[1], "a small fit")
for (what in paths) {
  check(identical(unname(direct(net, X, what)), unname(latent:::.copying_path(net, X, what))),
        paste(what, ": bit-identical to the copying path"))
}
# A row slice (a new R matrix) gives the rows of the whole (to float rounding: other block sizes).
check(max(abs(encode(net, X[11:20, ]) - encode(net, X)[11:20, ])) < 1e-6, "encode of a slice is the slice of encode")
# A classifier's probabilities and a regressor's predictions likewise.
clf <- latent_network(20, encoder = c(8), code = 6, task = "classify", outputs = 3, seed = 4)
latent_fit(clf, latent_dataset(X[1:300, ], labels = rep(0:2, 100)), epochs = 2, batch_size = 50, seed = 4, threads = 1)
check(identical(predict(clf, X), latent:::.copying_path(clf, X, "predict")), "classifier predict: bit-identical")
check(identical(encode(clf, X), latent:::.copying_path(clf, X, "encode")), "classifier encode: bit-identical")
expect_error(latent_loss(clf, X), "INVALID_ARGUMENT", "the loss of a classifier without labels")

# No copy of the input on the R side: tracemem reports every duplicate of a traced object.
if (capabilities("profmem")) {
  Y <- X + 0
  tracemem(Y)
  control <- capture.output({ Z <- Y; Z[1, 1] <- 0 })
  check(any(grepl("tracemem", control)), "tracemem sees a copy (control)")
  seen <- capture.output(for (what in paths) invisible(direct(net, Y, what)))
  check(!any(grepl("tracemem", seen)), "inference does not duplicate the input matrix")
  untracemem(Y)
} else {
  cat("SKIPPED: tracemem (R built without memory profiling)\n")
}

# Integer and logical matrices are converted to double first (the one conversion R needs).
I <- matrix(as.integer(X[1:5, ] > 0.5), 5, 20)
check(identical(encode(net, I), encode(net, I * 1.0)), "an integer matrix is read as double")
# Zero rows give an empty result.
check(identical(dim(encode(net, X[0, , drop = FALSE])), c(0L, 4L)), "zero rows give a 0 x code matrix")
check(length(reconstruction_error(net, X[0, , drop = FALSE])) == 0, "zero rows give no scores")

# Bad input: R errors carrying the library's status and message.
expect_error(encode(net, X[, 1:19]), "SHAPE_MISMATCH", "a wrong column count")
expect_error(predict(net, X[, 1:19]), "SHAPE_MISMATCH", "a wrong column count in predict")
bad <- X[1:5, ]
bad[4, 2] <- Inf
expect_error(reconstruct(net, bad), "NON_FINITE.*row 3, column 1", "infinity (0-based row and column named)")
bad[4, 2] <- 1e300
expect_error(encode(net, bad), "NON_FINITE.*f32 range", "a double beyond the float range")
expect_error(latent_loss(net, X[0, , drop = FALSE]), "no rows", "the loss of zero rows")
expect_error(encode(net, "a"), "numeric matrix", "a string")
cat("ALL R INFERENCE TESTS PASSED\n")
