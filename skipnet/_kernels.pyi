"""Type stubs of skipnet._kernels, the compiled extension (csrc/_kernels.pyx).

Every function is fused over float32/float64: all floating arrays of one call share one dtype. Arrays
must be C-contiguous; inputs may be read-only, outputs are written in place. Nothing is checked: the
Python layer validates shapes and dtypes before calling (see skipnet._validation).
"""

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

_Float: TypeAlias = npt.NDArray[np.float32] | npt.NDArray[np.float64]
_Index: TypeAlias = npt.NDArray[np.int64]

def set_blas_threshold(min_flops: int) -> None:
    """Use BLAS gemm for products with m*n*k >= min_flops (0: always; a huge value: never)."""

def get_blas_threshold() -> int:
    """The current m*n*k threshold above which products go to BLAS gemm."""

def relu_fwd(Z: _Float, H: _Float) -> None:
    """H = max(Z, 0) element-wise (flat views of equal length)."""

def relu_bwd(dH: _Float, Z: _Float, dZ: _Float) -> None:
    """dZ = dH where Z > 0, else 0 (relu'(0) = 0). dZ may be dH itself."""

def add_into(Y: _Float, X: _Float, accumulate: bool) -> None:
    """Y = X, or Y += X when accumulate (flat views of equal length)."""

def dense_fwd(X: _Float, W: _Float, b: _Float, Z: _Float, has_bias: bool, accumulate: bool) -> None:
    """Z = X @ W.T (+ b) (+ Z when accumulate). X (n, k), W (m, k), b (m,) or empty, Z (n, m)."""

def dense_bwd(dZ: _Float, X: _Float, W: _Float, dW: _Float, db: _Float, dX: _Float, has_bias: bool,
              need_dx: bool, accumulate_dx: bool) -> None:
    """dW = dZ.T @ X, db = dZ.sum(0), dX (+)= dZ @ W. Shapes as dense_fwd; dX (n, k)."""

def l1_loss(yhat: _Float, y: _Float, grad: _Float) -> float:
    """mean |yhat - y|; grad = sign(yhat - y) / N with sign(0) = 0. All (n, m)."""

def mse_loss(yhat: _Float, y: _Float, grad: _Float) -> float:
    """mean (yhat - y)^2; grad = 2 (yhat - y) / N. All (n, m)."""

def bce_loss(logits: _Float, y: _Float, grad: _Float) -> float:
    """mean softplus(z) - y z on logits z, targets in [0, 1]; grad = (sigmoid(z) - y) / N."""

def cross_entropy_loss(logits: _Float, target: _Index, grad: _Float) -> float:
    """mean over rows of logsumexp(z) - z[target]; logits (n, c), target (n,) in [0, c)."""

def sgd_step(params: _Float, grads: _Float, momentum_buffer: _Float, lr: float, momentum: float,
             dampening: float, weight_decay: float, nesterov: bool, first_step: bool) -> None:
    """One torch.optim.SGD step over flat buffers of equal length, in place."""

def adam_step(params: _Float, grads: _Float, exp_avg: _Float, exp_avg_sq: _Float, lr: float, beta1: float,
              beta2: float, eps: float, weight_decay: float, step: int) -> None:
    """One torch.optim.Adam step (step counts from 1) over flat buffers, in place."""
