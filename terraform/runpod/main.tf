# gpuops GPU pods on RunPod: one Slurm controller (index 0) and compute pods.
#
# Pods are keyed by stable names (<name_prefix>-<index>), so a rerun with the
# same inputs changes nothing and a smaller pod_count removes the highest
# indices first.

locals {
  # Pod name -> index.
  pods = { for i in range(var.pod_count) : format("%s-%d", var.name_prefix, i) => i }

  # The official provider takes ports as one comma-separated string and env
  # as a list of KEY=VALUE strings (sorted by key, so the list is stable).
  ports = join(",", var.ports)
  env = [
    for k, v in merge(var.env, { PUBLIC_KEY = trimspace(var.ssh_public_key) }) : "${k}=${v}"
  ]
}

resource "runpod_pod" "pod" {
  for_each = local.pods

  name                 = each.key
  image_name           = var.image_name
  gpu_type_id          = var.gpu_type_id
  gpu_count            = var.gpu_count
  cloud_type           = var.cloud_type
  type                 = var.spot ? "SPOT" : "ON_DEMAND"
  container_disk_in_gb = var.container_disk_in_gb
  volume_in_gb         = var.volume_in_gb
  volume_mount_path    = var.volume_mount_path
  ports                = local.ports
  env                  = local.env
}
