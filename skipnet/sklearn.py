"""scikit-learn estimators: SkipNetRegressor and SkipNetClassifier.

    from skipnet.sklearn import SkipNetRegressor, SkipNetClassifier
    reg = SkipNetRegressor(hidden_layer_sizes=(32, 32), skip="first-to-output", loss="l1").fit(X, y)
    clf = SkipNetClassifier(hidden_layer_sizes=(32, 32)).fit(X, labels)   # any label type

They follow scikit-learn's estimator contract (``__init__`` only stores its arguments; learned attributes
end in ``_``; ``validate_data`` / ``check_is_fitted``; ``random_state``) and pass its
``check_estimator`` suite. Training is skipnet's own: a ``skipnet.Network`` (``network_``) trained in place
by a ``skipnet.Trainer``, so losses, optimizers and sub-gradients are PyTorch's (see docs/design.md). The
regressor offers the L1 loss (median regression, robust to outliers) beside the squared error; the
classifier uses binary cross-entropy on one logit for two classes and softmax cross-entropy for more.

Stopping as ``MLPRegressor``/``MLPClassifier``: training runs at most ``epochs`` epochs (their
``max_iter``) and stops earlier when the monitored loss (the training loss, or the validation loss with
``early_stopping=True``) has not improved by ``tol`` for more than ``n_iter_no_change`` epochs
(``n_iter_no_change=None`` always runs every epoch). With early stopping the weights of the best
validation epoch are kept and ``validation_loss_curve_`` holds the validation loss of every epoch.
Like the MLPs, inputs are not scaled for you: put a ``StandardScaler`` in front (``make_pipeline``).

Parameters are validated at every ``fit`` and ``partial_fit`` (whatever ``set_params`` or an assignment
changed). Fitted attributes are checked against ``network_`` before they are used, so one overwritten
gives a clear ValueError or TypeError rather than a crash or a wrong answer.
"""

from __future__ import annotations

import copy
import json
import numbers
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

try:
    from scipy.special import expit, log_expit, log_softmax, softmax
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state
    from sklearn.utils.class_weight import compute_class_weight
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("skipnet.sklearn needs scikit-learn >= 1.6: pip install 'skipnet[sklearn]'") from exc

from . import _modelfile as MF
from . import _validation as V
from ._targets import CLASSIFICATION_LOSSES, classification_loss, encode_targets
from .network import BACKENDS, INITS, SKIP_KINDS, Network
from .trainer import History, Trainer

__all__ = ["SkipNetClassifier", "SkipNetRegressor"]

_SEED_BOUND = 2**31 - 1


class _EpochMonitor:
    """Trainer callback: MLP-style stopping on the monitored loss, best-weights snapshots, verbose lines."""

    def __init__(self, net: Network, tol: float, n_iter_no_change: int | None, on_validation: bool,
                 verbose: bool, first_epoch: int):
        self.net, self.tol, self.patience = net, tol, n_iter_no_change
        self.on_validation, self.verbose, self.first_epoch = on_validation, verbose, first_epoch
        self.best = np.inf
        self.best_params: np.ndarray | None = None
        self.no_improvement = 0

    def __call__(self, trainer: Trainer, epoch: int, history: History) -> bool:
        value = float(history.val_loss[-1] if self.on_validation else history.epoch_loss[-1])
        if self.verbose:
            val = f", validation loss = {history.val_loss[-1]:.8f}" if len(history.val_loss) else ""
            print(f"Epoch {self.first_epoch + len(history.epoch_loss)}, loss = "
                  f"{history.epoch_loss[-1]:.8f}{val}")
        self.no_improvement = self.no_improvement + 1 if value > self.best - self.tol else 0
        if value < self.best:
            self.best = value
            if self.on_validation:
                self.best_params = self.net.internals.params.copy()
        return self.patience is not None and self.no_improvement > self.patience


def _resolve_skip(p: dict[str, Any]) -> str | None:
    """The network's skip: "auto" is "first-to-output" with two or more hidden layers, else none."""
    if p["skip"] != "auto":
        return p["skip"]
    return "first-to-output" if len(p["hidden_layer_sizes"]) >= 2 else None


# ------------------------------------------------------------------------------------------ model files
# An estimator file is the network's model file (skipnet._modelfile) with one more metadata entry,
# ESTIMATOR_KEY: JSON {"format_version", "estimator": class name, "params": every constructor parameter,
# "tuples": names of the parameters that were tuples, "mappings": names of the parameters that were dicts
# (stored as [key, value] pairs, e.g. class_weight), "fitted": the fitted attributes, "classes": the
# classifier's labels and their dtype}. Nothing is pickled: only JSON-representable values are stored.
ESTIMATOR_KEY = "skipnet.estimator"
ESTIMATOR_FORMAT_VERSION = 1
_FITTED_ATTRIBUTES = ("n_features_in_", "n_outputs_", "loss_curve_", "validation_loss_curve_", "best_loss_",
                      "best_validation_loss_", "n_iter_", "t_", "stopped_reason_")


