"""The njit-compiled building blocks, for use inside a user's own ``@njit`` code.

All take and return plain numbers and arrays, allocate nothing (except
``quantile_edges_sorted``, which returns the edges) and release the GIL.
Samples passed to the ``*_sorted`` functions must be sorted and finite
(``kernels.finite_sorted`` prepares one); count arrays are int64.
``radix_sort(values, scratch)`` sorts float64 in place like ``np.sort`` (NaN
last) with a uint64 ``scratch`` of the same size, at a speed that does not depend
on the SIMD sort numpy dispatches; ``sort_finite`` is the same without NaN (and
returns the sum).  The two sorts allocate their small digit counts.

>>> from numba import njit, prange
>>> @njit(parallel=True)
... def ks_all(ref, cur, out):  # 2-D, one sorted finite row per feature
...     for f in prange(ref.shape[0]):
...         d = ks_statistic_sorted(ref[f], cur[f])
...         out[f] = ks_pvalue(d, ref.shape[1], cur.shape[1])
"""

from ._binned import js_from_counts, psi_from_counts
from ._categorical import chi2_from_counts, code_counts
from ._histogram import bin_counts
from ._kolmogorov import kolmogorov_sf
from ._numeric import (
    bin_counts_sorted,
    copy_finite,
    ks_statistic_sorted,
    mean_std_sorted,
    quantile_edges_sorted,
    wasserstein_sorted,
)
from ._pvalues import chi2_sf, ks_pvalue
from ._sort import radix_sort, sort_finite

__all__ = [
    "bin_counts",
    "bin_counts_sorted",
    "chi2_from_counts",
    "chi2_sf",
    "code_counts",
    "copy_finite",
    "js_from_counts",
    "kolmogorov_sf",
    "ks_pvalue",
    "ks_statistic_sorted",
    "mean_std_sorted",
    "psi_from_counts",
    "quantile_edges_sorted",
    "radix_sort",
    "sort_finite",
    "wasserstein_sorted",
]
