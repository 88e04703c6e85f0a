# cython: language_level=3
"""skipnet._kernels: the compiled kernels behind skipnet's cython backend.

Every entry point trusts its arguments: shapes, dtypes, contiguity and sizes are validated once by the
Python layer (skipnet.network, skipnet.trainer) before any call, and the module is compiled with
boundscheck/wraparound/initializedcheck off. Cores are ``noexcept nogil``; the ``def`` wrappers release
the GIL around them. Outputs are always passed in, never allocated here.

The source is split into parts glued together with ``include``, so it stays one extension module:

    blas.pxi         matmul: register tiles (tile.h) for small products, BLAS gemm from
                     scipy.linalg.cython_blas above a size threshold
    dense.pxi        dense forward and backward
    activations.pxi  relu forward and backward, identity-skip addition
    losses.pxi       l1 / mse / bce-with-logits / cross-entropy: value and gradient in one pass
    optim.pxi        SGD and Adam updates over the flat parameter buffer
    train.pxi        the fused path: whole epochs of training steps in one call (FusedNet)

Cores take pointers and sizes (``*_ptr``), so the fused epoch runs them on slices of one workspace;
the ``def`` wrappers take typed memoryviews and serve the per-op path and the tests. Products sum in
the data's dtype, as BLAS does; loss values and bias gradients accumulate in double.
"""

cimport cython
from cython cimport floating
from libc.math cimport exp, fabs, log, log1p, sqrt
from libc.stdint cimport int64_t
from libc.string cimport memcpy
from cpython.mem cimport PyMem_Free, PyMem_Malloc

include "blas.pxi"
include "dense.pxi"
include "activations.pxi"
include "losses.pxi"
include "optim.pxi"
include "train.pxi"
