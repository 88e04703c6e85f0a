"""Type stubs of skipnet._kernels, the compiled extension (csrc/_kernels.pyx).

Every function is fused over float32/float64: all floating arrays of one call share one dtype. Arrays
must be C-contiguous; inputs may be read-only, outputs are written in place. Nothing is checked: the
Python layer validates shapes and dtypes before calling (see skipnet._validation).
"""

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

_Float: TypeAlias = npt.NDArray[np.float32] | npt.NDArray[np.float64]
_Index: TypeAlias = npt.NDArray[np.int64]

def set_blas_threshold(min_flops: int) -> None:
    """Use BLAS gemm for every product with m*n*k >= min_flops, whatever its form (0: always; a huge
    value: never; negative: back to the defaults, per SIMD level and product form: blas_thresholds)."""

def get_blas_threshold() -> int:
    """The m*n*k threshold set with set_blas_threshold, or -1 when the defaults per SIMD level and
    product form apply (blas_thresholds() lists them). Passing the value back to set_blas_threshold
    restores the setting either way."""

def blas_thresholds() -> dict[str, int]:
    """{product form: m*n*k threshold} in effect now: "X@W.T" (forward), "dZ.T@X" (weight gradient),
    "dZ@W" (input gradient); a product of that form goes to BLAS gemm when m*n*k >= its threshold,
    else to the register tiles. The defaults depend on the SIMD level in use and the CPU's best level
    only."""

def matmul_views(A: _Float, B: _Float, C: _Float, accumulate: bool) -> None:
    """C (m, n) = A (m, k) @ B (k, n) (+ C when accumulate) through the library's dispatch (tiles or BLAS
    by blas_thresholds); A and B may be transposed views (one unit stride each; ValueError otherwise),
    which selects the product form. For benchmarks and tests."""

def set_simd(name: str) -> str:
    """Select the SIMD level of the register tiles, the element-wise loops and the batch losses:
    "baseline" (SSE2), "avx2" (AVX2, FMA in the tiles), "avx512" (AVX-512 F/VL/BW/DQ, FMA in the tiles)
    or "generic512" (the avx512 level's 64-byte source compiled for the baseline target: slow, for
    tests; never the default). A level this build or CPU cannot run falls back to the best available
    level below it (avx512 -> avx2 -> baseline, generic512 -> baseline); returns the level now in use.
    ValueError for other names. The element-wise loops and losses give the same bits at every level.
    Unless set with set_blas_threshold, the BLAS thresholds follow."""

def get_simd() -> str:
    """The name of the SIMD level in use (see set_simd)."""

def simd_levels() -> tuple[str, ...]:
    """The levels this build and CPU can run, from the baseline up, e.g. ("baseline", "generic512",
    "avx2")."""

def cpu_simd_level() -> str:
    """The best level of this CPU (and OS): "avx512", "avx2" or "baseline"; the default level."""

def cpu_has_avx2() -> bool:
    """Whether this CPU (and OS) supports AVX2 and FMA."""

def simd_report() -> dict[str, str | dict[str, str | None]]:
    """{"tiles", "elementwise", "losses": the level each path runs now; "blas": {"internal_api",
    "version", "architecture"} of SciPy's BLAS as threadpoolctl reports it, or "unknown"}."""

def scipy_blas_info() -> dict[str, str | None] | str:
    """What threadpoolctl reports of the BLAS library behind scipy.linalg.cython_blas, or "unknown"."""

def check_intrinsic_forms(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], lr: float) -> tuple[str, ...]:
    """Self-test: the AVX2 intrinsic loops ("ew_sgd_plain_f_avx2", "loss_l1_batch_f_avx2") against their
    template forms on P = yhat = a, G = y = b; the names of those whose outputs differ in any bit.
    RuntimeError without AVX2."""

def all_finite(x: _Float) -> bool:
    """Whether no element of the C-contiguous float32/float64 array x (any shape) is NaN or infinite."""

def relu_fwd(Z: _Float, H: _Float) -> None:
    """H = max(Z, 0) element-wise (flat views of equal length)."""

def relu_bwd(dH: _Float, Z: _Float, dZ: _Float) -> None:
    """dZ = dH where Z > 0, else 0 (relu'(0) = 0). dZ may be dH itself."""

def add_into(Y: _Float, X: _Float, accumulate: bool) -> None:
    """Y = X, or Y += X when accumulate (flat views of equal length)."""

