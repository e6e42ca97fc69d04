variable "pod_count" {
  description = "Number of pods, named <name_prefix>-0 .. <name_prefix>-<pod_count - 1>."
  type        = number
  default     = 2

  validation {
    condition     = var.pod_count >= 1 && var.pod_count <= 64 && floor(var.pod_count) == var.pod_count
    error_message = "pod_count must be a whole number from 1 to 64."
  }
}

variable "name_prefix" {
  description = "Prefix of the pod names; pods are named <name_prefix>-0 .. <name_prefix>-<pod_count - 1>."
  type        = string
  default     = "gpuops"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", var.name_prefix))
    error_message = "name_prefix must be 1 to 40 lowercase letters, digits or hyphens, and must not start or end with a hyphen."
  }
}

variable "deployment_id" {
  description = "Random id of this deployment, set on every pod as the environment variable GPUOPS_DEPLOYMENT so that its pods can be found even when the state does not know them; null sets none. gpuops' provision role keeps it in <state dir>/<cloud>/deployment-id."
  type        = string
  default     = null

  validation {
    condition     = var.deployment_id == null || can(regex("^[a-z0-9]{8,64}$", var.deployment_id))
    error_message = "deployment_id must be 8 to 64 lowercase letters and digits (or null for none)."
  }
}

variable "gpu_type_id" {
  description = "RunPod GPU type ID, e.g. \"NVIDIA GeForce RTX 4090\" (see RunPod's GPU types)."
  type        = string
  default     = "NVIDIA GeForce RTX 4090"

  validation {
    condition     = length(trimspace(var.gpu_type_id)) > 0
    error_message = "gpu_type_id must not be empty; use a RunPod GPU type ID such as \"NVIDIA GeForce RTX 4090\"."
  }
}

variable "gpu_count" {
  description = "GPUs per pod."
  type        = number
  default     = 1

  validation {
    condition     = var.gpu_count >= 1 && floor(var.gpu_count) == var.gpu_count
    error_message = "gpu_count must be a whole number of at least 1."
  }
}

variable "image" {
  description = "Container image of every pod. It must start sshd and authorise $PUBLIC_KEY, like RunPod's official images."
  type        = string

  validation {
    condition     = length(trimspace(var.image)) > 0
    error_message = "image must not be empty."
  }
}

variable "cloud" {
  description = "RunPod cloud tier: SECURE or COMMUNITY (changing it replaces the pods)."
  type        = string
  default     = "SECURE"

  validation {
    condition     = contains(["SECURE", "COMMUNITY"], var.cloud)
    error_message = "cloud must be SECURE or COMMUNITY (upper case); RunPod's v2 API has no ALL."
  }
}

variable "data_center_ids" {
  description = "Preferred data centres, e.g. [\"US-TX-3\"]; empty lets RunPod choose. Changing it replaces the pods."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.data_center_ids : length(trimspace(id)) > 0])
    error_message = "data_center_ids must not contain empty strings."
  }
}

variable "global_networking" {
  description = "Give every pod a private address (<podId>.runpod.internal) reachable from the account's other pods. Needs an NVIDIA GPU in a data centre that offers it."
  type        = bool
  default     = false
}

variable "disk" {
  description = "Container disk per pod in GB (wiped when the pod restarts)."
  type        = number
  default     = 20

  validation {
    condition     = var.disk >= 1 && floor(var.disk) == var.disk
    error_message = "disk must be a whole number of at least 1 (GB)."
  }
}

variable "volume_size" {
  description = "Persistent volume per pod in GB (kept across restarts); 0 for none. RunPod's minimum is 10."
  type        = number
  default     = 0

  validation {
    condition     = var.volume_size == 0 || (var.volume_size >= 10 && floor(var.volume_size) == var.volume_size)
    error_message = "volume_size must be 0 (no volume) or a whole number of at least 10 (GB)."
  }
}

variable "volume_path" {
  description = "Where the persistent volume is mounted."
  type        = string
  default     = "/workspace"

  validation {
    condition     = startswith(var.volume_path, "/")
    error_message = "volume_path must be an absolute path, e.g. /workspace."
  }
}

variable "ssh_public_key" {
  description = "OpenSSH public key authorised for root on every pod (passed as the PUBLIC_KEY environment variable)."
  type        = string

  validation {
    condition     = can(regex("^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\\.com) AAAA[0-9A-Za-z+/]+={0,3}( [^\\r\\n]*)?$", trimspace(var.ssh_public_key)))
    error_message = "ssh_public_key must be one OpenSSH public key line, e.g. \"ssh-ed25519 AAAAC3Nz... user@host\" (the .pub file's content), not a private key or a path."
  }
}

variable "ports" {
  description = "Ports exposed on every pod, as PORT/PROTOCOL (tcp or http). Must include 22/tcp for SSH; order is kept."
  type        = list(string)
  default     = ["22/tcp"]

  validation {
    condition     = contains(var.ports, "22/tcp")
    error_message = "ports must include \"22/tcp\": gpuops reaches the pods over SSH."
  }

  validation {
    condition     = alltrue([for p in var.ports : can(regex("^[0-9]{1,5}/(tcp|http)$", p))])
    error_message = "Each entry of ports must look like PORT/tcp or PORT/http, e.g. \"22/tcp\" or \"8888/http\"."
  }
}

variable "env" {
  description = "Extra environment variables for every pod. PUBLIC_KEY is set from ssh_public_key."
  type        = map(string)
  default     = {}

  validation {
    condition     = !contains(keys(var.env), "PUBLIC_KEY")
    error_message = "Do not set PUBLIC_KEY in env; set ssh_public_key instead."
  }

  validation {
    condition     = !contains(keys(var.env), "GPUOPS_DEPLOYMENT")
    error_message = "Do not set GPUOPS_DEPLOYMENT in env; set deployment_id instead."
  }

  validation {
    condition     = alltrue([for k in keys(var.env) : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k))])
    error_message = "env keys must be environment variable names (letters, digits and underscores, not starting with a digit)."
  }
}