def _json_value(what: str, value):
    """``value`` as plain JSON data (NumPy scalars as Python ones), or ValueError naming ``what``."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(what, item) for item in value]
    raise ValueError(f"{what} is a {type(value).__name__}, which an estimator file cannot hold (only JSON "
                     "values: numbers, strings, None and lists of them; no pickled objects): set it to "
                     "such a value (e.g. set_params(schedule=None), random_state=an int) before saving")


def _estimator_entry(est) -> str:
    params = est.get_params(deep=False)
    fitted = {name: _json_value(f"fitted attribute {name}", est.__dict__[name])
              for name in _FITTED_ATTRIBUTES if name in est.__dict__}
    names = getattr(est, "feature_names_in_", None)
    if names is not None:
        fitted["feature_names_in_"] = [str(name) for name in names]
    mappings = sorted(name for name, value in params.items() if isinstance(value, dict))
    stored = {name: list(value.items()) if name in mappings else value for name, value in params.items()}
    entry = {"format_version": ESTIMATOR_FORMAT_VERSION, "estimator": type(est).__name__,
             "params": {name: _json_value(f"parameter {name}", value) for name, value in stored.items()},
             "tuples": sorted(name for name, value in params.items() if isinstance(value, tuple)),
             "mappings": mappings, "fitted": fitted}
    classes = getattr(est, "classes_", None)
    if classes is not None:
        entry["classes"] = {"values": _json_value("classes_", classes.tolist()), "dtype": classes.dtype.str}
    return json.dumps(entry)


def _stratify(targets: np.ndarray, loss: str, fraction: float) -> np.ndarray | None:
    """Class indices to stratify the validation split by, when every class can be represented."""
    if loss not in CLASSIFICATION_LOSSES:
        return None
    labels = targets.ravel()
    counts = np.bincount(labels.astype(np.intp))
    n_val = int(np.ceil(fraction * labels.size))
    if counts[counts > 0].min() < 2 or n_val < np.count_nonzero(counts) \
            or labels.size - n_val < np.count_nonzero(counts):
        return None  # too few samples for every class on both sides: a plain random split
    return labels


def _validate_data(estimator, X, y="no_validation", **kwargs):
    """scikit-learn's validate_data, with inputs larger than memory refused before NumPy materialises
    them (a broadcast view, a memory map) and a number beyond float64 reported as a ValueError naming
    its argument (NumPy raises a bare OverflowError for a Python int such as 10**400)."""
    given = {"X": X} if isinstance(y, str) and y == "no_validation" else {"X": X, "y": y}
    for name, value in given.items():
        V.check_input_size(name, value)
    try:
        return validate_data(estimator, X, y, **kwargs)
    except ArithmeticError as exc:  # OverflowError, or a number type's own failure to give a float
        blamed = [name for name, value in given.items() if _fails_conversion(value)] or list(given)
        what = "a number too large for float64" if isinstance(exc, OverflowError) else \
            "a value that cannot be converted to a float"
        raise ValueError(f"{' or '.join(blamed)} holds {what}: {exc}") from exc


def _fails_conversion(value) -> bool:
    """True when ``value`` raises an ArithmeticError as a float64 array."""
    try:
        np.asarray(value, dtype=np.float64)
    except ArithmeticError:
        return True
    except (TypeError, ValueError):
        return False
    return False


def _split_weights(weight: np.ndarray, share: str) -> np.ndarray:
    """One side of early stopping's split of the sample weights, refused when all its weights are 0."""
    if not weight.any():
        raise ValueError(f"sample_weight is zero for every sample of {share} of early_stopping's split: give "
                         "more samples a positive weight, or use another random_state")
    return weight


def _keep_parameters(estimator: BaseEstimator, parameters: dict[str, Any]) -> None:
    """Store each constructor parameter (``locals()`` of an ``__init__``) under its own name, unchanged:
    scikit-learn's rule (get_params reads them back; fit validates). The signatures themselves stay
    explicit, since scikit-learn reads the parameters from them."""
    for name, value in parameters.items():
        if name != "self":
            setattr(estimator, name, value)


