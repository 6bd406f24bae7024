"""The benchmark plumbing (no timing): the BLAS-override child process and the table generator
of docs/performance.md."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import harness, readme_tables

ROOT = Path(__file__).resolve().parents[2]


def test_child_environment_drops_the_blas_overrides_and_says_which(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "512")
    monkeypatch.delenv(harness._CHILD_MARK, raising=False)
    env = harness.clean_blas_env()
    assert "OPENBLAS_CORETYPE" not in env and "OPENBLAS_L2_SIZE" not in env
    assert env[harness._CHILD_MARK] == "OPENBLAS_CORETYPE=Haswell,OPENBLAS_L2_SIZE=512"
    assert os.environ["OPENBLAS_CORETYPE"] == "Haswell"   # this process keeps them


def test_benchmark_reruns_itself_without_the_overrides(tmp_path):
    """A real child: the overrides are gone there, and the recorded machine info says what was removed."""
    code = ("import json, os; from benchmarks import harness; "
            "done = harness.run_on_own_blas_kernel('benchmarks.harness', []); "
            "print(json.dumps({'done': done, 'core': os.environ.get('OPENBLAS_CORETYPE'), "
            "'removed': os.environ.get(harness._CHILD_MARK)}))")
    env = {**os.environ, "OPENBLAS_CORETYPE": "Haswell", "PYTHONPATH": str(ROOT)}
    env.pop(harness._CHILD_MARK, None)
    parent = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert json.loads(parent.stdout.strip().splitlines()[-1]) == {"done": True, "core": "Haswell",
                                                                  "removed": None}
    child_env = {k: v for k, v in env.items() if k != "OPENBLAS_CORETYPE"}   # what the parent hands its child
    child_env[harness._CHILD_MARK] = "OPENBLAS_CORETYPE=Haswell"
    child = subprocess.run([sys.executable, "-c", code], env=child_env, cwd=ROOT, capture_output=True, text=True)
    assert json.loads(child.stdout.strip().splitlines()[-1]) == {"done": False, "core": None,
                                                                 "removed": "OPENBLAS_CORETYPE=Haswell"}


_CAPPED_CHILD = """
import json, numpy as np, numba
from benchmarks import harness
@numba.njit
def axpy(a, b):
    for i in range(a.size):
        a[i] += 2.0 * b[i]
a = np.ones(4096, np.float32)
axpy(a, a)
asm = "".join(axpy.inspect_asm().values())
info = harness.machine_info()
print(json.dumps({"isa": info["vector_isa"], "cap": info["isa_cap"], "llvm": info["llvm_cpu"],
                  "zmm": "zmm" in asm, "ymm": "ymm" in asm, "torch": info.get("torch_cpu_capability"),
                  "blas": [b.get("architecture") for b in info["blas"]]}))
