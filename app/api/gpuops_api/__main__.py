"""Run the API: python -m gpuops_api (configuration file named by GPUOPS_API_CONFIG)."""

from __future__ import annotations

import logging
import sys

import uvicorn

from .app import create_app
from .config import ConfigError, load_settings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per upstream request or SSH handshake is noise; their failures reach our own log.
    for noisy in ("httpx", "paramiko"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        settings = load_settings()
        app = create_app(settings)
    except ConfigError as err:
        print(f"gpuops-api: {err}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=settings.listen_host, port=settings.listen_port, proxy_headers=False,
                server_header=False, date_header=True, log_config=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
