"""The backward stepper (st.step_back) and the gradient bisector (st.bisect): it names a planted wrong
backward and says where its errors sit."""
import numpy as np
import pytest

import zoo
from minitorch_cnn import nn
from minitorch_cnn.functional.pool import MaxPool2d as MaxPoolFunction
from minitorch_cnn.lab import Stepper
from minitorch_cnn.lab.backward_steps import overlap_counts
from minitorch_cnn.random import manual_seed


class AssigningMaxPoolFunction(MaxPoolFunction):
    """Max pooling whose backward writes ``=`` where it must add ``+=``: where two overlapping windows
    share their winning pixel, the second window's gradient replaces the first's. Right everywhere else."""

    def backward(self, gy):
        gx = np.zeros(self.x_shape, gy.dtype)
        (_, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        for n, c, i, j in np.ndindex(*gy.shape):
            tap = int(self.argmax[n, c, i, j])
            gx[n, c, i * sh - ph + tap // kw, j * sw - pw + tap % kw] = gy[n, c, i, j]   # the planted bug
        return gx


class AssigningMaxPool(nn.MaxPool2d):
    def forward(self, x):
        out_hw = tuple((s + 2 * self.padding - self.kernel_size) // self.stride + 1 for s in x.shape[2:])
        return AssigningMaxPoolFunction((self.kernel_size,) * 2, (self.stride,) * 2, (self.padding,) * 2,
                                        out_hw)(x)


def small_model(pool):
    manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), pool, nn.Flatten(), nn.Linear(3 * 4 * 4, 5))


def image():
    return np.random.default_rng(0).standard_normal((1, 1, 9, 9)).astype(np.float32)


def test_bisect_names_the_planted_wrong_step_and_where_its_errors_sit():
    st = Stepper(small_model(AssigningMaxPool(3, stride=2)).eval(), image())
    report = st.bisect(samples=24)
    assert not report.passed and report.model_check.max_error > 1e-3
    assert report.step is st["2"] and report.step.kind == "AssigningMaxPool"
    assert not report.step_check.passed
    loc = report.location
    assert "errors only where windows overlap" in loc.where, loc.where
    counts = np.broadcast_to(overlap_counts(report.step) > 1, loc.wrong.shape)
    assert loc.wrong.any() and not (loc.wrong & ~counts).any()
    assert "first failing step from the output: 2 2 (AssigningMaxPool)" in str(report)


def test_bisect_passes_a_correct_model():
    st = Stepper(small_model(nn.MaxPool2d(3, stride=2)).eval(), image())
    report = st.bisect(samples=24)
    assert report.passed and report.step is None and "passed" in str(report)


def test_overlap_counts_of_a_pool():
    st = Stepper(small_model(nn.MaxPool2d(3, stride=2)).eval(), image())
    counts = overlap_counts(st["2"])
    # 9 pixels, windows at 0-2, 2-4, 4-6, 6-8: pixels 2, 4, 6 are read by two windows along each axis
    np.testing.assert_array_equal(counts[0], [1, 1, 2, 1, 2, 1, 2, 1, 1])
    assert counts[2, 2] == 4 and overlap_counts(st["1"]) is None


def test_step_back_walks_the_backward_from_the_output():
    model = zoo.get_model("lenet5", in_channels=1, num_classes=10).eval()
    st = Stepper(model, np.random.default_rng(0).standard_normal((1, 1, 32, 32)).astype(np.float32))
    with pytest.raises(RuntimeError, match="before step_back"):
        st.step_back()
    st.backward(3)
    seen = []
    while (b := st.step_back()) is not None:
        seen.append(b)
    assert [b.step.name for b in seen] == st.names[::-1]
    # each step's backward hands its input exactly the gradient the step before it (in the forward) received
    for later, earlier in zip(seen, seen[1:]):
        np.testing.assert_allclose(later.grad_inputs[0], earlier.grad_output, rtol=1e-5, atol=1e-7)
    assert "backward through 11 classifier.fc3 (Linear)" in str(seen[0])
