"""Sweeps: train one architecture for many seeds and learning rates in parallel, and tabulate the runs::

    import skipnet as sn
    from skipnet.sweep import MLPFactory
    table = sn.sweep(MLPFactory(n_inputs=2, hidden=(16, 16), skip="first-to-output"), X, y,
                     seeds=range(100), lrs=[0.01, 0.1], loss="bce", epochs=50, parallel_backend="loky",
                     n_jobs=-1)

Every run is a pure function of its (seed, lr): the network comes from ``make_network(seed)``, the
trainer shuffles with ``seed`` and gets its own copy of the trainer options, and BLAS runs on one thread
(threadpoolctl; gemm's rounding can depend on its thread count), so the table is the same on every
parallel backend and for every ``n_jobs``. The parallelism is the runs side by side. Runs go through
joblib ("loky" processes, "threading") or a Dask cluster ("dask", joblib's Dask backend); "serial" runs
them in a plain loop in this process. ``parallel_backend`` is joblib's word (``joblib.parallel_backend``)
for where the runs execute; ``backend=`` is its deprecated spelling (it is a network's kernels
elsewhere: ``Network(backend="cython" | "numpy")``).
"""

from __future__ import annotations

import collections
import copy
import inspect
import itertools
import logging
import math
import numbers
import os
import pickle
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from . import _validation as V
from ._deprecation import keyword_from, renamed_keywords
from .diagnostics import dead_units, explain_plateau
from .network import Network
from .trainer import Trainer

BACKENDS = ("loky", "threading", "dask", "serial")
COLUMNS = ("seed", "lr", "final_loss", "val_loss", "epochs_run", "stopped_reason", "dead_fraction", "plateau",
           "plateau_reason")
# Trainer arguments a sweep sets itself, per run.
_RESERVED = {"net": "make_network", "lr": "lrs", "seed": "seeds"}
# At most this many seeds (and learning rates): an endless iterator such as itertools.count() is
# refused once it passes the cap, instead of filling memory.
MAX_VALUES = 10**6


@dataclass(frozen=True)
class MLPFactory:
    """A picklable ``make_network`` for sweeps: ``MLPFactory(...)(seed)`` is
    ``Network.mlp(n_inputs, hidden, n_outputs, skip, bias, dtype, seed=seed, backend=backend, init=init)``.

    ``backend`` is the network's ("cython" or "numpy", as ``Network``'s), not the sweep's
    ``parallel_backend``. The first six fields may be passed by position; ``backend`` and ``init``
    positionally is deprecated (FutureWarning): pass them by keyword.

    Process and cluster backends send ``make_network`` to their workers by pickling; an instance of this
    class always pickles, whatever module it was created in.
    """

    n_inputs: int
    hidden: tuple = (16, 16)
    n_outputs: int = 1
    skip: str | None = None
    bias: bool = True
    dtype: str = "float64"
    backend: str = "cython"
    init: str = "default"

    def __post_init__(self):
        self(0)  # validates every field now, not in a worker later

    def __call__(self, seed: int) -> Network:
        return Network.mlp(self.n_inputs, self.hidden, self.n_outputs, self.skip, self.bias, self.dtype,
                           seed=seed, backend=self.backend, init=self.init)


MLPFactory.__init__ = keyword_from("backend")(MLPFactory.__init__)  # type: ignore[method-assign]


