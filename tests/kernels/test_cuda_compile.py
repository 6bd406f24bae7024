"""Every .cu file compiles for sm_80 and sm_90 through CuPy's NVRTC path (CuPy's options) and through
nvcc with ptxas reporting: every kernel present for both archs, no spills, no stack frame, shared
memory under 48 KB (the static limit per block). Skips, saying why, without CuPy / NVRTC or nvcc.
"""
import re

import pytest

from minitorch_cnn.kernels.cuda import compile_check, launch

KERNELS = sorted({m.group(1) + suffix
                  for f in compile_check.FILES
                  for m in re.finditer(r'void (\w+)_##S\s*\(', launch.source(f))
                  for suffix in ("_f32", "_f64")})
SMEM_LIMIT = 48 * 1024


def check(usage, path):
    assert sorted({k for k, _ in usage}) == sorted(k for k in KERNELS if (k, compile_check.ARCHS[0]) in usage)
    for (kernel, arch), u in usage.items():
        assert u["spill_stores"] == u["spill_loads"] == 0, f"{path} {kernel} sm_{arch} spills: {u}"
        assert u["stack"] == 0, f"{path} {kernel} sm_{arch} uses a stack frame: {u}"
        assert u["smem"] < SMEM_LIMIT, f"{path} {kernel} sm_{arch}: {u['smem']} bytes of shared memory"
        assert 0 < u["registers"] <= 255


def test_the_kernel_list_is_complete():
    assert len(KERNELS) == 2 * 18   # 18 kernels, float and double


@pytest.mark.skipif(compile_check.cupy_missing() is not None, reason=str(compile_check.cupy_missing()))
@pytest.mark.parametrize("file", compile_check.FILES)
def test_cupy_nvrtc_compiles_to_cubin(file):
    usage = {}
    for arch in compile_check.ARCHS:
        got = compile_check.nvrtc_compile(file, arch)
        assert {a for _, a in got} == {arch}
        usage.update(got)
    check(usage, "nvrtc")
    assert all((k, a) in usage for k, _ in usage for a in compile_check.ARCHS)


@pytest.mark.skipif(compile_check.nvcc_missing() is not None, reason=str(compile_check.nvcc_missing()))
def test_nvcc_ptxas_reports_no_spills():
    for file, usage in compile_check.nvcc_compile(*compile_check.FILES).items():
        assert {a for _, a in usage} == set(compile_check.ARCHS), file
        check(usage, "nvcc")


def test_nvrtc_rejects_what_the_rules_forbid():
    if compile_check.cupy_missing():
        pytest.skip(compile_check.cupy_missing())
    from cupy.cuda import compiler
    good = 'extern "C" __global__ void k(float* y) { y[0] = __int_as_float(0x7f800000); }'
    assert compile_check.nvrtc_compile_source(good, "80")
    for bad in ('extern "C" __global__ void k(float* y) { y[0] = INFINITY; }',
                'extern "C" __global__ void k(float* y) { y[0] = std::sqrt(2.0f); }'):
        with pytest.raises(compiler.CompileException):
            compile_check.nvrtc_compile_source(bad, "80")
