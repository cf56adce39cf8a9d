"""Numba kernels of the regressions' dense algebra, imported only when one is needed.

Importing Numba costs ~0.5-1 s and compiling a kernel the first time (empty on-disk cache)
~0.3-1 s; small problems never pay either: :mod:`bayesmle.models.design` calls these kernels
only above the sizes from which OpenBLAS would run the same product on several threads (whose
synchronisation, on a busy machine, costs 10-100x the product), and the proximal Newton step
of :mod:`bayesmle.inference.optimize` imports its coordinate-descent kernel on first use.
Every kernel is cached on disk (``cache=True``).
"""

from __future__ import annotations

import numba
import numpy as np

#: Reassociated sums (SIMD) in the dot products; NaN and inf keep their IEEE meaning.
_FAST = {"reassoc", "contract"}


@numba.njit(cache=True, error_model="numpy", fastmath=_FAST)
def cholesky_kernel(a):  # pragma: no cover - Numba
    n = a.shape[0]
    low = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            s = 0.0
            for k in range(j):
                s += low[i, k] * low[j, k]
            s = a[i, j] - s
            if i == j:
                if not s > 0.0:
                    return low.T.copy(), False
                low[i, i] = np.sqrt(s)
            else:
                low[i, j] = s / low[j, j]
    return low.T.copy(), True


@numba.njit(cache=True, error_model="numpy", fastmath=_FAST)
def tri_inv_kernel(r):  # pragma: no cover - Numba
    n = r.shape[0]
    x = np.zeros((n, n))
    row = np.zeros(n)
    for i in range(n - 1, -1, -1):  # row i of R^-1 from the rows below it
        row[:] = 0.0
        row[i] = 1.0
        for k in range(i + 1, n):
            rik = r[i, k]
            if rik != 0.0:
                for j in range(k, n):
                    row[j] -= rik * x[k, j]
        inv = 1.0 / r[i, i]
        for j in range(i, n):
            x[i, j] = row[j] * inv
    return x


@numba.njit(cache=True, error_model="numpy")
def tri_gram_kernel(r):  # pragma: no cover - Numba
    n = r.shape[0]
    g = np.zeros((n, n))
    for k in range(n):
        for i in range(k, n):
            rki = r[k, i]
            if rki != 0.0:
                for j in range(i, n):
                    g[i, j] += rki * r[k, j]
    for i in range(n):
        for j in range(i):
            g[i, j] = g[j, i]
    return g


@numba.njit(cache=True, error_model="numpy", fastmath=_FAST)
def matvec_kernel(a, v, transpose):  # pragma: no cover - Numba
    m, n = a.shape
    if transpose:
        out = np.zeros(n)
        for i in range(m):
            vi = v[i]
            if vi != 0.0:
                for j in range(n):
                    out[j] += a[i, j] * vi
        return out
    out = np.zeros(m)
    for i in range(m):
        s = 0.0
        for j in range(n):
            s += a[i, j] * v[j]
        out[i] = s
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=_FAST)
def matmul_kernel(a, b):  # pragma: no cover - Numba
    m, k = a.shape
    n = b.shape[1]
    out = np.zeros((m, n))
    for i in range(m):
        row = out[i]
        for t in range(k):
            ait = a[i, t]
            if ait != 0.0:
                bt = b[t]
                for j in range(n):
                    row[j] += ait * bt[j]
    return out


@numba.njit(cache=True, error_model="numpy", fastmath=_FAST)
def gram_kernel(x, rows):  # pragma: no cover - Numba
    n, d = x.shape
    g = np.zeros((d, d))
    buf = np.empty((d, rows))
    for start in range(0, n, rows):
        m = min(rows, n - start)
        for i in range(m):  # the block, transposed: contiguous columns for the dot products
            for j in range(d):
                buf[j, i] = x[start + i, j]
        for j in range(d):
            bj = buf[j]
            for k in range(j, d):
                bk = buf[k]
                acc = 0.0
                for i in range(m):
                    acc += bj[i] * bk[i]
                g[j, k] += acc
    for j in range(d):
        for k in range(j):
            g[j, k] = g[k, j]
    return g


@numba.njit(cache=True, error_model="numpy")
def cd_kernel(x, g, h, pen, center, weight, tol, max_sweeps):  # pragma: no cover - Numba
    n = x.size
    w = x.copy()
    r = np.zeros(n)  # h @ (w - x)
    active = np.ones(n, dtype=np.bool_)
    full_sweep = True
    for _ in range(max_sweeps):
        biggest = 0.0
        for j in range(n):
            if not (full_sweep or active[j]):
                continue
            a = h[j, j]
            target = w[j] - (g[j] + r[j]) / a
            if pen[j]:
                u = target - center[j]
                lam = weight[j] / a
                if u > lam:
                    new = center[j] + u - lam
                elif u < -lam:
                    new = center[j] + u + lam
                else:
                    new = center[j]
            else:
                new = target
            delta = new - w[j]
            if delta != 0.0:
                for i in range(n):
                    r[i] += h[i, j] * delta
                w[j] = new
                step = abs(delta) * np.sqrt(a)
                if step > biggest:
                    biggest = step
        for j in range(n):
            active[j] = (not pen[j]) or w[j] != center[j]
        if biggest <= tol:
            if full_sweep:
                break
            full_sweep = True
        else:
            full_sweep = biggest > 1e3 * tol and full_sweep
    return w