def dense_fwd(X: _Float, W: _Float, b: _Float, Z: _Float, has_bias: bool, accumulate: bool) -> None:
    """Z = X @ W.T (+ b) (+ Z when accumulate). X (n, k), W (m, k), b (m,) or empty, Z (n, m)."""

def dense_fwd_relu(X: _Float, W: _Float, b: _Float, Z: _Float, H: _Float, has_bias: bool,
                   R: _Float | None = None) -> None:
    """Z = X @ W.T (+ b) (+ R) and H = relu(Z), in one pass over Z: what dense_fwd, add_into(Z, R) and
    relu_fwd give one after the other. Shapes as dense_fwd; H and R (a residual, optional) (n, m)."""

def dense_bwd(dZ: _Float, X: _Float, W: _Float, dW: _Float, db: _Float, dX: _Float, has_bias: bool,
              need_dx: bool, accumulate_dx: bool) -> None:
    """dW = dZ.T @ X, db = dZ.sum(0), dX (+)= dZ @ W. Shapes as dense_fwd; dX (n, k)."""

def dense_bwd_relu(dZ: _Float, X: _Float, W: _Float, dW: _Float, dX: _Float, Z_below: _Float,
                   db_below: _Float, accumulate_dx: bool) -> None:
    """dense_bwd without a bias, X being relu(Z_below): dX leaves as the layer below's dZ, with its bias
    gradient db_below (when not empty): the bits of dense_bwd then relu_bwd_bias_grad (relu_bwd)."""

def l1_loss(yhat: _Float, y: _Float, grad: _Float) -> float:
    """mean |yhat - y|; grad = sign(yhat - y) / N with sign(0) = 0. All (n, m)."""

def mse_loss(yhat: _Float, y: _Float, grad: _Float) -> float:
    """mean (yhat - y)^2; grad = 2 (yhat - y) / N. All (n, m)."""

def bce_loss(logits: _Float, y: _Float, grad: _Float) -> float:
    """mean softplus(z) - y z on logits z, targets in [0, 1]; grad = (sigmoid(z) - y) / N."""

def cross_entropy_loss(logits: _Float, target: _Index, grad: _Float) -> float:
    """mean over rows of logsumexp(z) - z[target]; logits (n, c), target (n,) in [0, c)."""

def weighted_loss(loss: str, yhat: _Float, y: _Float | _Index, weight: npt.NDArray[np.float64],
                  grad: _Float) -> tuple[float, float]:
    """(sum_i w_i l_i / sum_i w_i, sum_i w_i) with l_i row i's loss (mean over its outputs; cross_entropy:
    its term); y (n, m) targets or (n,) int64 classes for cross_entropy; weight (n,) finite >= 0; grad
    (n, m) receives the gradient. All weights 0: (0.0, 0.0) and a zero gradient."""

def sgd_step(params: _Float, grads: _Float, momentum_buffer: _Float, lr: float, momentum: float,
             dampening: float, weight_decay: float, nesterov: bool, first_step: bool) -> tuple[bool, bool]:
    """One torch.optim.SGD step over flat buffers of equal length, in place.

    Returns (any gradient nonzero, any updated parameter NaN or infinite): the checks the trainer makes.
    """

def adam_step(params: _Float, grads: _Float, exp_avg: _Float, exp_avg_sq: _Float, lr: float, beta1: float,
              beta2: float, eps: float, weight_decay: float, step: int) -> tuple[bool, bool]:
    """One torch.optim.Adam step (step counts from 1) over flat buffers, in place.

    Returns (any gradient nonzero, any updated parameter NaN or infinite), as sgd_step.
    """

