# cython: language_level=3
"""skipnet._kernels: the compiled kernels behind skipnet's cython backend.

Every entry point trusts its arguments: shapes, dtypes, contiguity and sizes are validated once by the
Python layer (skipnet.network, skipnet.trainer) before any call, and the module is compiled with
boundscheck/wraparound/initializedcheck off. Cores are ``noexcept nogil``; the ``def`` wrappers release
the GIL around them. Outputs are always passed in, never allocated here. Reductions accumulate in double
even for float32 data.

The source is split into parts glued together with ``include``, so it stays one extension module:

    blas.pxi         row-major gemm over scipy.linalg.cython_blas and the size threshold for using it
    dense.pxi        dense forward and backward
    activations.pxi  relu forward and backward, identity-skip addition
    losses.pxi       l1 / mse / bce-with-logits / cross-entropy: value and gradient in one pass
    optim.pxi        SGD and Adam updates over the flat parameter buffer
"""

cimport cython
from cython cimport floating
from libc.math cimport exp, fabs, log, log1p, sqrt
from libc.stdint cimport int64_t

include "blas.pxi"
include "dense.pxi"
include "activations.pxi"
include "losses.pxi"
include "optim.pxi"
