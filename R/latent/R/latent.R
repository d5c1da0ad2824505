# R interface to liblatent. Every function calls the C glue in src/latent_r.c through .Call;
# handles are external pointers freed by finalizers (or latent_free()). Errors from the library
# are R errors carrying its message.

.lc <- function(name, ...) .Call(name, ..., PACKAGE = "latent")

# A numeric matrix as the C glue takes it: double, column-major (R's own order, no transpose).
.as_matrix <- function(x) {
  if (is.data.frame(x)) x <- as.matrix(x)
  if (is.null(dim(x))) x <- matrix(x, nrow = 1L)
  if (!is.numeric(x) && !is.logical(x)) stop("latent: `x` must be a numeric matrix")
  if (storage.mode(x) != "double") storage.mode(x) <- "double"
  x
}

# Keeps the input's row names on a result matrix.
.keep_rownames <- function(out, x, colnames = NULL) {
  rn <- rownames(x)
  if (!is.null(rn) || !is.null(colnames)) dimnames(out) <- list(rn, colnames)
  out
}

latent_version <- function() .lc("latent_r_version")

latent_network <- function(input_dim, encoder = integer(), code = 2L, activation = "relu",
                           output_activation = if (task == "classify") "identity" else "sigmoid",
                           loss = "mse", seed = 0, task = "reconstruct", outputs = 0L,
                           code_activation = "identity") {
  h <- .lc("latent_r_network_new", input_dim, as.numeric(encoder), code, activation,
           code_activation, output_activation, loss, seed, task, outputs)
  structure(list(handle = h), class = "latent_network")
}

print.latent_network <- function(x, ...) {
  cat(.lc("latent_r_network_describe", x$handle), "\n", sep = "")
  invisible(x)
}

.info <- function(net) {
  v <- .lc("latent_r_network_info", net$handle)
  list(input_dim = v[1], code_dim = v[2], output_dim = v[3],
       task = c("reconstruct", "classify", "regress")[v[4] + 1])
}

# A dataset: the rows of `x` (samples x features), optionally with integer class labels
# (0-based, for task = "classify") or a targets matrix (task = "regress").
latent_dataset <- function(x, labels = NULL, targets = NULL) {
  x <- .as_matrix(x)
  if (!is.null(labels)) {
    if (is.factor(labels)) labels <- as.integer(labels) - 1L
    if (any(is.na(labels)) || any(labels != round(labels))) stop("latent: `labels` must be whole numbers")
    labels <- as.integer(labels)
  }
  if (!is.null(targets)) {
    targets <- .as_matrix(targets)
  }
  h <- .lc("latent_r_dataset_new", x, labels, targets)
  structure(list(handle = h), class = "latent_dataset")
}

dim.latent_dataset <- function(x) .lc("latent_r_dataset_dim", x$handle)

.as_dataset <- function(data) if (inherits(data, "latent_dataset")) data else latent_dataset(data)

# Trains `net` in place; returns the history (one row per epoch of this fit) as a data.frame.
# `progress`, a function of one list (event, epoch (1-based), epochs, loss, penalty, valid_loss),
# is called at each epoch end: returning TRUE stops training (as non-zero in C and True in
# Python); the history then has attr(, "stopped") TRUE. An error inside it stops training and is
# raised from latent_fit; the network keeps its last completed step either way.
# `checkpoint_path` (with `checkpoint_every` epochs) writes the whole training state there
# periodically; inside `progress`, latent_checkpoint(path) writes it at that epoch end;
# latent_resume(path, data) finishes the fit from such a file (docs/checkpoint.md).
latent_fit <- function(net, data, epochs = 10L, batch_size = 128L, learning_rate = 1e-3,
                       optimizer = "adam", seed = 0, threads = 0L, validation_fraction = 0,
                       progress = NULL, checkpoint_path = NULL, checkpoint_every = 1L) {
  stopifnot(inherits(net, "latent_network"))
  stopifnot(is.null(progress) || is.function(progress))
  data <- .as_dataset(data)
  failure <- NULL
  cb <- if (is.null(progress)) NULL else function(p) {
    tryCatch(isTRUE(progress(p)), error = function(e) {
      failure <<- e
      TRUE
    })
  }
  if (!is.null(checkpoint_path)) checkpoint_path <- path.expand(checkpoint_path)
  h <- .lc("latent_r_fit", net$handle, data$handle, epochs, batch_size, learning_rate,
           optimizer, seed, threads, validation_fraction, cb, checkpoint_path, checkpoint_every)
  if (!is.null(failure)) stop(failure)
  .history(h)
}

