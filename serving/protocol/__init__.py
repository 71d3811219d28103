"""Wire protocol codecs: bytes on the wire to and from the types in ``serving.types``.

No web framework and no Ray here; transports call these and map ``InvalidInput``
(400) through the one error handler.
"""

from serving.protocol.metadata import model_metadata, server_metadata
from serving.protocol.v2 import decode_infer_request, encode_error, encode_infer_response, select_outputs

__all__ = [
    "decode_infer_request",
    "encode_error",
    "encode_infer_response",
    "model_metadata",
    "select_outputs",
    "server_metadata",
]