class _SkipNetBase(BaseEstimator):
    """Shared training; subclasses declare the parameters (their __init__) and say how targets become
    network outputs."""

    _loss_choices: tuple[str, ...] = ()

    # ------------------------------------------------------------------ hooks for subclasses
    def _encode_targets(self, y, first: bool, incremental: bool, classes=None):
        """(targets as the network trains on them (skipnet._targets.encode_targets), loss name, number of
        network outputs, the fitted attributes that describe the targets)."""
        raise NotImplementedError

    def _validate_xy(self, X, y, reset: bool):
        raise NotImplementedError

    def _sample_weights(self, y, sample_weight, incremental: bool, classes):
        """The weights the trainer gets: (n,) float64 or None (see Trainer.fit's sample_weight)."""
        return V.as_sample_weight(sample_weight, len(y))

    def _check_loss(self) -> str | None:
        """The validated ``loss`` parameter (the regressor's), or None when the targets decide it."""
        return None

    def _check_target_attributes(self, net: Network) -> None:
        """Check the fitted attributes describing the targets against ``net``'s outputs."""
        raise NotImplementedError

    # ------------------------------------------------------------------ parameters
    def _hidden_sizes(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = (sizes,)
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise TypeError(f"hidden_layer_sizes must be an int or a sequence of ints, got {sizes!r}")
        return tuple(V.check_int(f"hidden_layer_sizes[{i}]", s, minimum=1) for i, s in enumerate(sizes))

    def _validated_params(self) -> dict[str, Any]:
        """Every parameter, checked (scikit-learn's convention: ``__init__`` stores, ``fit`` and
        ``partial_fit`` validate, so values given to ``set_params`` or assigned are checked too).
        Returns the checked values; ``random_state`` becomes its RandomState."""
        p: dict[str, Any] = {"hidden_layer_sizes": self._hidden_sizes(), "loss": self._check_loss()}
        if not (self.skip is None or isinstance(self.skip, str)) or self.skip not in SKIP_KINDS + ("auto",):
            raise ValueError(f"skip must be 'auto', None, 'first-to-output' or 'residual', got {self.skip!r}")
        p["skip"] = self.skip
        p["optimizer"] = V.check_choice("optimizer", self.optimizer, V.OPTIMIZERS)
        p["lr"] = V.check_float("lr", self.lr, positive=True)
        auto = isinstance(self.batch_size, str) and self.batch_size == "auto"
        p["batch_size"] = "auto" if auto else V.check_int("batch_size", self.batch_size, minimum=1)
        p["epochs"] = V.check_int("epochs", self.epochs, minimum=1)
        p["momentum"] = V.check_float("momentum", self.momentum, minimum=0.0)  # checked even where Adam ignores it
        p["nesterov"] = V.check_bool("nesterov", self.nesterov)
        p["weight_decay"] = V.check_float("weight_decay", self.weight_decay, minimum=0.0)
        if self.schedule is not None and not callable(getattr(self.schedule, "lr", None)):
            raise TypeError("schedule must be None or an object with an lr(step, epoch) method "
                            f"(see skipnet.schedules), got {type(self.schedule).__name__}")
        p["schedule"] = self.schedule
        p["shuffle"] = V.check_bool("shuffle", self.shuffle)
        p["early_stopping"] = V.check_bool("early_stopping", self.early_stopping)
        fraction = V.check_float("validation_fraction", self.validation_fraction, minimum=0.0, maximum=1.0)
        if fraction == 1 or (p["early_stopping"] and fraction == 0):
            raise ValueError(f"validation_fraction must lie strictly between 0 and 1, got {fraction}")
        p["validation_fraction"] = fraction
        p["n_iter_no_change"] = (None if self.n_iter_no_change is None else
                                 V.check_int("n_iter_no_change", self.n_iter_no_change, minimum=1))
        p["tol"] = V.check_float("tol", self.tol, minimum=0.0)
        p["dtype"] = V.check_dtype(self.dtype).name
        p["init"] = V.check_choice("init", self.init, INITS)
        p["backend"] = V.check_choice("backend", self.backend, BACKENDS)
        p["random_state"] = check_random_state(self.random_state)
        p["warm_start"] = V.check_bool("warm_start", self.warm_start)
        if isinstance(self.verbose, (bool, np.bool_)):  # a bool, or an int level as scikit-learn's
            p["verbose"] = bool(self.verbose)
        else:
            p["verbose"] = V.check_int("verbose", self.verbose, minimum=0) > 0
        return p

    # ------------------------------------------------------------------ fitted state
    def _fitted_network(self) -> Network:
        """``network_``, once the fitted attributes that predictions rely on are checked against it:
        they are plain attributes, and one overwritten must give a clear error, not a crash or a wrong
        answer."""
        check_is_fitted(self, "network_")  # not n_features_in_: validate_data sets it before training
        net = self.network_
        if not isinstance(net, Network):
            raise TypeError(f"network_ must be the skipnet.Network set by fit, got {type(net).__name__}; "
                            "fit the estimator again")
        n_features = getattr(self, "n_features_in_", None)
        if (isinstance(n_features, (bool, np.bool_)) or not isinstance(n_features, numbers.Integral)
                or n_features != net.n_inputs):
            raise ValueError(f"n_features_in_ ({n_features!r}) does not match network_, which takes "
                             f"{net.n_inputs} inputs; fit the estimator again")
        names = getattr(self, "feature_names_in_", None)
        if names is not None and not (isinstance(names, np.ndarray) and names.shape == (n_features,)
                                      and all(isinstance(name, str) for name in names)):
            raise ValueError(f"feature_names_in_ must be an array of {n_features} column names (set by fit "
                             "on a DataFrame); fit the estimator again")
        self._check_target_attributes(net)
        return net

    def _check_continuation(self, p: dict[str, Any]) -> Network:
        """The network that warm_start or partial_fit continues, after checking that the parameters
        still describe it and that the counters they extend are intact."""
        net = self._fitted_network()
        for name in ("n_iter_", "t_"):
            value = getattr(self, name, None)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(f"{name} must be the non-negative count set by fit, got {value!r}; "
                                 "fit with warm_start=False to start over")
        curve = getattr(self, "loss_curve_", None)
        if not isinstance(curve, list) or not all(isinstance(v, numbers.Real) for v in curve):
            raise ValueError("loss_curve_ must be the list of floats set by fit; fit with warm_start=False "
                             "to start over")
        # Continuing the old network after the architecture's parameters changed would silently train a
        # network other than the one asked for. MLPRegressor/MLPClassifier raise ValueError when a warm
        # start meets targets other than its network's (different classes); a changed architecture is the
        # same kind of mismatch, so warm_start and partial_fit both raise it too rather than rebuild.
        built = getattr(self, "_built", None)
        if built is None or built["network"] is not net:
            raise ValueError("network_ is not the network this estimator built (it was replaced); "
                             "fit with warm_start=False to start over")
        for name, old in built["params"].items():
            if p[name] != old:
                raise ValueError(f"{name} changed from {old!r} to {p[name]!r} since the network was built, "
                                 "and warm_start/partial_fit continue that network: set it back, or fit with "
                                 "warm_start=False to build a new one")
        return net

    # ------------------------------------------------------------------ training
    def _fit(self, X, y, incremental: bool, classes=None, sample_weight=None):
        p = self._validated_params()
        if incremental and p["early_stopping"]:
            raise ValueError("partial_fit does not support early_stopping=True (there is no fixed "
                             "validation set); use fit, or early_stopping=False")
        first = not hasattr(self, "network_") or not (p["warm_start"] or incremental)
        net = None if first else self._check_continuation(p)
        # validate_data(reset=True) sets n_features_in_ (and feature_names_in_) at once: a fit that fails
        # afterwards puts them back, so the estimator stays as it was
        saved = {name: self.__dict__[name] for name in ("n_features_in_", "feature_names_in_")
                 if name in self.__dict__}
        try:
            warning = self._train(X, y, incremental, classes, p, first, net, sample_weight)
        except BaseException:
            for name in ("n_features_in_", "feature_names_in_"):
                self.__dict__.pop(name, None)
            self.__dict__.update(saved)
            raise
        if warning is not None:  # once the fit is complete (warnings may be errors)
            warnings.warn(warning, ConvergenceWarning, stacklevel=3)
        return self

    def _train(self, X, y, incremental: bool, classes, p: dict[str, Any], first: bool,
               net: Network | None, sample_weight=None) -> str | None:
        """Train and record the fitted attributes; the convergence warning to give, if any."""
        X, y = self._validate_xy(X, y, reset=first)
        targets, loss, n_outputs, target_attributes = self._encode_targets(y, first, incremental, classes)
        weight = self._sample_weights(y, sample_weight, incremental, target_attributes.get("classes_"))
        rng = p["random_state"]
        if first:
            net = Network.mlp(X.shape[1], p["hidden_layer_sizes"], n_outputs, skip=_resolve_skip(p),
                              dtype=p["dtype"],
                              seed=int(rng.randint(_SEED_BOUND)), backend=p["backend"], init=p["init"])
        validation = None
        X_train, y_train, weight_train = X, targets, weight
        if p["early_stopping"]:  # the held-out rows keep their weights: the validation loss is weighted too
            parts = train_test_split(
                X, targets, *([] if weight is None else [weight]), test_size=p["validation_fraction"],
                random_state=rng.randint(_SEED_BOUND), stratify=_stratify(targets, loss, p["validation_fraction"]))
            X_train, X_val, y_train, y_val = parts[:4]
            validation = (X_val, y_val)
            if weight is not None:
                weight_train = _split_weights(parts[4], "the training share")
                validation = (X_val, y_val, _split_weights(parts[5], "the validation share"))

        batch = min(200, X_train.shape[0]) if p["batch_size"] == "auto" else p["batch_size"]
        # What the optimizer's state depends on: partial_fit continues the stored trainer (momentum, Adam
        # moments, schedule position) while these are unchanged, and starts a new one when they change.
        optimizer_options = {"loss": loss, "optimizer": p["optimizer"], "momentum": p["momentum"],
                             "nesterov": p["nesterov"], "weight_decay": p["weight_decay"]}
        trainer = getattr(self, "_trainer", None) if incremental and not first else None
        if trainer is not None and (trainer.net is not net
                                    or getattr(self, "_trainer_options", None) != optimizer_options
                                    or getattr(self, "_trainer_schedule", None) is not p["schedule"]):
            trainer = None
        if trainer is None:
            trainer = Trainer(net, lr=p["lr"], batch_size=batch, epochs=p["epochs"], shuffle=p["shuffle"],
                              schedule=copy.deepcopy(p["schedule"]), seed=int(rng.randint(_SEED_BOUND)),
                              **optimizer_options)
        else:  # settings a trainer takes between fits
            trainer.lr, trainer.batch_size, trainer.shuffle = p["lr"], batch, p["shuffle"]
        trainer.epochs = 1 if incremental else p["epochs"]
        previous = 0 if first else self.n_iter_
        monitor = _EpochMonitor(net, p["tol"], None if incremental else p["n_iter_no_change"],
                                validation is not None, p["verbose"], previous)
        trainer.callbacks = [monitor]
        try:
            history = trainer.fit(X_train, y_train, validation=validation, sample_weight=weight_train)
        finally:
            trainer.callbacks = []  # nothing of this fit stays referenced by the stored trainer
        if monitor.best_params is not None:
            with net.internals.writing():
                net.internals.params[...] = monitor.best_params
        self._trainer_options, self._trainer_schedule = optimizer_options, p["schedule"]
        if first:
            self._built = {"network": net, "params": {name: p[name] for name in
                                                      ("hidden_layer_sizes", "skip", "dtype", "backend")}}
        return self._record(net, trainer, history, target_attributes, first, validation is not None,
                            incremental, p)

    def _record(self, net: Network, trainer: Trainer, history: History, target_attributes: dict[str, Any],
                first: bool, validated: bool, incremental: bool, p: dict[str, Any]) -> str | None:
        """Set the fitted attributes once training has succeeded; the warning to give when it did not
        converge."""
        for name, value in target_attributes.items():
            setattr(self, name, value)
        self.network_ = net
        self._trainer = trainer
        if first:
            self.loss_curve_: list[float] = []
            self.n_iter_ = 0
            self.t_ = 0
        self.loss_curve_ = self.loss_curve_ + history.epoch_loss.tolist()
        if validated:
            self.validation_loss_curve_ = history.val_loss.tolist()
            # NaN when training diverged within its first epoch (nothing recorded)
            self.best_validation_loss_ = float(min(history.val_loss, default=np.nan))
        else:
            self.__dict__.pop("validation_loss_curve_", None)
            self.__dict__.pop("best_validation_loss_", None)
        self.best_loss_ = float(min(self.loss_curve_, default=np.nan))
        self.n_iter_ += history.epochs_run
        self.t_ += history.steps_run
        self.stopped_reason_ = history.stopped_reason
        reason = history.stopped_reason
        if reason is not None and reason != "callback":
            return f"training stopped early: {reason}"
        elif reason is None and not incremental and p["n_iter_no_change"] is not None:
            return f"Maximum epochs ({p['epochs']}) reached and the optimization hasn't converged yet."
        return None

    def _outputs(self, X) -> np.ndarray:
        """Network outputs (n, n_outputs) for validated X, as float64 (scikit-learn's convention, and
        probabilities computed from float32 logits stay consistent with their logarithms)."""
        net = self._fitted_network()
        X = _validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return net.predict(X).astype(np.float64, copy=False)

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted estimator to a safetensors file, atomically; return the path.

        The file is ``network_``'s model file (``skipnet.Network.load`` reads it) plus a metadata entry
        holding every constructor parameter and fitted attribute (``classes_`` with its labels' dtype,
        ``feature_names_in_``, the loss curves...) as JSON: nothing is pickled, so a parameter that is
        not a JSON value (a ``schedule`` object, a ``RandomState``) is refused with a ValueError. The
        optimizer state is not saved: ``partial_fit`` after ``load`` starts a new one."""
        net = self._fitted_network()
        return net.save(path, metadata={ESTIMATOR_KEY: _estimator_entry(self)})

    @classmethod
    def load(cls, path: str | os.PathLike):
        """The estimator ``save`` wrote to ``path``, fitted, predicting exactly as it did; ValueError
        naming the file when it is not such a file of this class."""
        return cls._restore(cls(), path)

    def _restore(self, path):
        """Set this new estimator to the one saved at ``path`` (see ESTIMATOR_KEY); ValueError naming
        the file."""
        meta = MF.read_metadata(path)
        if ESTIMATOR_KEY not in meta:
            raise ValueError(f"{path}: not an estimator file (no {ESTIMATOR_KEY!r} metadata entry); a network "
                             "file loads with skipnet.Network.load")
        try:
            entry = json.loads(meta[ESTIMATOR_KEY])
            MF.expect_keys("the estimator entry", entry,
                           {"format_version", "estimator", "params", "tuples", "mappings", "fitted"}
                           | ({"classes"} if "classes" in entry else set()))
            if entry["format_version"] != ESTIMATOR_FORMAT_VERSION:
                raise ValueError(f"format_version {entry['format_version']!r} is not supported "
                                 f"({ESTIMATOR_FORMAT_VERSION} is)")
            if entry["estimator"] != type(self).__name__:
                raise ValueError(f"it holds a {entry['estimator']}, not a {type(self).__name__}; load it with "
                                 f"{entry['estimator']}.load")
            params = dict(entry["params"])
            for name in entry["tuples"]:
                params[name] = tuple(params[name])
            for name in entry["mappings"]:
                params[name] = {key: value for key, value in params[name]}
            self.set_params(**params)
            p = self._validated_params()
            net = Network.load(path, backend=p["backend"])
            fitted = dict(entry["fitted"])
            names = fitted.pop("feature_names_in_", None)
            unknown = set(fitted) - set(_FITTED_ATTRIBUTES)
            if unknown:
                raise ValueError(f"unknown fitted attributes {sorted(unknown)}")
            self.__dict__.update(fitted)
            if names is not None:
                self.feature_names_in_ = np.array(names, dtype=object)
            if "classes" in entry:
                values, dtype = entry["classes"]["values"], np.dtype(entry["classes"]["dtype"])
                classes = np.empty(len(values), dtype)
                classes[:] = values
                self.classes_ = classes
            self.network_ = net
            self._built = {"network": net, "params": {name: p[name] for name in
                                                     ("hidden_layer_sizes", "skip", "dtype", "backend")}}
            self._fitted_network()  # every fitted attribute agrees with the network
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{path}: invalid estimator file: {exc}") from exc
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class SkipNetRegressor(RegressorMixin, _SkipNetBase):
    """A feed-forward ReLU network with skip connections, as a scikit-learn regressor.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Widths of the ReLU hidden layers (``MLPRegressor``'s default); the output layer has one unit per
        target.
    skip : "auto", None, "first-to-output" or "residual", default="auto"
        "first-to-output": a learned skip from the first hidden layer into the output (needs two or more
        hidden layers); "residual": identity skips over blocks of two hidden layers (see
        ``skipnet.Network.mlp``); "auto": "first-to-output" with two or more hidden layers, else None (a
        plain MLP), so every ``hidden_layer_sizes`` the MLPs accept works.
    loss : "mse" or "l1", default="mse"
        Mean squared error (as ``MLPRegressor``, up to its factor 1/2) or mean absolute error.
    optimizer : "adam" or "sgd", default="adam"
    lr : float, default=0.001
        Learning rate (``MLPRegressor``'s ``learning_rate_init``).
    batch_size : int or "auto", default="auto"
        Mini-batch size; "auto" is ``min(200, n_samples)``.
    epochs : int, default=200
        Maximum number of passes over the data (``MLPRegressor``'s ``max_iter``).
    momentum, nesterov : float, bool, default=0.9, False
        SGD momentum (``torch.optim.SGD``'s formula); ignored by Adam.
    weight_decay : float, default=0.0
        L2 penalty added to the gradient (PyTorch's ``weight_decay``; ``MLPRegressor``'s ``alpha``
        divided by the batch size).
    schedule : None or a schedule object, default=None
        Learning-rate schedule with ``lr(step, epoch)`` (see ``skipnet.Trainer``); copied at each fit.
    shuffle : bool, default=True
        Shuffle the samples every epoch.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data, stop on its loss, keep the best epoch's weights.
    validation_fraction : float, default=0.1
    n_iter_no_change : int or None, default=10
        Stop when the monitored loss has not improved by ``tol`` for more than this many epochs;
        None trains every epoch.
    tol : float, default=1e-4
    dtype : "float64" or "float32", default="float64"
    init : "default" or "he", default="default"
        ``nn.Linear``'s initialisation, or He's normal for ReLU layers.
    backend : "cython" or "numpy", default="cython"
        skipnet's compiled kernels, or its pure-NumPy reference.
    random_state : int, RandomState or None, default=None
        Drives initialisation, shuffling and the validation split.
    warm_start : bool, default=False
        ``fit`` continues from the current weights (same architecture and targets) with a new optimizer.
        A changed ``hidden_layer_sizes``, ``skip``, ``dtype`` or ``backend`` raises ValueError (as the
        MLPs do for changed classes), for ``partial_fit`` too: fit with ``warm_start=False`` to rebuild.
    verbose : bool, default=False
        Print the loss of every epoch.

    Attributes
    ----------
    network_ : skipnet.Network
        The trained network (save it with ``network_.save(path)``).
    loss_curve_ : list of float
        Training loss of every epoch (mean over the epoch's mini-batches, each before its update).
    validation_loss_curve_ : list of float
        Validation loss of every epoch of the last fit; only with ``early_stopping=True``.
    best_loss_, best_validation_loss_ : float
    n_iter_ : int
        Epochs run (accumulated over ``warm_start`` fits and ``partial_fit`` calls).
    t_ : int
        Optimizer steps run.
    stopped_reason_ : str or None
        Why the last fit stopped before ``epochs`` ("callback": the ``tol`` rule; or a divergence or
        zero-gradient message from the Trainer), None when it ran every epoch.
    n_features_in_, feature_names_in_, n_outputs_
    """

    _loss_choices = ("mse", "l1")

    def __init__(self, hidden_layer_sizes=(100,), skip="auto", *, loss="mse", optimizer="adam",
                 lr=0.001, batch_size="auto", epochs=200, momentum=0.9, nesterov=False, weight_decay=0.0,
                 schedule=None, shuffle=True, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, tol=1e-4, dtype="float64", init="default", backend="cython",
                 random_state=None, warm_start=False, verbose=False):
        _keep_parameters(self, locals())

    def _validate_xy(self, X, y, reset: bool):
        return _validate_data(self, X, y, reset=reset, dtype=(np.float64, np.float32), multi_output=True,
                              y_numeric=True)

    def _check_loss(self) -> str:
        return V.check_choice("loss", self.loss, self._loss_choices)

    def _check_target_attributes(self, net: Network) -> None:
        n_outputs = getattr(self, "n_outputs_", None)
        if (isinstance(n_outputs, (bool, np.bool_)) or not isinstance(n_outputs, numbers.Integral)
                or n_outputs != net.n_outputs):
            raise ValueError(f"n_outputs_ ({n_outputs!r}) does not match network_, which has {net.n_outputs} "
                             "outputs; fit the estimator again")

    def _encode_targets(self, y, first: bool, incremental: bool, classes=None):
        loss = self._check_loss()
        targets, _, n_outputs = encode_targets(y, loss)
        if not first and n_outputs != self.n_outputs_:
            raise ValueError(f"y has {n_outputs} targets but the network was fitted on "
                             f"{self.n_outputs_}; use warm_start=False to start over")
        return targets, loss, n_outputs, {"n_outputs_": n_outputs}

    def fit(self, X, y, sample_weight=None) -> SkipNetRegressor:
        """Train on X (n_samples, n_features) and y (n_samples,) or (n_samples, n_targets).

        sample_weight: None or (n_samples,) finite weights >= 0, not all zero: every mini-batch loss is
        the weighted mean of its samples' losses (see ``skipnet.Trainer.fit``), so an integer weight
        counts a sample that many times. With ``early_stopping=True`` the held-out samples keep their weights
        (the validation loss is weighted too)."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def partial_fit(self, X, y, sample_weight=None) -> SkipNetRegressor:
        """One epoch over (X, y), continuing the weights and the optimizer state of earlier calls.

        Every parameter is validated at each call. ``lr``, ``batch_size`` and ``shuffle`` may change
        between calls; a new ``loss``, ``optimizer``, ``momentum``, ``nesterov``, ``weight_decay`` or
        ``schedule`` starts a new optimizer state on the current weights. ``sample_weight`` as ``fit``."""
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X) -> np.ndarray:
        """Predictions (n_samples,) for one target, (n_samples, n_targets) for several."""
        out = self._outputs(X)
        return out.ravel() if out.shape[1] == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class SkipNetClassifier(ClassifierMixin, _SkipNetBase):
    """A feed-forward ReLU network with skip connections, as a scikit-learn classifier.

    Two classes: one output logit trained with binary cross-entropy (``BCEWithLogitsLoss``); more: one
    logit per class trained with softmax cross-entropy. Labels may be of any type (``classes_`` holds
    them in sorted order). Parameters and attributes as ``SkipNetRegressor`` (without ``loss``), plus
    ``classes_``; ``partial_fit`` needs ``classes`` on its first call.

    class_weight : None, "balanced" or dict {label: weight}, default=None
        Weights of the classes, as scikit-learn defines them: "balanced" gives class c the weight
        ``n_samples / (n_classes * count(c))`` of the data passed to ``fit``, a dict the weight of each
        label it names (1 for the others). A sample's weight is its class's weight times its
        ``sample_weight``. ``partial_fit`` accepts a dict but not "balanced" (one call's class counts
        are not the data's), as ``SGDClassifier``.
    """

    def __init__(self, hidden_layer_sizes=(100,), skip="auto", *, optimizer="adam",
                 lr=0.001, batch_size="auto", epochs=200, momentum=0.9, nesterov=False, weight_decay=0.0,
                 schedule=None, shuffle=True, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, tol=1e-4, dtype="float64", init="default", backend="cython",
                 random_state=None, warm_start=False, verbose=False, class_weight=None):
        _keep_parameters(self, locals())

    def _class_weights(self, y, classes, incremental: bool) -> np.ndarray | None:
        """Each sample's class weight (n,) float64 from ``class_weight``, or None without one."""
        class_weight = self.class_weight
        if class_weight is None:
            return None
        balanced = isinstance(class_weight, str) and class_weight == "balanced"
        if not balanced and not isinstance(class_weight, dict):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict {{label: weight}}, got "
                             f"{class_weight!r}")
        if balanced and incremental:
            raise ValueError("class_weight='balanced' is not supported by partial_fit (the class counts of "
                             "one call are not those of the data): pass a dict {label: weight}")
        try:
            per_class = compute_class_weight(class_weight, classes=classes, y=y)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"class_weight {class_weight!r} does not fit the classes "
                             f"{classes.tolist()}: {exc}") from exc
        per_class = V.as_real_array("class_weight", per_class).astype(np.float64)
        if not np.isfinite(per_class).all() or (per_class < 0).any():
            raise ValueError(f"class_weight must give finite weights >= 0, got {per_class.tolist()} for the "
                             f"classes {classes.tolist()}")
        return per_class[np.searchsorted(classes, y)]

    def _sample_weights(self, y, sample_weight, incremental: bool, classes):
        weight = V.as_sample_weight(sample_weight, len(y))
        class_weights = self._class_weights(y, classes, incremental)
        if class_weights is not None:
            weight = class_weights if weight is None else weight * class_weights
            if not weight.any():
                raise ValueError("sample_weight x class_weight is zero for every sample: at least one must be "
                                 "positive")
        if weight is not None and not incremental:
            weighted = np.unique(y[weight > 0])
            if weighted.size < 2:
                raise ValueError(f"sample_weight leaves samples of only one class, {weighted.tolist()}, with a "
                                 "positive weight: a classifier needs samples of at least 2 classes")
        return None if weight is None else V.as_sample_weight(weight, len(y))

    def _validate_xy(self, X, y, reset: bool):
        X, y = _validate_data(self, X, y, reset=reset, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        return X, y

    def _check_target_attributes(self, net: Network) -> None:
        classes = getattr(self, "classes_", None)
        if not isinstance(classes, np.ndarray) or classes.ndim != 1 or classes.size < 2:
            raise ValueError(f"classes_ must be the 1-D array of at least 2 labels set by fit, got {classes!r}; "
                             "fit the estimator again")
        try:
            unique = np.unique(classes)
        except TypeError as exc:  # labels of types that do not compare
            raise ValueError(f"classes_ must hold comparable labels: {exc}") from exc
        if unique.size != classes.size or not np.array_equal(unique, classes):
            raise ValueError(f"classes_ must hold distinct labels in sorted order (as fit sets it), got "
                             f"{classes.tolist()}")
        expected = 1 if classes.size == 2 else classes.size
        if net.n_outputs != expected or getattr(self, "n_outputs_", None) != expected:
            raise ValueError(f"classes_ holds {classes.size} labels but network_ has {net.n_outputs} outputs "
                             f"and n_outputs_ is {getattr(self, 'n_outputs_', None)!r} ({expected} expected); "
                             "fit the estimator again")

    def _encode_targets(self, y, first: bool, incremental: bool, classes=None):
        if classes is not None:
            classes = np.unique(np.asarray(classes))
            if not first and not np.array_equal(classes, self.classes_):
                raise ValueError(f"classes {classes.tolist()} differ from those of the first call, "
                                 f"{self.classes_.tolist()}")
        elif first:
            if incremental:
                raise ValueError("classes must be passed on the first call to partial_fit")
            classes = np.unique(y)
        else:
            classes = self.classes_
            if not incremental and not np.array_equal(np.unique(y), classes):
                raise ValueError("warm_start can only be used where y has the same classes as in the "
                                 f"previous call to fit: {classes.tolist()}, got {np.unique(y).tolist()}")
        loss = classification_loss(classes.size)
        targets, classes, n_outputs = encode_targets(y, loss, classes)
        return targets, loss, n_outputs, {"classes_": classes, "n_outputs_": n_outputs}

    def fit(self, X, y, sample_weight=None) -> SkipNetClassifier:
        """Train on X (n_samples, n_features) and labels y (n_samples,); ``sample_weight`` as
        ``SkipNetRegressor.fit``, multiplied by the ``class_weight`` of each sample's class."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def partial_fit(self, X, y, classes=None, sample_weight=None) -> SkipNetClassifier:
        """One epoch over (X, y), continuing earlier calls; ``classes`` (every label) on the first call.
        Parameters as ``SkipNetRegressor.partial_fit``."""
        return self._fit(X, y, incremental=True, classes=classes, sample_weight=sample_weight)

    def decision_function(self, X) -> np.ndarray:
        """Logits: (n_samples,) for two classes (positive means ``classes_[1]``), else (n, n_classes)."""
        out = self._outputs(X)
        return out.ravel() if out.shape[1] == 1 else out

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n_samples, n_classes), columns in the order of ``classes_``."""
        z = self.decision_function(X)
        if z.ndim == 1:
            p = expit(z)
            return np.column_stack([1.0 - p, p])
        return softmax(z, axis=1)

    def predict_log_proba(self, X) -> np.ndarray:
        """Log of ``predict_proba``, computed stably from the logits."""
        z = self.decision_function(X)
        if z.ndim == 1:
            return np.column_stack([log_expit(-z), log_expit(z)])
        return log_softmax(z, axis=1)

    def predict(self, X) -> np.ndarray:
        """The most probable label of every sample (n_samples,)."""
        z = self.decision_function(X)
        index = (z > 0).astype(np.intp) if z.ndim == 1 else np.argmax(z, axis=1)
        return self.classes_[index]
