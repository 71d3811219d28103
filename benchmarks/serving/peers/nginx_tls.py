"""mlgate's gateway without Ray (``mlgate_noray.py``, plain HTTP on a private port) behind
nginx terminating TLS on ``--port``: the usual deployment that mlgate's own TLS
(``serving.tls``) is compared with. Both run as children of this process, in its session,
so the harness counts their CPU and stops them by this PID.

nginx (Debian's package) gets a config of its own under ``--dir`` (with its pid file, error
log and temporary paths; no access log), never ``/etc/nginx``: one worker, TLS 1.2/1.3 with
the given certificate, HTTP/1.1 with keep-alive to the gateway (``proxy_http_version 1.1``,
an upstream ``keepalive`` pool) and keep-alive to clients without a per-connection request
cap, so under a keep-alive load each side pays its handshake once per connection.

    MLGATE_REGISTRY_ROOT=REG python benchmarks/serving/peers/nginx_tls.py --port 8443 --upstream-port 8300 \\
        --dir /tmp/ngx --cert-file server.crt --key-file server.key

Stops both on SIGTERM/SIGINT (nginx with SIGQUIT: finish open requests); exits when either
one exits.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

NGINX = "/usr/sbin/nginx"
CONFIG = """\
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  client_max_body_size 64m;
  keepalive_timeout 75s;
  keepalive_requests 100000000;
  upstream mlgate {{
    server 127.0.0.1:{upstream_port};
    keepalive 256;
    keepalive_requests 100000000;
  }}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert_file};
    ssl_certificate_key {key_file};
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {{
      proxy_pass http://mlgate;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }}
  }}
}}
"""


def write_config(directory: Path, port: int, upstream_port: int, cert_file: str, key_file: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "nginx.conf"
    path.write_text(CONFIG.format(dir=directory, port=port, upstream_port=upstream_port, cert_file=cert_file,
                                  key_file=key_file))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="nginx's TLS port")
    parser.add_argument("--upstream-port", type=int, required=True, help="the gateway's plain HTTP port")
    parser.add_argument("--dir", type=Path, required=True, help="nginx's config, pid file and logs")
    parser.add_argument("--cert-file", required=True)
    parser.add_argument("--key-file", required=True)
    args = parser.parse_args(argv)
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin") or NGINX
    directory = args.dir.resolve()
    config = write_config(directory, args.port, args.upstream_port, args.cert_file, args.key_file)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    gateway = subprocess.Popen([sys.executable, str(Path(__file__).with_name("mlgate_noray.py")),
                                "--port", str(args.upstream_port)])
    proxy = subprocess.Popen([nginx, "-p", str(directory), "-c", str(config), "-e", str(directory / "error.log")])
    print(f"nginx {proxy.pid} on 127.0.0.1:{args.port} (TLS) in front of the gateway {gateway.pid} on "
          f"127.0.0.1:{args.upstream_port}; config {config}", flush=True)
    try:
        while not stop.wait(0.5):
            if gateway.poll() is not None or proxy.poll() is not None:
                print(f"exited: gateway {gateway.returncode}, nginx {proxy.returncode}; "
                      f"nginx's log: {_tail(directory / 'error.log')}", flush=True)
                return 1
        return 0
    finally:
        _stop(proxy, signal.SIGQUIT)
        _stop(gateway, signal.SIGTERM)


def _stop(proc: subprocess.Popen, sig: int, grace_s: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail(path: Path) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-4:])
    except OSError:
        return "(none)"


if __name__ == "__main__":
    sys.exit(main())
