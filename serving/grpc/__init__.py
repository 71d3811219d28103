"""The v2 inference protocol over gRPC (Triton's ``inference.GRPCInferenceService``, which
``tritonclient.grpc`` speaks): a transport beside ``serving.http`` that translates messages
to and from ``serving.types`` and calls the same data plane. Importing this package loads no
grpc module (``serving.config`` imports its config)."""
