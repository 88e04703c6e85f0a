"""The host that ``skipnet bench`` reports: CPU model and SIMD flags read from /proc/cpuinfo (or what can be
known elsewhere), and the SIMD level of each of skipnet's code paths."""

import skipnet._kernels as K
from skipnet._bench import host

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_tile

processor\t: 1
model name\t: some other core
flags\t\t: fpu sse2
"""


def test_cpu_model_and_flags_come_from_the_first_processor(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO)
    assert host.cpu_model(str(info)) == "Intel(R) Xeon(R) Platinum 8488C"
    assert host.cpu_simd_flags(str(info)) == ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                                              "avx512_bf16", "avx512_fp16"]
    info.write_text("model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx fma avx2\n")
    assert host.cpu_model(str(info)) == "AMD EPYC" and host.cpu_simd_flags(str(info)) == ["avx2", "fma"]


def test_without_cpuinfo_the_platform_and_skipnets_own_check_answer(tmp_path, monkeypatch):
    missing = str(tmp_path / "no-cpuinfo")
    monkeypatch.setattr(host.platform, "processor", lambda: "arm")
    assert host.cpu_model(missing) == "arm"
    assert host.cpu_simd_flags(missing) == (["avx2", "fma"] if K.cpu_has_avx2() else [])


def test_simd_paths_fall_back_to_get_simd_and_prefer_the_extensions_report(monkeypatch):
    if hasattr(K, "simd_report"):
        monkeypatch.delattr(K, "simd_report")
    paths = host.simd_paths()
    assert list(paths) == ["tiles", "elementwise", "losses", "blas"]
    assert paths["tiles"] == paths["elementwise"] == paths["losses"] == K.get_simd()
    assert paths["blas"] == "unknown" or paths["blas"].startswith("OpenBLAS ")
    report = {"tiles": "avx512", "elementwise": "avx2", "losses": "avx2", "blas": "openblas SkylakeX"}
    monkeypatch.setattr(K, "simd_report", lambda: report, raising=False)
    assert host.simd_paths() == report


def test_host_lines_name_the_cpu_its_flags_and_every_path():
    described = host.describe()
    assert described["blas_threshold"] == K.get_blas_threshold()
    first, second = host.host_lines(described)
    assert first.startswith(f"host: {described['cpu']}; SIMD flags: ")
    assert all(flag in first for flag in described["cpu_flags"])
    assert all(f"{path} {level}" in second for path, level in described["simd_paths"].items())
    assert f"{K.get_blas_threshold():,}" in second
