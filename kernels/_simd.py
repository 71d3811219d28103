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


@intrinsic
def run_chunk(typingctx, arr, pos, v, w):
    """``(#x < w, #x <= w, sum(w - x | x < w), sum(x - v | x < w))`` for ``x = arr[pos:pos+8]``."""
    if not (
        isinstance(arr, types.Array)
        and arr.ndim == 1
        and arr.layout == "C"
        and arr.dtype == types.float64
        and isinstance(pos, types.Integer)
    ):
        return None
    sig = types.Tuple((types.int64, types.int64, types.float64, types.float64))(
        arr, pos, types.float64, types.float64
    )

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        vec = ir.VectorType(ir.DoubleType(), _LANES)
        index = builder.sext(args[1], ir.IntType(64)) if args[1].type.width < 64 else args[1]
        address = builder.bitcast(builder.gep(array.data, [index]), vec.as_pointer())
        x = builder.load(address, align=8)
        v_s, w_s = _splat(builder, args[2], vec), _splat(builder, args[3], vec)
        below = builder.fcmp_ordered("<", x, w_s)
        at_most = builder.fcmp_ordered("<=", x, w_s)
        zero = ir.Constant(vec, [0.0] * _LANES)
        hi = builder.select(below, builder.fsub(w_s, x), zero)
        lo = builder.select(below, builder.fsub(x, v_s), zero)
        values = (_count(builder, below), _count(builder, at_most))
        values += (_tree_sum(builder, hi), _tree_sum(builder, lo))
        return context.make_tuple(builder, signature.return_type, values)

    return sig, codegen
