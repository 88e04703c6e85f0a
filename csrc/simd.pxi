# The SIMD level of every kernel (simd.h) from Python: choose it, list what this build and CPU can run,
# report what each path runs now; and a self-test of the loops written with AVX2 intrinsics.

cdef extern from "simd_selftest.h" nogil:
    enum:
        SELFTEST_SGD_PLAIN_DIFFERS
        SELFTEST_L1_BATCH_DIFFERS
    int simd_intrinsic_forms_differ(const float* a, const float* b, Py_ssize_t size, double lr,
                                    float* work)

SIMD_LEVELS = ("baseline", "generic512", "avx2", "avx512")  # names, indexed by simd.h's simd_level


def set_simd(str name):
    """Select the SIMD level of the register tiles, the element-wise loops and the batch losses.

    name: "baseline" (SSE2, 16-byte vectors), "avx2" (AVX2, with FMA in the tiles), "avx512"
    (AVX-512 F/VL/BW/DQ, with FMA in the tiles) or "generic512" (the avx512 level's 64-byte source
    compiled for the baseline target: slow, for testing that code on any x86-64; never the default).
    A level this build or CPU cannot run falls back to the best available level below it (avx512 ->
    avx2 -> baseline, generic512 -> baseline). Returns the name of the level now in use. The default
    is the best level of the CPU (cpu_simd_level()). The element-wise loops and losses give the same
    bits at every level; the tiles differ by FMA rounding and by how the sum over k is blocked. Unless
    set with set_blas_threshold, the BLAS thresholds follow the level (blas_thresholds)."""
    if name not in SIMD_LEVELS:
        raise ValueError(f"simd must be one of {', '.join(map(repr, SIMD_LEVELS))}, got {name!r}")
    cdef int level = SIMD_LEVELS.index(name)
    simd_select(<simd_level>level)
    update_blas_threshold()
    return get_simd()


def get_simd():
    """The name of the SIMD level in use (see set_simd)."""
    return SIMD_LEVELS[<int>simd_level_in_use()]


def simd_levels():
    """The names of the levels this build and CPU can run, from the baseline up: ("baseline",) on
    builds without GNU C on x86, else ("baseline", "generic512") and "avx2", "avx512" as the CPU has
    them."""
    return tuple(name for level, name in enumerate(SIMD_LEVELS)
                 if simd_level_available(<simd_level><int>level))


def cpu_simd_level():
    """The best level of this CPU (and OS): "avx512", "avx2" or "baseline" (generic512 never)."""
    return SIMD_LEVELS[<int>simd_cpu_level()]


def cpu_has_avx2():
    """Whether this CPU (and OS) supports AVX2 and FMA."""
    return simd_cpu_level() >= SIMD_AVX2


def simd_report():
    """{"tiles", "elementwise", "losses": the SIMD level each path runs now (get_simd()), "blas": the
    BLAS library the large products go to, as threadpoolctl reports it ({"internal_api", "version",
    "architecture"}: e.g. OpenBLAS's kernel family, "Haswell" or "SkylakeX"), or "unknown" when
    threadpoolctl is not installed or does not see SciPy's BLAS}."""
    level = get_simd()
    return {"tiles": level, "elementwise": level, "losses": level, "blas": scipy_blas_info()}


def scipy_blas_info():
    """What threadpoolctl reports of the BLAS library that scipy.linalg.cython_blas (the products
    above the threshold) runs, or "unknown"."""
    try:
        import os
        import scipy
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown"
    scipy_dir = os.path.dirname(os.path.abspath(scipy.__file__))
    for info in threadpool_info():
        path = os.path.abspath(info.get("filepath") or "")
        if info.get("user_api") == "blas" and path.startswith((scipy_dir + os.sep, scipy_dir + ".libs")):
            return {key: info.get(key) for key in ("internal_api", "version", "architecture")}
    return "unknown"


def check_intrinsic_forms(const float[::1] a, const float[::1] b, double lr):
    """Self-test (for the test suite): the loops written with AVX2 intrinsics against their template
    forms on the same data, P = yhat = a and G = y = b (equal lengths, float32; any values, NaN and
    infinities included). Returns the names of the forms whose outputs or flags differ in any bit
    ("ew_sgd_plain_f_avx2": plain SGD with rate lr; "loss_l1_batch_f_avx2": the l1 loss and its
    gradient), () when all agree. RuntimeError when this build or CPU has no AVX2."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must have equal lengths, got {a.shape[0]} and {b.shape[0]}")
    cdef Py_ssize_t size = a.shape[0]
    cdef float* work = <float*>PyMem_Malloc(max(4 * size, 1) * sizeof(float))
    if work == NULL:
        raise MemoryError()
    cdef int differ
    try:
        with nogil:
            differ = simd_intrinsic_forms_differ(&a[0] if size else NULL, &b[0] if size else NULL, size,
                                                 lr, work)
    finally:
        PyMem_Free(work)
    if differ < 0:
        raise RuntimeError("check_intrinsic_forms needs a CPU with AVX2 and FMA and an x86 GNU build")
    return tuple(name for bit, name in ((SELFTEST_SGD_PLAIN_DIFFERS, "ew_sgd_plain_f_avx2"),
                                        (SELFTEST_L1_BATCH_DIFFERS, "loss_l1_batch_f_avx2"))
                 if differ & bit)
