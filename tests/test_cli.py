"""The skipnet command line, run as a user would (subprocess) and in-process for error paths."""

import json
import os
import subprocess
import sys

from _helpers import PACKAGE_ROOT

from skipnet.cli import main


def test_trace_prints_the_exercise_steps(tmp_path):
    # run outside the source tree, so the installed package is the one imported
    out = subprocess.run([sys.executable, "-m", "skipnet", "trace"], capture_output=True, text=True,
                         check=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": PACKAGE_ROOT})
    text = out.stdout
    assert "=== step 1 ===" in text and "=== step 2 ===" in text
    step1, step2 = text.split("=== step 2 ===")
    assert "L        = 3.375" in step1 and "yhat     = 0.375" in step1
    assert "W0 - lr · dL/dW0 = 0.5 - 1 · 0.75" in step1
    assert "L        = 3 " in step2 and "every gradient is exactly 0" in step2


def test_trace_options(capsys):
    assert main(["trace", "--x", "2", "--y", "1", "--weights", "1,1,1,0", "--loss", "mse", "--steps", "1"]) == 0
    text = capsys.readouterr().out
    assert "z2       = 2 " in text and "L        = 1 " in text


def test_errors_are_one_line(capsys):
    assert main(["trace", "--weights", "1,2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--weights needs 4 values" in err


def test_help_lists_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "trace" in out and "exercise" in out


def test_exercise_round_trip_as_a_user(tmp_path):
    def skipnet(*args):
        return subprocess.run([sys.executable, "-m", "skipnet", *args], capture_output=True, text=True, check=False,
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": PACKAGE_ROOT})

    new = skipnet("exercise", "new", "--seed", "2", "--out", "ex.json", "--solution")
    assert new.returncode == 0 and "| z0 |" in new.stdout
    assert (tmp_path / "ex.md").is_file() and (tmp_path / "ex.solution.md").is_file()
    key = json.loads((tmp_path / "ex.json").read_text())
    assert key["format"] == "skipnet-exercise" and key["seed"] == 2
    (tmp_path / "sheet.txt").write_text("z0 = 12345\n")
    wrong = skipnet("exercise", "check", "ex.json", "sheet.txt")
    assert wrong.returncode == 1 and "first error: z0" in wrong.stdout and wrong.stderr == ""
    bad = skipnet("exercise", "check", "ex.json", "missing.txt")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_bench_command_smoke(tmp_path, capsys):
    # the protocol end to end on two small workloads, one very short round (timings are not checked)
    from skipnet import _bench as benchmark
    from skipnet import _kernels as K
    from skipnet._bench.host import describe

    out, lines = tmp_path / "bench.json", []
    report = benchmark.run(workloads=["W0", "W1"], json_path=str(out), rounds=1, block=0.002, torch=False,
                           log=lines.append)
    saved = json.loads(out.read_text())
    assert set(saved["workloads"]) == {"W0", "W1"}
    # the host before any table, and the same in the JSON
    host = describe()
    assert lines[0].startswith(f"host: {host['cpu']}; SIMD flags: ")
    assert lines[1].startswith("skipnet SIMD in use: tiles ")
    machine = saved["machine"]
    assert machine["cpu"] == host["cpu"] and machine["cpu_flags"] == host["cpu_flags"]
    assert set(machine["simd_paths"]) == {"tiles", "elementwise", "losses", "blas"}
    assert machine["simd_paths"]["tiles"] == K.get_simd() and machine["blas_thresholds"] == K.blas_thresholds()
    for name, w in report["workloads"].items():
        assert {"skipnet fused", "skipnet fit (defaults)", "skipnet per-op",
                "numpy reference"} <= set(w["median_per_step"])
        assert all(t > 0 for t in w["median_per_step"].values())
        assert w["paired_ratio"]["skipnet fused"]["skipnet fused"] == 1.0
        assert w["defaults_over_fused"] == w["paired_ratio"]["skipnet fit (defaults)"]["skipnet fused"] > 0
        assert saved["workloads"][name]["defaults_over_fused"] == w["defaults_over_fused"]
        assert set(w["steps_per_block"]) == set(w["median_per_step"]) and min(w["steps_per_block"].values()) >= 1
        assert w["steps_per_block"]["skipnet fit (defaults)"] == w["steps_per_block"]["skipnet fused"]
        assert [t["target"] for t in w["targets"]] == [f"{a} / {b} {op} {v:g}" for a, b, op, v in
                                                        benchmark.TARGETS[name]]
        start = next(i for i, line in enumerate(lines) if line.startswith(f"\n{name}:"))
        table = lines[start + 1:next((i for i in range(start + 1, len(lines)) if lines[i].startswith("\n")),
                                     len(lines))]
        assert any(line.startswith("  skipnet fit (defaults) ") for line in table)
        table = "\n".join(table)
        assert f"skipnet fit (defaults) / skipnet fused: {w['defaults_over_fused']:.3g}" in table
    assert main(["bench", "--workloads", "W7"]) == 2
    assert "unknown workload" in capsys.readouterr().err
