"""Run the stand-in ``runpod/runpod`` provider as a Terraform plugin server.

Terraform starts this through the executable written by
:mod:`localcloud.tfprovider.install`; it is not meant to be run by hand.
"""

from __future__ import annotations

import sys

from tf.runner import run_provider

from localcloud.tfprovider.provider import RunPodProvider


def main() -> None:
    """Serve the provider over the go-plugin gRPC protocol until Terraform stops it."""
    run_provider(RunPodProvider(), sys.argv)


if __name__ == "__main__":
    main()
