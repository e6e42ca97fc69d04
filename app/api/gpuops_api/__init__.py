"""gpuops API: one HTTP API over the deployment's pods, GPUs and Slurm jobs."""

__version__ = "0.1.0"
