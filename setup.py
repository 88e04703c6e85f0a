"""Build the one extension module, skipnet._kernels, from csrc/_kernels.pyx (+ its .pxi parts).

SKIPNET_DEBUG_BUILD=1 turns Cython's bounds and initialisation checks on and compiles with -O1 -g,
for running the test suite under sanitizers or valgrind. SKIPNET_SANITIZE=1 (gcc or clang) adds
AddressSanitizer and UndefinedBehaviorSanitizer, every report fatal; Python itself is not instrumented,
so the runtime must be preloaded: tools/sanitize.sh builds and runs the tests that way.
"""

import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("SKIPNET_DEBUG_BUILD", "") not in ("", "0")
SANITIZE = os.environ.get("SKIPNET_SANITIZE", "") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "initializedcheck": DEBUG,
    "nonecheck": False,
    "cdivision": True,
    "embedsignature": True,
    "freethreading_compatible": True,
}

if sys.platform == "win32":
    compile_args = ["/O2"]
elif DEBUG:
    compile_args = ["-O1", "-g", "-fno-omit-frame-pointer"]
else:
    # -fno-math-errno: sqrt need not set errno, so loops over it (Adam) vectorise; results are unchanged
    compile_args = ["-O3", "-fno-math-errno"]
link_args = []
if SANITIZE:
    if sys.platform == "win32":
        raise SystemExit("SKIPNET_SANITIZE=1 needs gcc or clang")
    sanitizers = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
    compile_args += sanitizers
    link_args += sanitizers

extension = Extension(
    "skipnet._kernels",
    ["csrc/_kernels.pyx"],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
    depends=[os.path.join("csrc", f) for f in os.listdir("csrc") if f.endswith((".pxi", ".h"))],
)

setup(ext_modules=cythonize([extension], compiler_directives=directives, include_path=["csrc"]))
