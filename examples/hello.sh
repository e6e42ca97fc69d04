#!/bin/bash
# A first job: where it ran and which GPU Slurm gave it.
#SBATCH --time=5
echo "hello from $(hostname)"
echo "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-none}"
nvidia-smi -L 2>/dev/null || echo "(no nvidia-smi: a simulated GPU on the local cloud)"
