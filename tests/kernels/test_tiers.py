"""One table, every tier: each kernel of the case table (support/cuda_cases.py) run by

    numba           kernels/cpu on the "cpu" device (one draw in four large enough for its threaded copies)
    cuda-emulator   kernels/cuda on the "cuda-emulator" device: the .cu text compiled for and run on the host
                    emulator, with the launch drawn too (32 or 256 threads a block, a grid capped at 1, 3 or
                    65535 blocks, blocks and threads in forward or reverse order)
    cuda            kernels/cuda on a GPU through CuPy (@pytest.mark.gpu; skipped, saying why, without one)

against kernels/reference on the same inputs, for hypothesis-drawn configurations of the case's shape family
(support/strategies.py). float64 must agree to 1e-12 relative, float32 to 1e-5; on a real GPU 4 times that
(it fuses a*b + c into one rounding, and CuPy compiles with -ftz). The worst error per tier, kernel and dtype
is printed at the end of the run (the issue's closing notes quote it).
"""
import contextlib
import inspect
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.cuda_cases import CASES, TOLERANCE, run_case
from support.strategies import FAMILIES

import minitorch_cnn as mt
from minitorch_cnn.device import gpu_available, to_numpy
from minitorch_cnn.kernels import cpu, cuda, reference
from minitorch_cnn.kernels.cpu import jit
from minitorch_cnn.kernels.cuda import emulator, launch


@dataclass(frozen=True)
class Tier:
    name: str
    device: str             # the mt.device spec: its .kernels run the cases, its .send places the inputs
    examples: int           # hypothesis draws per shape family
    large: bool = False     # draw sizes for the Numba kernels' threaded copies
    launches: bool = False  # draw the CUDA launch geometry and order
    slack: float = 1.0      # times TOLERANCE


NO_GPU = "no CUDA GPU visible to CuPy (or no CuPy): the table's CuPy column runs on a machine with one"
TIERS = [
    pytest.param(Tier("numba", "cpu", examples=80, large=True), id="numba"),
    pytest.param(Tier("cuda-emulator", "cuda-emulator", examples=60, launches=True), id="cuda-emulator",
                 marks=pytest.mark.skipif(not emulator.available(), reason=str(emulator.unavailable_reason()))),
    pytest.param(Tier("cuda", "cuda", examples=40, launches=True, slack=4.0), id="cuda",
                 marks=[pytest.mark.gpu, pytest.mark.skipif(not gpu_available(), reason=NO_GPU)]),
]
LAUNCHES = st.tuples(st.sampled_from([32, 256]), st.sampled_from([1, 3, 65535]), st.sampled_from(emulator.ORDERS))
WORST = {}


@pytest.fixture(scope="module", autouse=True)
def print_worst_errors():
    yield
    print("\nworst error of each tier's kernels vs kernels/reference (relative to max |reference|, or its floor):")
    for (tier, name, dtype), err in sorted(WORST.items()):
        print(f"  {tier:<14} {name:<46} {dtype:<8} {err:.2e}")
    if not gpu_available():
        print(f"  cuda           skipped: {NO_GPU}")


@contextlib.contextmanager
def launched(geometry):
    """The CUDA wrappers launch with ``threads`` a block, at most ``max_blocks`` blocks, in ``order``: one
    block with fewer elements than threads, a grid-stride loop over a capped grid, many blocks. The
    reductions always use up to REDUCE_THREADS threads, with 1, 3 or many blocks."""
    if geometry is None:
        yield
        return
    threads, max_blocks, order = geometry
    with pytest.MonkeyPatch.context() as mp, emulator.launch_order(order):
        mp.setattr(launch, "THREADS", threads)
        mp.setattr(launch, "MAX_BLOCKS", max_blocks)
        yield


def check_cases(tier, family, cfg, geometry=None):
    device = mt.device(tier.device)
    with mt.using_device(device), launched(geometry):
        for case in (c for c in CASES if c.family == family):
            for output, err in run_case(case, device.kernels, cfg, device.send, to_numpy).items():
                key = (tier.name, f"{case.name} ({output})", np.dtype(cfg["dtype"]).name)
                WORST[key] = max(WORST.get(key, 0.0), err)
                assert err <= tier.slack * TOLERANCE[cfg["dtype"]], f"{key}: error {err:.2e}, {cfg}, {geometry}"


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("tier", TIERS)
def test_every_kernel_matches_reference(tier, family):
    @settings(max_examples=tier.examples, deadline=None)
    @given(cfg=FAMILIES[family](large=tier.large), geometry=LAUNCHES if tier.launches else st.none())
    def check(cfg, geometry):
        check_cases(tier, family, cfg, geometry)
    check()


# Fixed configurations whose inputs alone have jit.PARALLEL_FROM elements (every kernel's work is at least
# its input or its output), so the threaded copies of all the Numba kernels run on every test run, not only
# when hypothesis draws a large size.
THREADED = {
    "conv": dict(shape=(4, 16, 33, 32), kernel=(3, 3), stride=(1, 2), padding=(1, 1), dilation=(1, 1),
                 out_hw=(33, 16), m=2),
    "pool": dict(shape=(4, 16, 33, 32), kernel=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1),
                 out_hw=(17, 16)),
    "batch_norm": dict(shape=(64, 16, 16, 16)),
    "elementwise": dict(shape=(64, 32, 16, 16)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("family", sorted(THREADED))
def test_threaded_numba_kernels_match_reference(family, dtype):
    cfg = dict(THREADED[family], dtype=dtype)
    assert np.prod(cfg["shape"]) >= jit.PARALLEL_FROM
    for high in ((None, 6.0) if family == "elementwise" else (None,)):
        check_cases(Tier("numba", "cpu", examples=1), family, dict(cfg, high=high))


@pytest.mark.parametrize("tier", TIERS)
def test_max_pool_propagates_nan_like_torch(tier):
    device = mt.device(tier.device)
    x = np.zeros((1, 1, 2, 2), np.float32)
    x[0, 0, 1, 0] = np.nan
    with mt.using_device(device):
        y, _ = device.kernels.max_pool_forward(device.send(x), (2, 2), (2, 2), (0, 0), (1, 1))
    assert np.isnan(to_numpy(y)[0, 0, 0, 0])


def test_every_shared_kernel_has_a_case():
    assert sorted({c.kernel for c in CASES}) == sorted(cuda.__all__)
    assert sorted({c.family for c in CASES}) == sorted(FAMILIES)


def test_every_kernel_module_offers_the_same_functions():
    # The GPU wrappers must be drop-in: the same names and the same signatures (parameter names and
    # defaults), except the CPU-only algorithms listed in cpu.CPU_ONLY.
    shared = sorted(set(cpu.__all__) - set(cpu.CPU_ONLY))
    assert sorted(cuda.__all__) == shared
    for name in shared:
        sig = inspect.signature(getattr(cpu, name))
        assert inspect.signature(getattr(cuda, name)) == sig, name
        assert inspect.signature(getattr(reference, name)) == sig, name
