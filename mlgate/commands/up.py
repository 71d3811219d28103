"""``mlgate up``."""

from __future__ import annotations

import argparse

from mlgate.commands import config_of


def _up(args: argparse.Namespace) -> int:
    from mlgate import up

    cfg = config_of(args, **{"serving.host": args.host, "serving.port": args.port, "ray.address": args.address,
                             "serving.grpc.port": args.grpc_port,
                             "serving.tls.cert_file": args.tls_cert, "serving.tls.key_file": args.tls_key,
                             "serving.tls.client_ca_file": args.tls_client_ca})
    return up.run(cfg, up.admin_config(cfg, args.admin_port, enabled=not args.no_admin))


def register(sub) -> None:
    p = sub.add_parser("up", help="serve the registry's models on Ray Serve (HTTP and gRPC) until Ctrl-C",
                       description="Start Ray locally (or join --address), make sure the demo model "
                                   "exists, deploy the gateway and serve until SIGINT/SIGTERM.")
    p.add_argument("--host", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="HTTP port (default 8000)")
    p.add_argument("--grpc-port", type=int, help="gRPC port of the v2 protocol, for tritonclient.grpc (default 8001; "
                   "serving.grpc.port; serving.grpc.enabled: false turns it off)")
    p.add_argument("--config", default=argparse.SUPPRESS, help="YAML config file")
    p.add_argument("--address", help="Ray cluster address ('auto' or host:port); default: start Ray locally")
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this PEM certificate chain "
                   "(serving.tls.cert_file; re-read when it changes)")
    p.add_argument("--tls-key", metavar="FILE", help="the PEM private key of --tls-cert (serving.tls.key_file)")
    p.add_argument("--tls-client-ca", metavar="FILE", help="require client certificates signed by this CA "
                   "(mutual TLS; serving.tls.client_ca_file)")
    p.add_argument("--admin-port", type=int, help="port of the admin API (default 8090; serving.admin.port)")
    p.add_argument("--no-admin", action="store_true", help="do not start the admin API")
    p.set_defaults(fn=_up)