.history <- function(h) {
  stopped <- isTRUE(attr(h, "stopped"))
  attr(h, "stopped") <- NULL
  h <- as.data.frame(h)
  attr(h, "stopped") <- stopped
  h
}

# Inside a latent_fit progress function, at an epoch end (p$event == "epoch_end"): saves the
# fit's whole training state to `path` (atomically). Return TRUE from the progress function
# afterwards to stop the fit; latent_resume continues it.
latent_checkpoint <- function(path) invisible(.lc("latent_r_checkpoint", path.expand(path)))

# The network of a checkpoint, trained on `data` (the rows of the checkpointed fit) to the end
# of that fit: list(net, history), the history of every epoch, those before the checkpoint too.
# The result is bit-identical to the fit that was never interrupted.
latent_resume <- function(path, data, progress = NULL) {
  stopifnot(is.null(progress) || is.function(progress))
  data <- .as_dataset(data)
  failure <- NULL
  cb <- if (is.null(progress)) NULL else function(p) {
    tryCatch(isTRUE(progress(p)), error = function(e) {
      failure <<- e
      TRUE
    })
  }
  r <- .lc("latent_r_resume", path.expand(path), data$handle, cb)
  if (!is.null(failure)) stop(failure)
  list(net = structure(list(handle = r$net), class = "latent_network"), history = .history(r$history))
}

encode <- function(net, x) {
  x <- .as_matrix(x)
  .keep_rownames(.lc("latent_r_encode", net$handle, x), x)
}

reconstruct <- function(net, x) {
  x <- .as_matrix(x)
  .keep_rownames(.lc("latent_r_reconstruct", net$handle, x), x, colnames(x))
}

# Class probabilities (classifier), predictions (regressor) or reconstructions (autoencoder).
predict.latent_network <- function(object, newdata, ...) {
  x <- .as_matrix(newdata)
  out <- .lc("latent_r_predict", object$handle, x)
  cn <- if (.info(object)$task == "reconstruct") colnames(x) else NULL
  .keep_rownames(out, x, cn)
}

# Per-row reconstruction error (anomaly score), named by the input's row names.
reconstruction_error <- function(net, x) {
  x <- .as_matrix(x)
  e <- .lc("latent_r_reconstruction_error", net$handle, x)
  names(e) <- rownames(x)
  e
}

# The loss on a dataset (with its labels or targets), or on a plain matrix (an autoencoder's
# reconstruction loss, read where R holds it, as encode does).
latent_loss <- function(net, data) {
  if (inherits(data, "latent_dataset")) return(.lc("latent_r_loss", net$handle, data$handle))
  .lc("latent_r_loss_matrix", net$handle, .as_matrix(data))
}

# The same inference through a dataset and a float buffer (the binding's path before the
# _buffer calls), for the tests' bit-for-bit comparison: what = "encode", "reconstruct",
# "predict", "reconstruction_error" or "loss".
.copying_path <- function(net, x, what) {
  k <- match(what, c("encode", "reconstruct", "predict", "reconstruction_error", "loss")) - 1
  if (is.na(k)) stop("latent: unknown path ", what)
  .lc("latent_r_copying_path", net$handle, .as_matrix(x), k)
}

save_model <- function(net, path) invisible(.lc("latent_r_save", net$handle, path.expand(path)))

# Writes one part of the network as an ONNX model (opset 17) for ONNX Runtime and other
# runtimes: "encoder" (x -> code), "decoder", "reconstruction" or "predict"; see docs/serving.md.
export_onnx <- function(net, path, part = "encoder") {
  parts <- c(encoder = 0, decoder = 1, reconstruction = 2, predict = 3)
  if (!is.character(part) || length(part) != 1L || !(part %in% names(parts)))
    stop("latent: unknown ONNX part ", deparse(part), " (encoder, decoder, reconstruction, predict)")
  invisible(.lc("latent_r_export_onnx", net$handle, path.expand(path), parts[[part]]))
}

load_model <- function(path) {
  structure(list(handle = .lc("latent_r_load", path.expand(path))), class = "latent_network")
}

# Frees a network's or dataset's memory now instead of at garbage collection.
latent_free <- function(obj) invisible(.lc("latent_r_free", obj$handle))
