"""Two 8-wide vector kernels written as LLVM IR, callable from njit code.

numba's auto-vectoriser leaves both of these scalar or 4-wide with extra ops
(an 8-lane step that mixes counts and sums; a compare-and-count loop whose
accumulators it keeps in 64-bit lanes of 256-bit registers), so they are spelt
out as ``<8 x double>`` operations; LLVM maps them onto AVX-512 (compares into
mask registers, masked adds) where the CPU has it, and onto narrower vectors
elsewhere.  Arrays must be 1-D, C-contiguous float64 (int64 for counts).

* :func:`run_chunk` is one step of the KS/Wasserstein walk (``_merge``);
* :func:`count_le_block` is the streaming histogram's inner loop (``_histogram``).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_LANES = 8
#: Most probes :func:`count_le_block` compares in one pass.
MAX_PROBES = 16
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_F64X = ir.VectorType(ir.DoubleType(), _LANES)
_I64X = ir.VectorType(_I64, _LANES)


def _is_array(arr, dtype) -> bool:
    return (
        isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C" and arr.dtype == dtype
    )


def _index(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    return builder.sext(value, _I64) if value.type.width < 64 else value


def _vector_at(context, builder, arrty, arr, index, vec=_F64X) -> ir.Value:
    """Pointer to ``arr[index : index + 8]`` as one vector."""
    array = context.make_array(arrty)(context, builder, arr)
    return builder.bitcast(builder.gep(array.data, [_index(builder, index)]), vec.as_pointer())


def _splat(builder: ir.IRBuilder, value: ir.Value, vec=_F64X) -> ir.Value:
    one = builder.insert_element(ir.Constant(vec, ir.Undefined), value, _I32(0))
    return builder.shuffle_vector(one, one, ir.Constant(ir.VectorType(_I32, _LANES), [0] * _LANES))


def _tree_add(builder: ir.IRBuilder, x: ir.Value, add) -> ir.Value:
    """Lanes 0-3 + 4-7, then pairs: a fixed order, so the result is compiler-independent."""
    width = _LANES
    while width > 1:
        half = width // 2
        lanes = ir.VectorType(_I32, half)
        low = builder.shuffle_vector(x, x, ir.Constant(lanes, list(range(half))))
        high = builder.shuffle_vector(x, x, ir.Constant(lanes, list(range(half, width))))
        x = add(low, high)
        width = half
    return builder.extract_element(x, _I32(0))


def _count(builder: ir.IRBuilder, mask: ir.Value) -> ir.Value:
    i8 = ir.IntType(_LANES)
    ctpop = builder.module.declare_intrinsic("llvm.ctpop", [i8])
    return builder.zext(builder.call(ctpop, [builder.bitcast(mask, i8)]), _I64)


@intrinsic
def run_chunk(typingctx, arr, pos, w, sign, shift, acc, at):
    """Count ``x = arr[pos:pos+8]`` against ``w``; add the gaps of ``x < w`` to ``acc``.

    Returns ``(#(x < w), #(x <= w))``.  For the lanes with ``x < w`` it adds
    ``fma(x, sign, shift)`` (one rounding: ``w - x`` for ``sign=-1, shift=w``,
    ``x - v`` for ``sign=1, shift=-v``) to ``acc[at : at + 8]``, lane by lane.
    The caller guarantees that the 8 values exist.
    """
    f8 = types.float64
    ok = _is_array(arr, f8) and _is_array(acc, f8)
    if not (ok and isinstance(pos, types.Integer) and isinstance(at, types.Integer)):
        return None
    sig = types.UniTuple(types.int64, 2)(arr, pos, f8, f8, f8, acc, at)

    def codegen(context, builder, signature, args):
        arr_v, pos_v, w_v, sign_v, shift_v, acc_v, at_v = args
        x = builder.load(_vector_at(context, builder, signature.args[0], arr_v, pos_v), align=8)
        w_s = _splat(builder, w_v)
        below = builder.fcmp_ordered("<", x, w_s)
        at_most = builder.fcmp_ordered("<=", x, w_s)
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_F64X, [_F64X] * 3), f"llvm.fma.v{_LANES}f64"
        )
        gap = builder.call(fma, [x, _splat(builder, sign_v), _splat(builder, shift_v)])
        where = _vector_at(context, builder, signature.args[5], acc_v, at_v)
        total = builder.load(where, align=8)
        total = builder.fadd(total, builder.select(below, gap, ir.Constant(_F64X, [0.0] * _LANES)))
        builder.store(total, where, align=8)
        counts = (_count(builder, below), _count(builder, at_most))
        return context.make_tuple(builder, signature.return_type, counts)

    return sig, codegen


def _count_loop(context, builder, sig, args, n_probes: int) -> ir.Value:
    """The :func:`count_le_block` loop for exactly ``n_probes`` probes; returns the sum.

    Each compare's 8-lane mask is counted one of two ways: a popcount into a
    scalar accumulator (mask move, popcount, add: scalar ports) for two probes in
    three, and for every third probe a subtract of the mask as 0 / -1 lanes from
    eight int64 counts (vector ports).  Either way alone is bound by one resource
    at about one probe per cycle on AMD Zen 4 (the mask moves, or the vector
    ports); mixed they overlap: 20% faster there (measured 24.3 -> 19.8 us for
    9 edges x 50,000 values; not measured on Intel).
    """
    x_arr, start, stop, probes_arr, _, counts_arr = args
    probes = context.make_array(sig.args[3])(context, builder, probes_arr)
    splats = [
        _splat(builder, builder.load(builder.gep(probes.data, [_I64(j)]))) for j in range(n_probes)
    ]
    lanes = [j % 3 == 0 for j in range(n_probes)]  # True: counted in vector lanes
    zeros = ir.Constant(_I64X, [0] * _LANES)
    accs = [cgutils.alloca_once_value(builder, zeros if v else _I64(0)) for v in lanes]
    total = cgutils.alloca_once_value(builder, ir.Constant(_F64X, [0.0] * _LANES))
    bounds = _index(builder, start), _index(builder, stop), _I64(_LANES)
    with cgutils.for_range_slice(builder, *bounds) as (i, _):
        x = builder.load(_vector_at(context, builder, sig.args[0], x_arr, i), align=8)
        for acc, p, v in zip(accs, splats, lanes):
            below = builder.fcmp_ordered("<=", x, p)
            if v:
                builder.store(builder.sub(builder.load(acc), builder.sext(below, _I64X)), acc)
            else:
                builder.store(builder.add(builder.load(acc), _count(builder, below)), acc)
        builder.store(builder.fadd(builder.load(total), x), total)
    counts = context.make_array(sig.args[5])(context, builder, counts_arr)
    for j, acc in enumerate(accs):
        where = builder.gep(counts.data, [_I64(j)])
        hits = _tree_add(builder, builder.load(acc), builder.add) if lanes[j] else builder.load(acc)
        builder.store(builder.add(builder.load(where), hits), where)
    return _tree_add(builder, builder.load(total), builder.fadd)


@intrinsic
def count_le_block(typingctx, x, start, stop, probes, n_probes, counts):
    """``counts[j] += #(x[start:stop] <= probes[j])`` for ``j < n_probes``; ``sum(x[start:stop])``.

    ``stop - start`` must be a multiple of 8 and ``1 <= n_probes <= MAX_PROBES``
    (one vector loop is generated per probe count and picked at run time).  The
    sum is NaN or infinite when the values hold NaN or +-inf (or overflow).
    """
    f8, ints = types.float64, (start, stop, n_probes)
    if not (_is_array(x, f8) and _is_array(probes, f8) and _is_array(counts, types.int64)):
        return None
    if not all(isinstance(t, types.Integer) for t in ints):
        return None
    sig = f8(x, start, stop, probes, n_probes, counts)

    def codegen(context, builder, signature, args):
        done = builder.append_basic_block("count_le.done")
        switch = builder.switch(_index(builder, args[4]), done)
        results = []
        for n in range(1, MAX_PROBES + 1):
            block = builder.append_basic_block(f"count_le.{n}")
            switch.add_case(_I64(n), block)
            builder.position_at_end(block)
            results.append((_count_loop(context, builder, signature, args, n), builder.block))
            builder.branch(done)
        builder.position_at_end(done)
        phi = builder.phi(ir.DoubleType())
        phi.add_incoming(ir.Constant(ir.DoubleType(), float("nan")), switch.parent)
        for value, block in results:
            phi.add_incoming(value, block)
        return phi

    return sig, codegen
