# The R binding's test on the 8x8 digits, through the installed package: trains an
# autoencoder, checks the loss, row names, save/load, that inference on R's matrix equals the
# copying path bit for bit, and that bad input is an R error, not a crash. R CMD check runs it
# too (without the data it skips, unless LATENT_REQUIRE_DATA=1). tests/r.rs runs it with
#   R_LIBS=<library with latent installed> LATENT_DIGITS=.../digits/digits.csv.gz
#   LATENT_R_OUT=<scratch dir> LATENT_REQUIRE_DATA=1 Rscript test_latent.R
library(latent)
out_dir <- Sys.getenv("LATENT_R_OUT", tempdir())
digits <- Sys.getenv("LATENT_DIGITS")
if (!nzchar(digits) || !file.exists(digits)) {
  if (Sys.getenv("LATENT_REQUIRE_DATA") == "1") stop("LATENT_DIGITS does not name the digits data (digits.csv.gz)")
  cat("SKIPPED: set LATENT_DIGITS to digits/digits.csv.gz of the latent data folder\n")
  quit(save = "no", status = 0)
}

check <- function(ok, what) {
  if (!isTRUE(ok)) stop("FAILED: ", what, call. = FALSE)
  cat("ok:", what, "\n")
}
expect_error <- function(expr, pattern, what) {
  msg <- tryCatch({ force(expr); NULL }, error = function(e) conditionMessage(e))
  check(!is.null(msg) && grepl(pattern, msg), paste0(what, " is an R error (", msg, ")"))
}

cat("latent", latent_version(), "\n")
d <- read.csv(gzfile(digits), header = FALSE)
check(ncol(d) == 65 && nrow(d) == 1797, "digits: 1797 rows of 64 pixels and a label")
X <- as.matrix(d[, 1:64]) / 16
labels <- d[, 65]
rownames(X) <- paste0("digit", seq_len(nrow(X)))
colnames(X) <- paste0("px", 1:64)

# An autoencoder 64 -> 32 -> 8 -> 32 -> 64 on the column-major double matrix, no transpose.
t0 <- Sys.time()
net <- latent_network(64, encoder = c(32), code = 8, activation = "relu",
                      output_activation = "sigmoid", loss = "mse", seed = 1)
print(net)
untrained <- latent_loss(net, X)
hist <- latent_fit(net, X, epochs = 30, batch_size = 32, learning_rate = 3e-3, seed = 1, threads = 2)
cat(sprintf("trained in %.2f s\n", as.numeric(Sys.time() - t0, units = "secs")))
print(tail(hist, 3))
final <- latent_loss(net, X)
cat(sprintf("MSE per pixel: untrained %.4f, trained %.4f\n", untrained, final))
check(is.data.frame(hist) && nrow(hist) == 30 && all(c("epoch", "train_loss") %in% names(hist)),
      "the history is a data.frame with one row per epoch")
check(hist$train_loss[30] < hist$train_loss[1], "the training loss falls")
# Measured: 0.0204 after 30 epochs, 0.1 s (the untrained network: 0.283).
check(final < 0.03, sprintf("MSE per pixel %.4f < 0.03", final))

# Row names (and column names for reconstructions) are kept.
codes <- encode(net, X[1:10, ])
check(identical(dim(codes), c(10L, 8L)), "encode gives rows x code")
check(identical(rownames(codes), rownames(X)[1:10]), "encode keeps the row names")
rec <- reconstruct(net, X[5:7, ])
check(identical(dimnames(rec), dimnames(X[5:7, ])), "reconstruct keeps row and column names")
check(max(abs(predict(net, X[5:7, ]) - rec)) == 0, "predict of an autoencoder is its reconstruction")
err <- reconstruction_error(net, X[1:4, ])
check(identical(names(err), rownames(X)[1:4]) && all(err >= 0), "reconstruction errors are named")
check(max(abs(err - rowMeans((rec_all <- reconstruct(net, X[1:4, ]) - X[1:4, ])^2))) < 1e-6,
      "the reconstruction error is the row's mean squared error")
