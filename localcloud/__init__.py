"""localcloud: a local stand-in for RunPod's REST API v2 whose pods are Docker containers.

Clients (the Terraform provider, the gpuops inventory plugin) talk to it as
to ``https://api.runpod.io/v2``; only the base URL and the API key differ.
Run ``python -m localcloud --help``.
"""

__version__ = "0.2.0"