"""


def test_an_isa_cap_reaches_every_library_in_the_timed_process(monkeypatch):
    """``--isa avx2``: the child's Numba code has no 512-bit registers, OpenBLAS runs its Haswell kernel,
    PyTorch's ATen reports AVX2, and the recorded machine says capped, with the CPU's own ISA beside it."""
    if harness.vector_isa() not in ("AVX2", "AVX-512"):
        pytest.skip(f"this CPU ({harness.vector_isa()}) cannot run AVX2 code, so there is nothing to cap")
    monkeypatch.delenv(harness._CHILD_MARK, raising=False)
    monkeypatch.delenv(harness._ISA_MARK, raising=False)
    env = harness.clean_blas_env("avx2")
    assert {k: env[k] for k in harness.ISA_CAPS["avx2"]} == harness.ISA_CAPS["avx2"]
    env["PYTHONPATH"], env["NUMBA_CACHE_DIR"] = str(ROOT), os.devnull   # nothing cached from this test
    done = subprocess.run([sys.executable, "-c", _CAPPED_CHILD], env=env, cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["cap"] == "avx2" and got["isa"].startswith("AVX2 (capped; CPU ") and got["llvm"] == "haswell"
    assert not got["zmm"] and got["ymm"]
    assert got["torch"] in (None, "AVX2")
    assert all(kernel in (None, "Haswell") for kernel in got["blas"]), got["blas"]


def _result(median):
    return {"median_s": median, "guard_others_max": 0.05}


def test_readme_tables_come_from_the_json_with_date_and_blas_kernel(tmp_path):
    machine = {"date": "2026-12-01 22:00 UTC", "cpu": "CPU", "cpus": 2, "numpy": "2.4", "numba": "0.6",
               "torch": "2.13.0", "blas": [{"internal_api": "openblas", "version": "0.3", "architecture": "SkylakeX",
                                            "num_threads": 2}], "blas_overrides_removed": "OPENBLAS_CORETYPE=Haswell"}
    (tmp_path / "kernels.json").write_text(json.dumps({"machine": machine, "batch": 64, "rows": [
        {"op": "conv3x3 64->64 @32", "ours_fwd": _result(0.030), "torch_fwd": _result(0.020),
         "ours_fwd_bwd": _result(0.090), "torch_fwd_bwd": _result(0.060)}]}))
    text = readme_tables.tables(tmp_path)
    assert "2026-12-01 22:00 UTC" in text and "SkylakeX kernel" in text and "OPENBLAS_CORETYPE=Haswell" in text
    assert "| conv3x3 64->64 @32 | 30.0 | 20.0 | 1.50x | 90.0 | 60.0 | 1.50x | 5% |" in text
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{readme_tables.BEGIN}\nold table\n{readme_tables.END}\noutro\n")
    readme_tables.write(readme, text)
    new = readme.read_text()
    assert "old table" not in new and "1.50x" in new and new.startswith("intro\n") and new.endswith("outro\n")
    readme.write_text("no markers")
    with pytest.raises(SystemExit, match="markers"):
        readme_tables.write(readme, text)


def test_tables_of_several_machines_say_which_machine_each_row_ran_on(tmp_path):
    def machine(isa, kernel):
        return {"date": "2026-12-07 07:00 UTC", "cpu": "CPU", "cpus": 2, "numpy": "2.4", "vector_isa": isa,
                "llvm_cpu": "cpu", "blas": [{"internal_api": "openblas", "architecture": kernel}]}
    row = {"model": "lenet5", "ours": {"train": _result(0.012), "forward": _result(0.004), "peak_step_bytes": 2 ** 20},
           "torch": {"train": _result(0.006), "forward": _result(0.002), "peak_step_bytes": 2 ** 20}}
    for name, isa, kernel in (("avx512", "AVX-512", "SkylakeX"), ("avx2", "AVX2", "Haswell")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "models.json").write_text(json.dumps({"machine": machine(isa, kernel), "batch": 64,
                                                                 "rows": [row]}))
    text = readme_tables.tables([tmp_path / "avx512", tmp_path / "avx2"])
    rows = [line for line in text.splitlines() if line.startswith("| lenet5 |")]
    assert [r.rsplit("|", 2)[1].strip() for r in rows] == ["AVX-512, SkylakeX", "AVX2, Haswell"]
    assert "`avx512/models.json`" in text and "(AVX2, Numba's LLVM target cpu)" in text


def test_the_machine_info_records_the_vector_instruction_set():
    info = harness.machine_info()
    assert info["vector_isa"] in ("AVX-512", "AVX2", "AVX", "SSE") or info["vector_isa"] == info["machine"]
    assert harness.machine_label(info).startswith(info["vector_isa"] + ", ")


def test_profile_sorts_ours_and_pytorchs_ops_into_the_same_kinds():
    from benchmarks import profile
    assert [profile.kind_of(n) for n in ("WinogradConv2d.backward", "aten::convolution_backward",
                                         "BatchNormTrain.forward", "aten::native_batch_norm",
                                         "MaxPool2d.forward", "aten::max_pool2d_with_indices",
                                         "ReLU6.backward", "aten::hardtanh_backward", "aten::threshold_backward",
                                         "Cat.forward", "aten::cat", "Linear.forward", "aten::addmm",
                                         "aten::empty")] == [
        "convolution", "convolution", "batch norm", "batch norm", "pooling", "pooling",
        "activation", "activation", "activation", "concatenation", "concatenation", "linear", "linear",
        "other ops"]
    kinds = profile.by_kind({"Conv2d.forward": 0.25, "Conv2d.backward": 0.125, "ReLU.forward": 0.5}, wall=1.0)
    assert kinds == {"convolution": 0.375, "activation": 0.5, "optimizer, Python": 0.125}
    rows = profile.twin_table(kinds, {"convolution": 0.75, "activation": 0.25})
    assert rows == [["activation", "500.0", "250.0", "2.00x"], ["convolution", "375.0", "750.0", "0.50x"],
                    ["optimizer, Python", "125.0", "0.0", "-"]]


def test_profile_twin_times_the_pytorch_twin_per_aten_op_leaving_out_the_optimizer():
    pytest.importorskip("torch", reason="PyTorch is the reference the twin profile measures")
    from benchmarks import profile
    wall, ops = profile.profile_twin("lenet5", batch=2, steps=1)
    assert wall > 0 and all(name.startswith("aten::") for name in ops)
    kinds = profile.by_kind(ops, wall)
    assert kinds["convolution"] > 0 and kinds["linear"] > 0 and kinds["optimizer, Python"] > 0


def test_profile_twin_leaves_the_optimizers_own_ops_to_optimizer_and_python():
    from types import SimpleNamespace as Event

    from benchmarks import profile
    step = Event(name="Optimizer.step#SGD.step", cpu_parent=None)
    assert profile._inside_optimizer(Event(name="aten::mul_", cpu_parent=Event(name="aten::add", cpu_parent=step)))
    assert not profile._inside_optimizer(Event(name="aten::add_", cpu_parent=Event(name="autograd", cpu_parent=None)))


def test_the_performance_page_holds_the_tables_the_committed_results_give():
    """`python -m benchmarks.readme_tables --write` rewrites docs/performance.md between its markers; what
    stands there now is what the committed benchmarks/results/*.json give (rerun it after a benchmark)."""
    page = (ROOT / readme_tables.TABLES_FILE).read_text(encoding="utf-8")
    between = page.split(readme_tables.BEGIN + "\n", 1)[1].split(readme_tables.END, 1)[0]
    assert between == readme_tables.tables(ROOT / "benchmarks" / "results")