# The column-major input gives the same codes as the row-major one the C API takes directly:
# a transposed copy read back by R is the same matrix, so this checks the layout end to end.
check(max(abs(encode(net, t(t(X[1:10, ]))) - codes)) == 0, "layout round trip")
# Inference reads R's matrix in place (latent_network_*_buffer, column-major f64) and gives
# exactly what the copying path (a dataset, a float buffer converted in C) gave.
for (what in c("encode", "reconstruct", "predict", "reconstruction_error", "loss")) {
  direct <- switch(what, encode = encode(net, X), reconstruct = reconstruct(net, X), predict = predict(net, X),
                   reconstruction_error = reconstruction_error(net, X), loss = latent_loss(net, X))
  check(identical(unname(direct), unname(latent:::.copying_path(net, X, what))),
        paste(what, "on the digits: bit-identical to the copying path"))
}
one <- encode(net, X[3, ])
check(identical(dim(one), c(1L, 8L)) && max(abs(one - codes[3, , drop = FALSE])) == 0,
      "a vector is one row")

# Save in R, load in R, identical codes; then the C program loads it (tests/r.rs).
model <- file.path(out_dir, "digits.latent")
save_model(net, model)
net2 <- load_model(model)
check(identical(encode(net2, X), encode(net, X)), "the reloaded model gives identical codes")
onnx <- file.path(out_dir, "digits_encoder.onnx")
export_onnx(net, onnx, part = "encoder")
check(file.exists(onnx) && file.size(onnx) > 64 * 32 * 4, "the ONNX encoder is written")
expect_error(export_onnx(net, onnx, part = "everything"), "unknown ONNX part", "an unknown ONNX part")
write.table(X[1:10, ], file.path(out_dir, "inputs.txt"), row.names = FALSE, col.names = FALSE)
writeLines(apply(codes, 1, function(r) paste(sprintf("%.9g", r), collapse = " ")),
           file.path(out_dir, "codes_r.txt"))

# Bad input is an R error with the library's message, never a crash.
expect_error(encode(net, X[, 1:63]), "SHAPE_MISMATCH|64", "a wrong column count")
bad <- X[1:5, ]
bad[2, 7] <- NaN
expect_error(encode(net, bad), "NON_FINITE", "NaN in the input")
expect_error(latent_dataset(bad), "row 1", "NaN in a dataset (the message names the 0-based row)")
expect_error(latent_fit(net, X[, 1:60], epochs = 1), "SHAPE_MISMATCH|64|60", "fitting on the wrong width")
expect_error(latent_network(64, code = 0), "INVALID_ARGUMENT", "a zero-width code")
expect_error(latent_network(64, code = 4, activation = "swish"), "unknown activation", "an unknown activation")
expect_error(load_model(file.path(out_dir, "missing.latent")), "IO", "a missing model file")
writeBin(as.raw(1:50), file.path(out_dir, "garbage.latent"))
expect_error(load_model(file.path(out_dir, "garbage.latent")), "BAD_FORMAT", "a garbage model file")
expect_error(latent_fit(net, X, epochs = 1, optimizer = "lbfgs"), "unknown optimizer", "an unknown optimizer")
freed <- latent_network(64, code = 4)
latent_free(freed)
expect_error(encode(freed, X[1:2, ]), "freed", "a freed handle")

# A classifier on the labels: probabilities per class, row names kept.
clf <- latent_network(64, encoder = c(32), code = 16, task = "classify", outputs = 10, seed = 2)
train <- latent_dataset(X[1:1400, ], labels = labels[1:1400])
check(identical(dim(train), c(1400, 64)), "dim of a dataset")
h <- latent_fit(clf, train, epochs = 20, batch_size = 32, learning_rate = 3e-3, seed = 2, threads = 2)
p <- predict(clf, X[1401:1797, ])
check(identical(dim(p), c(397L, 10L)) && identical(rownames(p), rownames(X)[1401:1797]),
      "predict gives rows x classes with the row names")
check(max(abs(rowSums(p) - 1)) < 1e-5, "class probabilities sum to 1")
acc <- mean(max.col(p) - 1 == labels[1401:1797])
cat(sprintf("held-out accuracy %.3f\n", acc))
# Measured: 0.914 after 20 epochs.
check(acc > 0.85, sprintf("held-out accuracy %.3f > 0.85", acc))
# A classifier's loss against its labels (the library refused it before, against these docs),
# and no reconstructions: they were the head's logits in a buffer of the input's width, part
# of it uninitialised memory (an outside test).
test_ds <- latent_dataset(X[1401:1797, ], labels = labels[1401:1797])
l <- latent_loss(clf, test_ds)
check(is.finite(l) && l > 0 && l < 1, sprintf("a classifier's loss on labelled rows, %.4f", l))
expect_error(reconstruct(clf, X[1:3, ]), "predict", "reconstruct of a classifier is an error naming predict")