class FusedNet:
    """A network's plan and workspace for fused epochs at one batch size (see csrc/train.pxi).

    layers: (width, relu, bias, w_offset, b_offset, dense_acc) per layer; skips: (src, dst,
    weight_offset or -1 for identity, acc); offsets index the flat buffers params and grads."""

    def __init__(self, n_inputs: int, batch: int, layers: Sequence[tuple], skips: Sequence[tuple],
                 params: _Float, grads: _Float) -> None: ...
    @property
    def scalar(self) -> bool:
        """True when every layer (and the input) has width 1: the scalar path runs."""
    @property
    def compiled_shape(self) -> int:
        """0 or 1 for the exercise's network without / with biases (compiled in whole), else -1."""
    def bind(self, X: _Float, Y: _Float | None, T: _Index | None, state1: _Float, state2: _Float | None,
             loss: str, optimizer: str, momentum: float = ..., dampening: float = ...,
             weight_decay: float = ..., nesterov: bool = ..., beta1: float = ..., beta2: float = ...,
             eps: float = ..., divergence_factor: float | None = ...,
             sample_weight: npt.NDArray[np.float64] | None = ...) -> None:
        """Attach one fit (data, optimizer state, options, sample weights (n,) float64 or None);
        RuntimeError while another fit is bound."""
    def validates_exactly(self, n_rows: int) -> bool:
        """Whether run()'s validation loss over n_rows rows (chunks of at most a batch) is the per-op
        path's single pass to the last bit: n_rows fits one batch, or every forward product over n_rows
        rows runs on the register tiles (none reaches the BLAS threshold)."""
    def bind_validation(self, X: _Float, Y: _Float | None, T: _Index | None,
                        sample_weight: npt.NDArray[np.float64] | None = ...) -> None:
        """Attach the bound fit's validation set (after bind(); targets as bind's, weights (n,) float64
        or None) for run(val_losses=...); unbind() drops it."""
    def unbind(self) -> None:
        """Drop the references to the last fit's arrays (its validation set's too)."""
    @property
    def n_units(self) -> int:
        """Hidden ReLU units (layers before the output, layer by layer): the length of run()'s unit_max."""
    watch_level: float | None
    """After run() with a watch: the plateau level after the last epoch it watched (None: none)."""
    plateau_epoch: int
    """After run() with plateau_params: the epoch of the call whose weights it holds (-1: none)."""
    dead_seen: bool
    """After run(): a row it wrote into unit_epochs has a unit whose largest z is <= 0 (dead)."""
    rule_state: tuple[float, float, int, int] | None
    """After run(reduce_on_plateau=...): (current, best, num_bad_epochs, cooldown_counter); else None."""
    def run(self, orders: _Index | None, lrs: npt.NDArray[np.float64] | None, losses: npt.NDArray[np.float64],
            totals: npt.NDArray[np.float64], n_steps: int, steps_per_epoch: int, opt_step: int,
            first_loss: float | None, first_step: int = ..., epoch_total: float = ...,
            epoch_all_zero: bool = ..., time_budget: float = ..., unit_max: _Float | None = ...,
            unit_epochs: _Float | None = ..., stats_every: int = ..., stats_epoch: int = ...,
            watch: tuple | None = ..., val_losses: npt.NDArray[np.float64] | None = ...,
            best: _Float | None = ..., best_value: npt.NDArray[np.float64] | None = ...,
            weight_total: float | None = ..., plateau_params: _Float | None = ...,
            reduce_on_plateau: tuple | None = ..., lrs_per_epoch: bool = ...,
            rate_plan: tuple[tuple[float, ...], int, bool] | None = ...
            ) -> tuple[int, str, float | None, bool, float, bool]:
        """Train up to n_steps steps without the GIL from step first_step of an epoch: (steps_done,
        "ok" | "loss" | "update" | "paused" | "plateau", first_loss, zero_epoch, epoch_total,
        epoch_all_zero); lrs: one rate, one per step, or with lrs_per_epoch one per epoch of the call
        (lrs[0]: the epoch of first_step), or None with rate_plan = (pieces, first, per_epoch): the rates
        are schedule_rates' of the plan at positions first + k for each step k (or epoch k, per_epoch) of the
        call, filled into a buffer the object keeps; with unit_max/unit_epochs, the dead-unit statistics of the epochs due
        (stats_every, stats_epoch); with watch = (window, rtol, level, weight_total, tail), the plateau
        rule (csrc/watch.h), stopping after the epoch where a plateau begins (with plateau_params
        (n_params,), the first such epoch's weights are copied there, plateau_epoch says which, and the
        call stops at a second). At each completed epoch e's
        end, with its weights: val_losses[e] = the validation loss (needs bind_validation); with best
        (n_params,) and best_value (1,) float64 IN/OUT, the weights are copied into best when the
        monitored value (the validation loss with val_losses, else totals[e] / weight_total) is strictly
        below best_value[0], which becomes it (Trainer's restore_best). Such calls skip the scalar
        path's register loop. With reduce_on_plateau (ReduceLROnPlateau.rule_state() + (weight_total,
        reduced)), the schedule's rule lowers the rate at epoch ends (rule_state: its state after)."""

LOSS_NAMES: tuple[str, ...]
"""The losses' names in the kernels' numbering (csrc/loss_terms.h): ("l1", "mse", "bce", "cross_entropy")."""

