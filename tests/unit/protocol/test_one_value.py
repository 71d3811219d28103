"""The one-value fast path builds exactly what the general JSON path builds, or steps aside."""

from __future__ import annotations

import math

import pytest

from contracts.errors import InvalidInput
from registry.schema import V2_TO_NUMPY
from serving.protocol.json_data import json_to_array, one_value_array
from serving.protocol.v2 import decode_infer_request

VALUES = [0, 1, -1, 7, 2**31 - 1, 2**31, -2**31 - 1, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, -2**63,
          0.0, -0.0, 1.5, -2.25, 3.4028234663852886e38, 3.5e38, 65504.0, 65520.0, 1e308, -1e308,
          math.inf, -math.inf, math.nan, True, False, "x", "", "héllo", None, [1], {"a": 1}]


@pytest.mark.parametrize("datatype", sorted(V2_TO_NUMPY))
def test_same_array_as_the_general_path_or_none(datatype):
    for value in VALUES:
        fast = one_value_array(value, datatype)
        try:
            general = json_to_array([value], datatype, (1,), "data")
        except (InvalidInput, OverflowError, ValueError, TypeError):
            assert fast is None, (datatype, value)
            continue
        if fast is None:
            continue
        assert fast.dtype == general.dtype and fast.shape == general.shape, (datatype, value)
        assert fast.tolist() == general.tolist() or (fast != fast).all() and (general != general).all()


def test_decoded_request_is_the_same_with_and_without_the_fast_path():
    plain = b'{"inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[42]},' \
            b'{"name":"b","shape":[1],"datatype":"BYTES","data":["x"]}]}'
    general = b'{"inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[42],"parameters":{}},' \
              b'{"name":"b","shape":[1],"datatype":"BYTES","data":["x"],"parameters":{}}]}'
    fast_req = decode_infer_request(plain, model="m", version=None, header_length=None)
    slow_req = decode_infer_request(general, model="m", version=None, header_length=None)
    for f, s in zip(fast_req.inputs, slow_req.inputs):
        assert (f.name, f.datatype, f.shape, f.parameters) == (s.name, s.datatype, s.shape, s.parameters)
        assert f.data.dtype == s.data.dtype and f.data.tolist() == s.data.tolist()


@pytest.mark.parametrize("item, field", [
    (b'{"name":"a","shape":[true],"datatype":"FP64","data":[1.0]}', "inputs[0].shape"),
    (b'{"name":"a","shape":[1],"datatype":"FP32","data":[1e39]}', "inputs[0].data"),
    (b'{"name":"a","shape":[1],"datatype":"INT8","data":[300]}', "inputs[0].data"),
    (b'{"name":"a","shape":[1],"datatype":"FP64","data":[true]}', "inputs[0].data"),
    (b'{"name":"","shape":[1],"datatype":"FP64","data":[1.0]}', "inputs[0].name"),
    (b'{"name":"a","shape":[1],"datatype":["FP64"],"data":[1.0]}', "inputs[0].datatype"),
    (b'{"name":"a","shape":[2],"datatype":"FP64","data":[1.0]}', "inputs[0].data"),
])
def test_what_the_fast_path_refuses_gets_the_general_error(item, field):
    with pytest.raises(InvalidInput) as err:
        decode_infer_request(b'{"inputs":[' + item + b']}', model="m", version=None, header_length=None)
    assert field in str(err.value)
