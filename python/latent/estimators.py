"""scikit-learn and PyOD front ends for latent's autoencoders (docs/python.md).

``AutoencoderTransformer`` is a scikit-learn transformer (``fit``, ``transform``,
``inverse_transform``, ``score_samples``, ``get_params``/``set_params``; it passes sklearn's
``check_estimator``). ``AutoencoderDetector`` is a PyOD detector (``contamination``,
``decision_function``, ``predict``, ``predict_proba``, ``threshold_``, ``labels_``). Both keep
the scaling they fit inside the model (raw-input mode), so the fitted ``network_`` serves raw
rows as they are and saves with its scaling.

scikit-learn and PyOD are optional: this module imports them, the rest of latent does not.
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .core import Dataset, Network, Trainer


class AutoencoderTransformer(TransformerMixin, BaseEstimator):
    """An undercomplete autoencoder as a transformer: ``transform`` gives the codes,
    ``inverse_transform`` decodes codes back to rows, ``score_samples`` is minus the per-row
    reconstruction error (higher is more typical, sklearn's convention)."""

    def __init__(self, code=2, encoder=(32,), activation="tanh", epochs=50, batch_size=64, learning_rate=3e-3,
                 scaling="z_score", seed=0, threads=0):
        self.code = code
        self.encoder = encoder
        self.activation = activation
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.scaling = scaling
        self.seed = seed
        self.threads = threads

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float32, reset=True)
        train = Dataset(X)
        if self.scaling not in (None, "none"):
            train.scale(self.scaling)
        net = Network(input_dim=X.shape[1], encoder=list(self.encoder), code=int(self.code),
                      hidden_activation=self.activation, code_activation="identity", output_activation="identity",
                      loss="mse", seed=int(self.seed))
        Trainer(epochs=int(self.epochs), batch_size=int(self.batch_size), learning_rate=float(self.learning_rate),
                seed=int(self.seed), threads=int(self.threads)).fit(net, train)
        net.raw_input = True  # the model applies the scaling it was fitted with
        self.network_ = net
        return self

    def _rows(self, X):
        check_is_fitted(self, "network_")
        return validate_data(self, X, dtype=np.float32, reset=False)

    def transform(self, X):
        return self.network_.encode(self._rows(X)).astype(np.float64)

    def inverse_transform(self, X):
        check_is_fitted(self, "network_")
        Z = check_array(X, dtype=np.float32)
        if Z.shape[1] != int(self.code):
            raise ValueError(f"X has {Z.shape[1]} features, the codes have {int(self.code)}")
        return self.network_.decode(Z).astype(np.float64)

    def score_samples(self, X):
        return -np.asarray(self.network_.reconstruction_error(self._rows(X)), np.float64)

    def score(self, X, y=None):
        return float(np.mean(self.score_samples(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags


_AE_PARAMS = ("code", "encoder", "activation", "epochs", "batch_size", "learning_rate", "scaling", "seed", "threads")

try:
    from pyod.models.base import BaseDetector
except ImportError:  # PyOD is optional
    BaseDetector = None

if BaseDetector is not None:

    class AutoencoderDetector(BaseDetector):
        """A PyOD detector: the outlier score is the row's reconstruction error (in the scaled
        space the autoencoder was trained in). ``contamination`` sets ``threshold_`` as PyOD
        does, from the training scores."""

        def __init__(self, contamination=0.1, code=2, encoder=(32,), activation="tanh", epochs=50, batch_size=64,
                     learning_rate=3e-3, scaling="z_score", seed=0, threads=0):
            super().__init__(contamination=contamination)
            # The autoencoder's parameters, as AutoencoderTransformer takes them.
            for name in _AE_PARAMS:
                setattr(self, name, locals()[name])

        def fit(self, X, y=None):
            X = check_array(X, dtype=np.float32)
            self.n_features_in_ = X.shape[1]  # scikit-learn's convention (an outside test)
            self._set_n_classes(y)
            self.model_ = AutoencoderTransformer(**{name: getattr(self, name) for name in _AE_PARAMS}).fit(X)
            self.decision_scores_ = self.decision_function(X)
            self._process_decision_scores()
            return self

        def decision_function(self, X):
            check_is_fitted(self, "model_")
            return -self.model_.score_samples(X)