@renamed_keywords(backend="parallel_backend")
def sweep(make_network: Callable[[int], Network], X, y, seeds: Iterable[int], lrs: Iterable[float] | float, *,
          validation=None, parallel_backend: str = "loky", n_jobs: int = -1, keep_history: bool = False,
          as_frame: bool | None = None, client=None, address: str | None = None, progress: bool = False,
          **trainer_options):
    """Train ``make_network(seed)`` with every learning rate in ``lrs``, for every seed; one row per run.

    Parameters
    ----------
    make_network : callable seed -> Network
        Builds a fresh network for a seed (e.g. ``MLPFactory(...)`` or ``functools.partial`` of a
        module-level function). Every call must return a new Network object: each run trains its network
        in place, so a factory returning one it returned before (the same object; e.g. a global, or a
        cache by seed) would have runs share and disturb each other's weights. That is detected and
        refused with a ValueError, rather than copied (a copy would start from the previous run's
        trained weights). The "loky" and "dask" parallel backends pickle it (with cloudpickle, so lambdas
        work, but not closures over unpicklable objects such as locks or open files).
    X : array (n, n_inputs);  y : targets for the loss (see Trainer.fit)
        Validated once, in the network's dtype.
    seeds : iterable of int >= 0
        Each seed initialises the network and seeds the trainer's shuffling. At most ``MAX_VALUES``
        (10**6) distinct seeds; an iterator is read up to that cap (an endless one is refused).
    lrs : iterable of float > 0 (or one float)
        Finite, distinct, at most ``MAX_VALUES``.
    validation : (X_val, y_val) or None
        When given, ``val_loss`` is the last epoch's validation loss; otherwise NaN.
    parallel_backend : "loky" | "threading" | "dask" | "serial"
        Where the runs execute (joblib's backend). "loky": worker processes; "threading": threads
        (the kernels release the GIL, so threads gain where most of a step is spent inside kernels:
        wide layers, large batches); "dask": joblib's Dask backend on ``client``, on a new Client for
        ``address``, or on a LocalCluster of ``n_jobs`` single-threaded worker processes created and
        closed for this call; "serial": a plain loop.
        ``backend=`` is the deprecated spelling of ``parallel_backend=`` (same values and behaviour;
        FutureWarning; giving both is a TypeError).
    n_jobs : int
        Parallel workers as joblib counts them (-1: every core). ``n_jobs=1`` runs serially. While the
        sweep runs, BLAS in this process is held to one thread (restored afterwards).
    keep_history : bool
        Add a ``history`` column holding each run's skipnet.History.
    as_frame : bool or None
        True: a pandas DataFrame; False: a list of dicts; None: a DataFrame when pandas is installed.
    progress : bool
        Show a tqdm progress bar (needs tqdm).
    **trainer_options
        Any skipnet.Trainer option except ``lr`` and ``seed`` (loss, optimizer, epochs, batch_size,
        momentum, schedule, callbacks, ...). Each run gets its own deep copy, so stateful schedules and
        callbacks never leak between runs. ``diagnose`` defaults to ``keep_history``: the rows carry
        their own diagnostics (dead_fraction, plateau), measured after training, and without the
        trainer's between-epoch checks a run trains many epochs per kernel call, without the GIL.

    Returns
    -------
    One row per (seed, lr), seed-major in the order given, with columns
    seed, lr, final_loss (the last epoch's training loss, NaN when no epoch completed), val_loss,
    epochs_run, stopped_reason (None when every epoch ran), dead_fraction (dead hidden ReLU units on X
    after training), plateau (the loss curve ends flat, skipnet.diagnostics.explain_plateau) and
    plateau_reason (its explanation, or ""), plus history when ``keep_history``.
    """
    if not callable(make_network):
        raise TypeError(f"make_network must be a callable seed -> Network, got {type(make_network).__name__}")
    seeds = _check_seeds(seeds)
    lrs = _check_lrs(lrs)
    backend = V.check_choice("parallel_backend", parallel_backend, BACKENDS)
    n_jobs = V.check_int("n_jobs", n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs must be a positive number of workers or negative (-1: every core), got 0")
    if as_frame not in (None, True, False):
        raise TypeError(f"as_frame must be True, False or None, got {as_frame!r}")
    if as_frame and not _has_pandas():
        raise ImportError("as_frame=True needs pandas (pip install pandas)")
    if (client is not None or address is not None) and backend != "dask":
        raise ValueError("client and address are only used with parallel_backend='dask'")
    if client is not None and address is not None:
        raise ValueError("give either client or address for parallel_backend='dask', not both")
    if address is not None and not isinstance(address, str):
        raise TypeError(f"address must be a scheduler address string such as 'tcp://host:8786', got {address!r}")
    keep_history = V.check_bool("keep_history", keep_history)
    progress = V.check_bool("progress", progress)
    _check_trainer_options(trainer_options)
    trainer_options = {"diagnose": keep_history, **trainer_options}
    V.check_memory(f"a sweep of {len(seeds) * len(lrs)} runs", 1000 * len(seeds) * len(lrs))  # ~1 KB a task

    # One network and trainer built now: bad options and bad data fail here, not in a worker. Two calls
    # of the factory here also catch one that returns the same network every time, before any worker.
    probe = _make(make_network, seeds[0])
    _make(make_network, seeds[0])
    trainer = Trainer(probe, lr=lrs[0], seed=seeds[0], **copy.deepcopy(trainer_options))
    X, y = probe.internals.check_batch(X, y, trainer.loss)
    if validation is not None:
        validation = V.as_validation(validation, probe.n_inputs, probe.n_outputs, trainer.loss, probe.dtype)
    serial = backend == "serial" or (n_jobs == 1 and backend != "dask")
    if backend == "dask":
        _check_dask(client)
    if not serial and backend != "threading":
        _check_picklable(make_network, trainer_options, backend)

    tasks = [(make_network, seed, lr, X, y, validation, trainer_options, keep_history, os.getpid())
             for seed in seeds for lr in lrs]
    with _progress_bar(progress, len(tasks)) as bar, threadpool_limits(limits=1, user_api="blas"):
        rows = []
        try:
            for row in _execute(tasks, backend, n_jobs, serial, client, address):
                rows.append(row)
                bar.update(1)
        except pickle.PicklingError as exc:
            raise TypeError(_pickling_advice(backend, exc)) from exc
    return _table(rows, keep_history, as_frame)


# ---------------------------------------------------------------------------------------------- one run
def _run_one(make_network, seed: int, lr: float, X, y, validation, trainer_options: dict,
             keep_history: bool, caller_pid: int) -> dict:
    """Train make_network(seed) at lr and summarise it. A pure function of (seed, lr) and the inputs.

    BLAS runs on one thread: gemm's result can depend on its thread count, and the runs themselves are
    the parallelism. The caller's process is limited for the duration of the sweep; a worker process is
    limited once, for good (as loky and Dask limit their workers' threads anyway)."""
    if os.getpid() != caller_pid:
        _single_blas_thread_in_worker()
    net = _make(make_network, seed)
    trainer = Trainer(net, lr=lr, seed=seed, **copy.deepcopy(trainer_options))
    hist = trainer.fit(X, y, validation)
    losses = hist.epoch_loss
    if any(w.kind == "zero_gradient" for w in hist.warnings) and len(losses) < trainer.epochs:
        # Stopped because no step can change anything: the remaining epochs would all repeat the last
        # loss, so judge the plateau on the curve the full run would have recorded.
        losses = np.concatenate([losses, np.full(trainer.epochs - len(losses), losses[-1])])
    plateau = explain_plateau(net, X, y, trainer.loss, losses)
    row = {
        "seed": seed,
        "lr": lr,
        "final_loss": hist.final_loss,
        "val_loss": float(hist.val_loss[-1]) if len(hist.val_loss) else math.nan,
        "epochs_run": hist.epochs_run,
        "stopped_reason": hist.stopped_reason,
        "dead_fraction": dead_units(net, X).fraction,
        "plateau": plateau is not None,
        "plateau_reason": plateau.explanation if plateau is not None else "",
    }
    if keep_history:
        row["history"] = hist
    return row


# Every network a sweep's make_network returned in this process (weakly held: a run's network is
# dropped with its run); one returned again is the same object, which runs would share.
_RETURNED: weakref.WeakSet = weakref.WeakSet()
_RETURNED_LOCK = threading.Lock()  # threading-backend runs call make_network concurrently


def _make(make_network, seed: int) -> Network:
    net = make_network(seed)
    if not isinstance(net, Network):
        raise TypeError(f"make_network({seed}) must return a skipnet.Network, got {type(net).__name__}")
    with _RETURNED_LOCK:
        if net in _RETURNED:
            raise ValueError(
                f"make_network({seed}) returned a Network it had returned before (the same object): each "
                "run trains its network in place, so runs would share and disturb each other's weights; "
                "build a new network on every call (e.g. Network.mlp(..., seed=seed) inside make_network)")
        _RETURNED.add(net)
    return net


# ---------------------------------------------------------------------------------------------- running
def _execute(tasks, backend: str, n_jobs: int, serial: bool, client, address) -> Iterator[dict]:
    """Rows in task order, from a plain loop or a joblib Parallel generator."""
    if serial:
        for task in tasks:
            yield _run_one(*task)
        return
    import joblib

    calls = (joblib.delayed(_run_one)(*task) for task in tasks)
    if backend != "dask":
        yield from joblib.Parallel(n_jobs=n_jobs, backend=backend, return_as="generator")(calls)
        return
    with _dask_client(client, address, n_jobs, len(tasks)) as dask_client, \
            joblib.parallel_config(backend="dask", client=dask_client):
        yield from joblib.Parallel(return_as="generator")(calls)


@contextmanager
def _dask_client(client, address, n_jobs: int, n_tasks: int):
    """The user's client as is; else a Client for ``address`` or for a LocalCluster on loopback, both
    closed on exit."""
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster

    if address is not None:
        with Client(address) as own:
            yield own
        return
    with LocalCluster(n_workers=min(n_tasks, _workers(n_jobs)), threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as cluster, Client(cluster) as own:
        yield own


def _workers(n_jobs: int) -> int:
    """Workers for n_jobs as joblib counts them: n_jobs itself, or cores + 1 + n_jobs when negative."""
    return n_jobs if n_jobs > 0 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)


_WORKER_BLAS_LIMIT = []  # the limit applied in this worker process, kept alive for good


def _single_blas_thread_in_worker() -> None:
    if not _WORKER_BLAS_LIMIT:
        _WORKER_BLAS_LIMIT.append(threadpool_limits(limits=1, user_api="blas"))


@contextmanager
def _progress_bar(enabled: bool, total: int):
    """A tqdm bar when asked for and tqdm is installed; otherwise an object whose update does nothing."""
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:
            warnings.warn("progress=True needs tqdm (pip install tqdm); running without a progress bar",
                          stacklevel=4)
        else:
            with tqdm(total=total, desc="sweep", unit="run") as bar:
                yield bar
            return
    yield _NoBar()


class _NoBar:
    def update(self, n: int) -> None:
        pass


# ---------------------------------------------------------------------------------------------- checks
def _materialise(name: str, values, what: str) -> list:
    """The values of an iterable as a list, refusing more than MAX_VALUES before reading them all (a
    sized one by its length, e.g. range(10**12); an iterator by reading one past the cap, e.g.
    itertools.count())."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be an iterable of {what}, got {type(values).__name__}")
    try:
        size = len(values)
    except TypeError:  # an iterator: no length
        size = 0
    except OverflowError:  # a length beyond sys.maxsize, e.g. range(10**20)
        raise ValueError(f"{name} holds more than {MAX_VALUES} values (the most a sweep takes)") from None
    V.check_memory(f"a sweep over {size} {name}", 1000 * size)  # ~1 KB per task and row
    if size > MAX_VALUES:
        raise ValueError(f"{name} holds {size} values; a sweep takes at most {MAX_VALUES}")
    out = list(itertools.islice(values, MAX_VALUES + 1))
    if len(out) > MAX_VALUES:
        raise ValueError(f"{name} yields more than {MAX_VALUES} values (an endless iterator such as "
                         f"itertools.count()?); a sweep takes at most {MAX_VALUES}: give a finite list or range")
    return out


def _check_seeds(seeds) -> list[int]:
    if isinstance(seeds, numbers.Integral):
        raise TypeError(f"seeds must be an iterable of ints, e.g. range({seeds}) or [{seeds}]; got the int {seeds}")
    values = _materialise("seeds", seeds, "ints")
    values = [V.check_int(f"seeds[{i}]", s, minimum=0) for i, s in enumerate(values)]
    _check_unique("seeds", values)
    return values


def _check_lrs(lrs) -> list[float]:
    if isinstance(lrs, numbers.Real) and not isinstance(lrs, bool):
        lrs = [lrs]
    values = _materialise("lrs", lrs, "positive numbers (learning rates)")
    values = [V.check_float(f"lrs[{i}]", v, positive=True) for i, v in enumerate(values)]
    _check_unique("lrs", values)
    return values


def _check_unique(name: str, values: list) -> None:
    if not values:
        raise ValueError(f"{name} is empty: give at least one value")
    repeated = sorted(v for v, count in collections.Counter(values).items() if count > 1)
    if repeated:
        raise ValueError(f"{name} must not repeat values (each run is one seed and one lr); repeated: {repeated}")


def _check_trainer_options(options: dict) -> None:
    for name in options:
        if name in _RESERVED:
            raise TypeError(f"sweep sets the trainer's {name!r} per run: pass it through {_RESERVED[name]}=")
    accepted = [p for p in inspect.signature(Trainer).parameters if p not in _RESERVED]
    unknown = [name for name in options if name not in accepted]
    if unknown:
        raise TypeError(f"unknown trainer option(s) {', '.join(map(repr, unknown))}; skipnet.Trainer accepts "
                        f"{', '.join(accepted)}")


def _check_dask(client) -> None:
    try:
        import distributed
    except ImportError:
        raise ImportError("parallel_backend='dask' needs dask.distributed: pip install 'skipnet[dask]'") \
            from None
    if client is not None and not isinstance(client, distributed.Client):
        raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")


def _check_picklable(make_network, trainer_options: dict, backend: str) -> None:
    """Process and cluster workers receive make_network and the options pickled (cloudpickle, as joblib
    and distributed send them): fail now, with advice, rather than inside the pool."""
    try:
        import cloudpickle  # a joblib dependency since joblib 1.5
    except ImportError:
        from joblib.externals import cloudpickle  # vendored by older joblib

    try:
        cloudpickle.dumps((make_network, trainer_options))
    except Exception as exc:
        raise TypeError(_pickling_advice(backend, exc)) from exc


def _pickling_advice(backend: str, exc: Exception) -> str:
    return (f"parallel_backend={backend!r} sends make_network and the trainer options to other processes, "
            f"but they cannot be pickled ({type(exc).__name__}: {exc}). Use parallel_backend='threading' (or "
            "'serial'), or make make_network a module-level function, a functools.partial of one, or "
            "skipnet.sweep.MLPFactory, with picklable options")


# ---------------------------------------------------------------------------------------------- output
def _has_pandas() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


def _table(rows: list[dict], keep_history: bool, as_frame: bool | None):
    if as_frame is False or (as_frame is None and not _has_pandas()):
        return rows
    import pandas as pd

    columns = list(COLUMNS) + (["history"] if keep_history else [])
    return pd.DataFrame(rows, columns=columns)
