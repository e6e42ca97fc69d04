"""Command line: ``python -m localcloud serve|start|stop|status [options]``.

``serve`` runs the server in the foreground; ``start`` runs it in the
background and prints one JSON line; ``stop`` ends it (``--purge`` also
removes its pods, network and state); ``status`` prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from localcloud import config
from localcloud.config import Settings

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is outside 1-65535")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number >= 0")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("the timeout must be > 0")
    return value


def _docker_name(text: str) -> str:
    if not _NAME_RE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid Docker network name")
    return text


def _non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _default_port() -> int:
    raw = os.environ.get(config.ENV_PORT)
    if not raw:
        return config.DEFAULT_PORT
    try:
        return _port(raw)
    except argparse.ArgumentTypeError as exc:
        raise SystemExit(f"localcloud: error: {config.ENV_PORT}: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser (options may follow the subcommand)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        type=Path,
        default=config.default_state_dir(),
        help=f"state directory (default: ${config.ENV_STATE_DIR} or {config.DEFAULT_STATE_DIR} under the cwd)",
    )
    common.add_argument("--host", type=_non_empty, default=config.DEFAULT_HOST, help="address to listen on")
    common.add_argument(
        "--port",
        type=_port,
        default=_default_port(),
        help=f"port to listen on (default: ${config.ENV_PORT} or {config.DEFAULT_PORT})",
    )
    common.add_argument(
        "--backend", choices=("docker", "memory"), default=config.DEFAULT_BACKEND, help="where pods live"
    )
    common.add_argument(
        "--ssh-ready-delay",
        type=_seconds,
        default=config.DEFAULT_SSH_READY_DELAY,
        help="seconds after a pod starts before it is RUNNING with ssh.direct (default: %(default)s)",
    )
    common.add_argument(
        "--pod-image-default",
        type=_non_empty,
        default=config.DEFAULT_POD_IMAGE,
        help="image run when a pod's image (other than runpod/pytorch:*) is not in the local Docker engine "
        "(default: %(default)s)",
    )
    common.add_argument(
        "--pytorch-standin-image",
        type=_non_empty,
        default=config.DEFAULT_PYTORCH_STANDIN_IMAGE,
        help="image run for a runpod/pytorch:* image the engine lacks; without it such pods are refused "
        "(default: %(default)s)",
    )
    common.add_argument(
        "--network",
        type=_docker_name,
        default=os.environ.get("GPUOPS_LOCALCLOUD_NETWORK") or config.DEFAULT_NETWORK,
        help="Docker network of the pods (isolated; global-networking pods also join <network>-global). Two "
        "local clouds that run at the same time each need their own (environment: GPUOPS_LOCALCLOUD_NETWORK; "
        "default: %(default)s)",
    )
    common.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")

    parser = argparse.ArgumentParser(
        prog="python -m localcloud", description="A local stand-in for RunPod's REST API v2 with Docker pods."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{serve,start,stop,status}")
    commands.add_parser("serve", parents=[common], help="run the server in the foreground")
    start = commands.add_parser("start", parents=[common], help="run the server in the background")
    start.add_argument("--timeout", type=_positive_seconds, default=30.0, help="seconds to wait for health")
    stop = commands.add_parser("stop", parents=[common], help="stop the background server")
    stop.add_argument("--purge", action="store_true", help="also remove all pods, their network and the state")
    stop.add_argument("--timeout", type=_positive_seconds, default=15.0, help="seconds to wait before SIGKILL")
    commands.add_parser("status", parents=[common], help="print whether the server runs (JSON)")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """Build Settings from parsed arguments (state dir made absolute)."""
    state_dir = args.state_dir.expanduser().resolve()
    if state_dir.exists() and not state_dir.is_dir():
        raise SystemExit(f"localcloud: error: --state-dir {state_dir} exists and is not a directory")
    return Settings(
        state_dir=state_dir,
        host=args.host,
        port=args.port,
        backend=args.backend,
        ssh_ready_delay=args.ssh_ready_delay,
        pod_image_default=args.pod_image_default,
        pytorch_standin_image=args.pytorch_standin_image,
        network=args.network,
    )


def _serve(settings: Settings, log_level: str) -> int:
    import uvicorn

    from localcloud.api import create_app
    from localcloud.backends import BackendUnavailable
    from localcloud.daemon import remove_server_files, write_server_files
    from localcloud.logs import configure_logging
    from localcloud.store import StateError

    configure_logging(log_level)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    try:
        app = create_app(settings)
    except (BackendUnavailable, StateError) as exc:
        print(f"localcloud: error: {exc}", file=sys.stderr)
        return 1
    write_server_files(settings)
    try:
        server = uvicorn.Server(
            uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, lifespan="on")
        )
        server.run()
        return 0 if server.started else 1
    except SystemExit as exc:  # uvicorn exits this way when it cannot bind
        return int(exc.code or 1)
    finally:
        remove_server_files(settings, os.getpid())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    settings = settings_from(args)
    if args.command == "serve":
        return _serve(settings, args.log_level)

    from localcloud.daemon import DaemonError, server_status, start_daemon, stop_daemon

    try:
        if args.command == "start":
            result = start_daemon(settings, timeout=args.timeout, log_level=args.log_level)
        elif args.command == "stop":
            result = stop_daemon(settings, timeout=args.timeout, purge=args.purge)
        else:
            result = server_status(settings)
    except DaemonError as exc:
        print(f"localcloud: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0
