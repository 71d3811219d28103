"""``prefetch(arr, i)``: an LLVM prefetch hint for ``arr[i]``, callable from njit code.

The merge kernel advances its indices data-dependently, so the hardware
prefetcher sees its streams late and the walk stalls on the last-level cache;
a hint a few cache lines ahead hides that latency.  A prefetch never faults,
so the index may run past the end of the array.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_READ, _KEEP_IN_ALL_LEVELS, _DATA_CACHE = 0, 3, 1


@intrinsic
def prefetch(typingctx, arr, index):
    """Hint the CPU to load the cache line holding ``arr[index]`` (1-D arrays)."""
    if not isinstance(arr, types.Array) or arr.ndim != 1 or not isinstance(index, types.Integer):
        return None
    sig = types.void(arr, index)

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        offset = builder.mul(args[1], cgutils.unpack_tuple(builder, array.strides)[0])
        byte_ptr = builder.bitcast(array.data, ir.IntType(8).as_pointer())
        address = builder.gep(byte_ptr, [offset])
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [address.type, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", [address.type], fnty)
        builder.call(fn, [address, i32(_READ), i32(_KEEP_IN_ALL_LEVELS), i32(_DATA_CACHE)])
        return context.get_dummy_value()

    return sig, codegen