# The progress function sees every epoch end; TRUE stops training (as non-zero in C, True in
# Python); an error inside it is raised from latent_fit.
seen <- c()
h <- latent_fit(clf, train, epochs = 10, batch_size = 64, seed = 3, threads = 1,
                progress = function(p) { seen <<- c(seen, p$epoch); p$epoch >= 3 })
check(identical(seen, c(1L, 2L, 3L)) && nrow(h) == 3 && isTRUE(attr(h, "stopped")),
      "progress returning TRUE at epoch 3 stops after 3 epochs")
h <- latent_fit(clf, train, epochs = 2, batch_size = 64, seed = 3, threads = 1, progress = function(p) FALSE)
check(nrow(h) == 2 && identical(attr(h, "stopped"), FALSE), "progress returning FALSE goes on")
expect_error(latent_fit(clf, train, epochs = 5, batch_size = 64, progress = function(p) stop("boom at epoch ", p$epoch)),
             "boom at epoch 1", "an error in the progress function")
check(all(is.finite(predict(clf, X[1:3, ]))), "the network is usable after a stopped fit")
# Freeing the network or the dataset from the progress function is an R error (it crashed R).
expect_error(latent_fit(clf, train, epochs = 2, batch_size = 64, progress = function(p) latent_free(clf)),
             "in use by a running latent_fit", "latent_free of the network being fitted")
expect_error(latent_fit(clf, train, epochs = 2, batch_size = 64, progress = function(p) latent_free(train)),
             "in use by a running latent_fit", "latent_free of the dataset being fitted")
check(all(is.finite(predict(clf, X[1:3, ]))) && identical(dim(train), c(1400, 64)),
      "both are usable after the refused frees")

# Checkpoint and resume: a fit stopped right after latent_checkpoint() at epoch 3 (from its
# progress function), and one stopped after epoch 5 with periodic checkpoints every 2 epochs,
# are finished by latent_resume() from the files into new networks: the model files and the
# history (losses, learning rates) are those of the straight fit, bit for bit.
mk <- function() latent_network(64, encoder = c(16), code = 4, seed = 5)
Xs <- X[1:600, ]
straight <- mk()
hs <- latent_fit(straight, Xs, epochs = 6, batch_size = 64, seed = 4, threads = 1)
save_model(straight, f_straight <- file.path(out_dir, "straight.latent"))
bytes <- function(f) readBin(f, "raw", file.info(f)$size)
same_fit <- function(r, what) {
  save_model(r$net, f <- file.path(out_dir, "resumed.latent"))
  check(identical(bytes(f), bytes(f_straight)), paste(what, ": the model file is the straight fit's"))
  check(identical(r$history$train_loss, hs$train_loss) && identical(r$history$learning_rate, hs$learning_rate),
        paste(what, ": the history is the straight fit's"))
}
ck <- file.path(out_dir, "fit.ck")
hp <- latent_fit(mk(), Xs, epochs = 6, batch_size = 64, seed = 4, threads = 1,
                 progress = function(p) { if (p$epoch == 3) latent_checkpoint(ck); p$epoch >= 3 })
check(isTRUE(attr(hp, "stopped")) && nrow(hp) == 3 && file.exists(ck), "checkpoint from the progress function, then stop")
same_fit(latent_resume(ck, Xs), "resumed from the callback's checkpoint")
ck2 <- file.path(out_dir, "periodic.ck")
hp <- latent_fit(mk(), Xs, epochs = 6, batch_size = 64, seed = 4, threads = 1, checkpoint_path = ck2,
                 checkpoint_every = 2, progress = function(p) p$epoch >= 5)
same_fit(latent_resume(ck2, Xs), "resumed from the periodic checkpoint")
expect_error(latent_checkpoint(ck), "inside a latent_fit progress function", "a checkpoint outside a fit")
expect_error(latent_resume(f_straight, Xs), "BAD_FORMAT", "a model file as a checkpoint")
expect_error(latent_resume(ck, X[601:1200, ]), "differ", "resuming on other rows")

# Finalizers free what is no longer referenced.
rm(net, net2, clf, train, freed)
invisible(gc())
cat("ALL R TESTS PASSED\n")