LOSS_KINDS: dict[str, int]
"""Each loss name's number in the kernels."""

OPTIMIZER_KINDS: dict[str, int]
"""Each optimizer name's number in the kernels."""

PLATEAU_MAX_WINDOW: int
"""The longest window plateau_begins takes."""

def plateau_begins(tail: npt.NDArray[np.float64], window: int, rtol: float,
                   level: float | None) -> tuple[bool, float | None]:
    """The training monitor's plateau rule after an epoch: (a plateau begins with the last of ``tail``,
    the level reported from now on, or None)."""

def aligned_zeros(n: int, dtype: npt.DTypeLike) -> np.ndarray:
    """A zeroed (n,) array of ``dtype`` whose first element is 64-byte aligned."""

def dead_units_of(unit_max: _Float) -> list[int]:
    """The flat indices, ascending, of the units whose largest z is <= 0 (NaN is not): the dead ones."""

def loss_diverged(value: float, first: float, factor: float | None) -> bool:
    """The divergence rule of every training loop: value not finite, or factor x first exceeded."""

def cosine_rates(out: npt.NDArray[np.float64], first: int, offset: float, scale: float, theta0: float,
                 delta: float, block: int) -> None:
    """out[k] = offset + scale * (1 + cos(theta0 + (first + k) * delta)), by angle addition over blocks
    of ``block`` steps (csrc/rates.pxi): a schedule's cosine phase at about a nanosecond a step."""

def cosine_rates_at(steps: npt.NDArray[np.int64], out: npt.NDArray[np.float64], offset: float,
                    scale: float, theta0: float, delta: float, block: int) -> None:
    """out[i] = cosine_rates' value at step steps[i], bit for bit."""

PIECE_COLUMNS: int
"""Numbers per piece of a schedule's plan (schedule_rates): begin, kind, a, b, c, d, block."""
PIECES_MAX: int
"""The most pieces a plan may have."""
PIECE_CONSTANT: int
PIECE_LINEAR: int
PIECE_COSINE: int
PIECE_HOLD: int
PIECE_GEOMETRIC: int

def schedule_rates(pieces: tuple[float, ...], first: int, out: npt.NDArray[np.float64]) -> None:
    """out[k] = the rate of the plan ``pieces`` (a flat tuple of rows (begin, kind, a, b, c, d, block):
    constant a, linear b * ((t - c) / d) + a, a cosine phase as cosine_rates, the last rate held, or
    geometric a * b ** ((t - begin) // block)) at position first + k (csrc/rates.pxi)."""

def schedule_epoch_rates(pieces: tuple[float, ...], first_epoch: int, first_step: int, steps_per_epoch: int,
                         out: npt.NDArray[np.float64]) -> None:
    """out[k] = the rate of the per-epoch plan ``pieces`` in the epoch of step k of a call beginning at step
    first_step of epoch first_epoch: its value at first_epoch + (first_step + k) // steps_per_epoch."""

def schedule_rate(pieces: tuple[float, ...], position: int) -> float:
    """schedule_rates' value at one position, bit for bit."""

def schedule_rates_at(pieces: tuple[float, ...], positions: npt.NDArray[np.int64],
                      out: npt.NDArray[np.float64]) -> None:
    """out[i] = schedule_rates' value at position positions[i], bit for bit."""

def cosine_plan(planned_steps: int, warmup: int, base_lr: float, min_lr: float,
                start_factor: float) -> tuple[float, ...]:
    """CosineLR's pieces (schedule_rates): the warm-up's line, the cosine down to min_lr, min_lr held."""

def one_cycle_plan(total_steps: int, pct_start: float, peak: float, div_factor: float, final_div_factor: float,
                   three_phase: bool, cosine: bool) -> tuple[float, ...]:
    """OneCycle's pieces (schedule_rates): torch's phases, then the last rate held."""

def relu_bwd_bias_grad(dH: _Float, Z: _Float, dZ: _Float, db: _Float) -> None:
    """dZ = relu_bwd(dH, Z) and db = dZ.sum(0), in one pass, bit for bit the two of them."""

MAX_ORDER_ROWS: int
"""The most rows draw_orders permutes (2**32 - 1: its draws are 32-bit)."""

def draw_orders(generator: np.random.Generator, out: _Index) -> None:
    """Each row of out (k, n) int64, C-contiguous, writable: a uniform permutation of 0..n-1 from the
    generator's bit stream, row after row (k rows at once draw what k calls of one row draw); the bit
    generator's lock is held while drawing."""
