"""Uncertainty in a study's report: the seeds of one configuration together, and which differences are real.

    groups = configuration_stats(table)    # table: report.summarise's rows (with "seed" and "test_images")
    lines = uncertainty_section(groups)    # markdown for report.md; groups also go to configurations.csv

Two kinds of noise move a final test error:

- the **seed** (initial weights, batch order, augmentation, dropout): the runs ``<name>-s<seed>`` of one
  configuration (zoo/studies/spec.py) give its mean and sample standard deviation (n - 1 in the denominator);
- the **test set**: an error measured on n images is a binomial proportion; its 95 % interval here is the
  Wilson score interval on n = the test-set size (the images counted in the run's confusion_matrix.csv),
  computed at the configuration's mean error. It says how far another draw of n test images could move it.

Configurations are compared only with those of the same model on the same data set (a study's *part*: an
ablation against its own baseline, never VGG-16 on CIFAR-10 against LeNet-5 on MNIST).
A configuration is **distinguishable from the best** (its part's lowest mean error) when both noises are smaller
than the gap: its Wilson interval does not overlap the best's AND the gap exceeds twice the larger of the two
seed standard deviations (with one seed per configuration only the first test applies, and the report says
so). Non-overlapping 95 % intervals is a conservative test: "no" means "not shown", not "equal".
"""
import math
import re

Z95 = 1.959963984540054          # the two-sided 95 % quantile of the standard normal


def wilson(error, n, z=Z95):
    """The Wilson score interval (lo, hi) of a proportion ``error`` measured on ``n`` trials."""
    if n <= 0:
        return None, None
    centre = (error + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(error * (1 - error) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_std(values):
    """(mean, sample standard deviation) of ``values``; the deviation is None for a single value."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def configuration(run, seed):
    """The configuration a run belongs to: its name without the '-s<seed>' the seed expansion appended."""
    if seed is not None and re.fullmatch(rf".+-s{int(seed)}", run):
        return run[:-len(f"-s{int(seed)}")]
    return run


def part(row):
    """The part of a study a run belongs to: its model and data set (None for both in a bare table)."""
    return row.get("model"), row.get("dataset")


def configuration_stats(table):
    """One dict per configuration with a final result, in table order: configuration, seeds, runs,
    mean_top1_err, std_top1_err, test_images, wilson_lo, wilson_hi, and ``vs_best``: compared with the best
    of its own part (see the docstring)."""
    groups = {}
    for row in table:     # finished runs only: an incomplete run's last epoch is not its final error
        if row.get("final_top1_err") is not None and str(row.get("status", "done")).startswith("done"):
            groups.setdefault(configuration(row["run"], row.get("seed")), []).append(row)
    stats = []
    for name, rows in groups.items():
        mean, std = mean_std([r["final_top1_err"] for r in rows])
        n = min(r.get("test_images") or 0 for r in rows)
        lo, hi = wilson(mean, n)
        stats.append({"configuration": name, "seeds": " ".join(str(r.get("seed")) for r in rows), "runs": len(rows),
                      "mean_top1_err": mean, "std_top1_err": std, "test_images": n, "wilson_lo": lo,
                      "wilson_hi": hi, "part": part(rows[0])})
    best = {}                     # part -> its configuration with the lowest mean error
    for s in stats:
        if s["part"] not in best or s["mean_top1_err"] < best[s["part"]]["mean_top1_err"]:
            best[s["part"]] = s
    for s in stats:
        b = best[s["part"]]
        s["vs_best"] = "best" if s is b else ("yes" if distinguishable(s, b) else "no")
    return stats


def distinguishable(a, b):
    """True when the gap between ``a`` and ``b``'s mean errors exceeds both noises (the module docstring)."""
    if None in (a["wilson_lo"], b["wilson_lo"]):
        return False
    apart = a["wilson_lo"] > b["wilson_hi"] or b["wilson_lo"] > a["wilson_hi"]
    spread = max(s["std_top1_err"] or 0.0 for s in (a, b))
    return apart and abs(a["mean_top1_err"] - b["mean_top1_err"]) > 2 * spread


def _pct(value):
    return "–" if value is None else f"{100 * value:.2f}"


def uncertainty_section(stats, pairs_up_to=12):
    """Markdown lines: a table of the configurations and the pairs whose difference exceeds the noise."""
    if not stats:
        return []
    one_seed = all(s["runs"] == 1 for s in stats)
    lines = ["## Uncertainty", "",
             "Final test top-1 error per configuration (finished runs): mean ± sample standard deviation over its "
             "seeds (runs `<name>-s<seed>`), and the 95 % Wilson score interval of a binomial proportion on the "
             "test-set size (test-set sampling noise, at the mean). *Distinguishable from the best*: the Wilson "
             "intervals do not overlap and the gap exceeds twice the larger seed standard deviation "
             "(zoo/studies/stats.py). Each configuration is compared only with those of the same model and data set."
             + (" Every configuration has one seed here, so only the test-set noise is judged." if one_seed else ""),
             "",
             "| configuration | seeds | final top-1 err (%) | 95 % Wilson interval (%) | test images "
             "| distinguishable from the best? |", "|---|---|---|---|---|---|"]
    for s in stats:
        spread = f" ± {_pct(s['std_top1_err'])}" if s["std_top1_err"] is not None else ""
        lines.append(f"| {s['configuration']} | {s['seeds']} | {_pct(s['mean_top1_err'])}{spread} "
                     f"| {_pct(s['wilson_lo'])}–{_pct(s['wilson_hi'])} | {s['test_images']:,} | {s['vs_best']} |")
    if 1 < len(stats) <= pairs_up_to:
        ordered = sorted(stats, key=lambda s: s["mean_top1_err"])
        pairs = [f"{a['configuration']} < {b['configuration']}" for i, a in enumerate(ordered)
                 for b in ordered[i + 1:] if a["part"] == b["part"] and distinguishable(a, b)]
        lines += ["", "Differences that exceed both noises: " + ("; ".join(pairs) if pairs else "none") + "."]
    return lines
