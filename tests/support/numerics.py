"""Helpers shared by the test files: the relative error used for every torch comparison, inputs
without ties or kinks, and the register of worst errors that conftest.py prints after a run."""
import numpy as np

WORST = {}  # (table, family, measure) -> worst error seen this run


def record(table, family, measure, value):
    key = (table, family, measure)
    WORST[key] = max(WORST.get(key, 0.0), value)


def rel_err(got, want, floor=0.0):
    """max|got - want| / max|want|: one number per array, scaled by the reference's magnitude (``want``),
    or by ``floor`` where that is larger (a reference that is all near zero). The one relative error of
    the tests; the CS231n elementwise form, max(|a - b| / (|a| + |b|)), is the gradcheck's and the labs'."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    if got.size == 0:
        return 0.0
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), floor, 1e-300))


def distinct(rng, shape, spacing=0.01):
    """Values at least ``spacing`` apart, away from 0 and from ReLU6's 6, and not symmetric around 0
    (so sums stay away from 0): no ties for max-pool, no kinks under finite differences."""
    n = int(np.prod(shape))
    values = (rng.permutation(n) - n / 2 + 0.37) * spacing
    return values.reshape(shape)


def reference_metrics(logits, target, k=5):
    """Top-1 error, top-k error and confusion matrix (rows: true class), in plain Python: each row's
    classes ranked by score, ties to the lower class index (as argmax breaks them)."""
    classes = logits.shape[1]
    confusion = np.zeros((classes, classes), np.int64)
    top1 = topk = 0
    for row, t in zip(logits.tolist(), target.tolist()):
        ranking = sorted(range(classes), key=lambda j: (-row[j], j))
        confusion[t, ranking[0]] += 1
        top1 += ranking[0] == t
        topk += t in ranking[:k]
    return 1 - top1 / len(target), 1 - topk / len(target), confusion


def raises_naming(error, call, *fragments):
    """``call()`` raises ``error`` whose message contains every one of ``fragments``."""
    try:
        call()
    except error as err:
        for fragment in fragments:
            assert fragment in str(err), f"{fragment!r} not in {str(err)!r}"
        return
    raise AssertionError(f"{call} raised no {error}")
