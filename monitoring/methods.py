"""Which statistic decides whether a feature drifted: the method rule.

The rule, first match wins:

1. ``drift.methods[feature]``, when it applies to the feature's kind;
2. ``drift.numeric_method`` / ``drift.categorical_method``, unless ``auto``;
3. ``auto``: a statistical test while the effective sample size
   ``n_ref * n_cur / (n_ref + n_cur)`` is at most ``drift.large_sample_rows`` --
   two-sample Kolmogorov-Smirnov for numeric features, chi-squared on category counts
   for categorical ones -- and a distance above that size, where a test flags
   differences too small to matter: the Wasserstein distance normalised by the
   reference standard deviation (numeric) or the Jensen-Shannon distance
   (categorical), against ``drift.thresholds``.

Tests decide on p-values corrected across the features of a window
(``drift.correction``) at ``drift.alpha``; distances on their threshold. ``n`` counts
non-missing values only.
"""

from __future__ import annotations

from monitoring.config import DriftConfig

TESTS = {"ks": ("ks_statistic", "ks_pvalue"), "chi2": ("chi2", "chi2_pvalue")}
DISTANCES = ("wasserstein_norm", "psi", "jensen_shannon")
APPLIES = {
    "numeric": ("ks", "wasserstein_norm", "psi", "jensen_shannon"),
    "categorical": ("chi2", "psi", "jensen_shannon"),
}
AUTO = {"numeric": ("ks", "wasserstein_norm"), "categorical": ("chi2", "jensen_shannon")}


def effective_n(n_ref: float, n_cur: float) -> float:
    total = n_ref + n_cur
    return n_ref * n_cur / total if total > 0 else 0.0


def choose(feature: str, kind: str, n_ref: float, n_cur: float, cfg: DriftConfig) -> tuple[str, str]:
    """``(method, why)`` for one feature of one window."""
    override = cfg.methods.get(feature)
    if override is not None and override in APPLIES[kind]:
        return override, f"drift.methods[{feature}]"
    setting = cfg.numeric_method if kind == "numeric" else cfg.categorical_method
    if setting != "auto":
        return setting, f"drift.{kind}_method"
    n_eff = effective_n(n_ref, n_cur)
    test, distance = AUTO[kind]
    if n_eff <= cfg.large_sample_rows:
        return test, f"auto: effective n {n_eff:.0f} <= {cfg.large_sample_rows}"
    return distance, f"auto: effective n {n_eff:.0f} > {cfg.large_sample_rows}"


def statistic_of(method: str) -> str:
    """The kernel statistic a method reports as its value."""
    return TESTS[method][0] if method in TESTS else method


def is_test(method: str) -> bool:
    return method in TESTS


def threshold_of(method: str, cfg: DriftConfig) -> float:
    """alpha for tests (on the corrected p-value), the distance threshold otherwise."""
    if is_test(method):
        return cfg.alpha
    if method not in cfg.thresholds:
        raise ValueError(f"drift.thresholds: no threshold for method {method!r}")
    return cfg.thresholds[method]
