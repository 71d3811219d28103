"""``run_chunk(arr, pos, v, w)``: one 8-wide vector step of the KS/Wasserstein walk.

Over ``x = arr[pos : pos + 8]`` (a C-contiguous float64 array; the caller
guarantees the 8 values exist) it returns, in one vector compare each,

* ``#(x < w)`` and ``#(x <= w)``,
* ``sum(w - x)`` and ``sum(x - v)`` over the values ``x < w`` (others add 0.0),

the sums added as a fixed tree (lanes 0-3 + 4-7, then pairs), so the result
does not depend on the compiler.  Written as LLVM vector IR because numba's
auto-vectoriser leaves this 8-lane, mixed int/float step scalar.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_LANES = 8
_I32 = ir.IntType(32)


def _splat(builder: ir.IRBuilder, value: ir.Value, vec: ir.VectorType) -> ir.Value:
    one = builder.insert_element(ir.Constant(vec, ir.Undefined), value, _I32(0))
    return builder.shuffle_vector(one, one, ir.Constant(ir.VectorType(_I32, _LANES), [0] * _LANES))


def _tree_sum(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    width = _LANES
    while width > 1:
        half = width // 2
        low = builder.shuffle_vector(x, x, ir.Constant(ir.VectorType(_I32, half), list(range(half))))
        high = builder.shuffle_vector(
            x, x, ir.Constant(ir.VectorType(_I32, half), list(range(half, width)))
        )
        x = builder.fadd(low, high)
        width = half
    return builder.extract_element(x, _I32(0))


def _count(builder: ir.IRBuilder, mask: ir.Value) -> ir.Value:
    i8 = ir.IntType(_LANES)
    ctpop = builder.module.declare_intrinsic("llvm.ctpop", [i8])
    return builder.zext(builder.call(ctpop, [builder.bitcast(mask, i8)]), ir.IntType(64))


def _args_ok(arr, pos) -> bool:
    return (
        isinstance(arr, types.Array)
        and arr.ndim == 1
        and arr.layout == "C"
        and arr.dtype == types.float64
        and isinstance(pos, types.Integer)
    )


def _load8(context, builder, arrty, arr, pos) -> ir.Value:
    """``arr[pos : pos + 8]`` as one ``<8 x double>`` (unaligned load)."""
    array = context.make_array(arrty)(context, builder, arr)
    vec = ir.VectorType(ir.DoubleType(), _LANES)
    index = builder.sext(pos, ir.IntType(64)) if pos.type.width < 64 else pos
    return builder.load(builder.bitcast(builder.gep(array.data, [index]), vec.as_pointer()), align=8)


@intrinsic
def run_chunk(typingctx, arr, pos, w, sign, shift, acc, at):
    """Count ``x = arr[pos:pos+8]`` against ``w``; add the gaps of ``x < w`` to ``acc``.

    Returns ``(#(x < w), #(x <= w))``.  For the lanes with ``x < w`` it adds
    ``fma(x, sign, shift)`` (one rounding: ``w - x`` for ``sign=-1, shift=w``,
    ``x - v`` for ``sign=1, shift=-v``) to ``acc[at : at + 8]``, lane by lane.
    """
    if not (_args_ok(arr, pos) and _args_ok(acc, at)):
        return None
    f8 = types.float64
    sig = types.UniTuple(types.int64, 2)(arr, pos, f8, f8, f8, acc, at)

    def codegen(context, builder, signature, args):
        vec = ir.VectorType(ir.DoubleType(), _LANES)
        x = _load8(context, builder, signature.args[0], args[0], args[1])
        w_s = _splat(builder, args[2], vec)
        below = builder.fcmp_ordered("<", x, w_s)
        at_most = builder.fcmp_ordered("<=", x, w_s)
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vec, [vec] * 3), f"llvm.fma.v{_LANES}f64"
        )
        gap = builder.call(fma, [x, _splat(builder, args[3], vec), _splat(builder, args[4], vec)])
        total = _load8(context, builder, signature.args[5], args[5], args[6])
        total = builder.fadd(total, builder.select(below, gap, ir.Constant(vec, [0.0] * _LANES)))
        array = context.make_array(signature.args[5])(context, builder, args[5])
        index = builder.sext(args[6], ir.IntType(64)) if args[6].type.width < 64 else args[6]
        builder.store(total, builder.bitcast(builder.gep(array.data, [index]), vec.as_pointer()), align=8)
        counts = (_count(builder, below), _count(builder, at_most))
        return context.make_tuple(builder, signature.return_type, counts)

    return sig, codegen
