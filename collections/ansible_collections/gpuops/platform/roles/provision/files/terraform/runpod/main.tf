# gpuops GPU pods on RunPod (provider runpod/runpod 2.x): pod_count alike
# pods. What runs on them is not this module's business.
#
# Pods are keyed by stable names (<name_prefix>-<index>), so a rerun with the
# same inputs changes nothing and a smaller pod_count removes the highest
# indices first. A pod's index (output pods[*].index) is fixed for its name:
# it never moves when another pod goes, and a pod that replaces it gets it.

locals {
  # Pod name -> index.
  pods = { for i in range(var.pod_count) : format("%s-%d", var.name_prefix, i) => i }
}

resource "runpod_pod" "pod" {
  for_each = local.pods

  name        = each.key
  image       = var.image
  gpu_type_id = var.gpu_type_id
  # cloud and gpu_count are always set: left out, 2.x plans them unknown on any
  # other change, and both force a replacement.
  gpu_count = var.gpu_count
  cloud     = var.cloud
  # A placement preference: null lets RunPod choose (create-time, forces replacement).
  data_center_ids   = length(var.data_center_ids) > 0 ? var.data_center_ids : null
  global_networking = var.global_networking
  disk              = var.disk
  ports             = var.ports
  # GPUOPS_DEPLOYMENT tags the pod with its deployment's id, so that a pod the
  # state does not know (made behind Terraform's back, or by a run that crashed
  # before the state was written) can be found: RunPod's v2 pods have no
  # labels, but every pod returns its env (gpuops.platform.runpod_orphans).
  env = merge(var.env, { PUBLIC_KEY = trimspace(var.ssh_public_key) },
  var.deployment_id == null ? {} : { GPUOPS_DEPLOYMENT = var.deployment_id })

  # No volume is null, never a 0 GB volume (RunPod's floor is 10 GB).
  persistent_volume = var.volume_size > 0 ? { size = var.volume_size, path = var.volume_path } : null

  lifecycle {
    # The tag is set when a pod is created, never added later: changing a
    # pod's env restarts it, which wipes its container disk. Pods made before
    # deployments were tagged keep running as they are (the state knows them).
    ignore_changes = [env["GPUOPS_DEPLOYMENT"]]
  }
}
