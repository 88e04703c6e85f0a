"""skipnet: train and explain feed-forward ReLU networks with skip connections, fast, on the CPU.

    import skipnet as sn
    net = sn.Network.exercise()
    print(net.trace([[1.0]], [[-3.0]], loss="l1"))
"""

try:
    from . import _kernels  # noqa: F401  (the compiled extension; fail early and clearly without it)
except ImportError as exc:  # pragma: no cover - only a broken or source-tree import gets here
    raise ImportError(
        "skipnet's compiled kernels (skipnet._kernels) could not be imported. Install the package with "
        "`pip install .` (or build in place with `python setup.py build_ext --inplace`), and do not run "
        f"Python from inside an unbuilt source tree. Original error: {exc}"
    ) from exc

from . import callbacks, datasets, diagnostics, exercises, schedules
from ._version import __version__
from .callbacks import EarlyStopping, ModelCheckpoint
from .network import Dense, Network, Skip
from .schedules import CosineLR, ExponentialLR, OneCycle, ReduceLROnPlateau, StepLR, lr_find
from .sweep import sweep
from .trace import Trace
from .trainer import History, Trainer, TrainingWarning

__all__ = ["CosineLR", "Dense", "EarlyStopping", "ExponentialLR", "History", "ModelCheckpoint", "Network",
           "OneCycle", "ReduceLROnPlateau", "Skip", "StepLR", "Trace", "Trainer", "TrainingWarning", "__version__",
           "callbacks", "datasets", "diagnostics", "exercises", "lr_find", "schedules", "sweep"]
