output "pods" {
  description = <<-EOT
    Pods by name: id, index (the number in the pod's name: fixed for the
    name, kept when other pods go, and the same for a pod that replaces it),
    gpu_type_id, gpu_count, cost (USD/h), data_center_id, global_networking,
    and cost_per_hr (the same as cost, for consumers not yet on the 2.x name).
    What the pods are for (Slurm nodes, say) is not the cloud's business:
    consumers group them themselves.
  EOT
  value = {
    for name, pod in runpod_pod.pod : name => {
      id                = pod.id
      index             = local.pods[name]
      gpu_type_id       = pod.gpu_type_id
      gpu_count         = pod.gpu_count
      cost              = pod.cost
      cost_per_hr       = pod.cost
      data_center_id    = pod.data_center_id
      global_networking = pod.global_networking
    }
  }
}

output "deployment" {
  description = "Name of this deployment (the pods' name prefix)."
  value       = var.name_prefix
}

output "deployment_id" {
  description = "Id of this deployment (GPUOPS_DEPLOYMENT on its pods); null when none is set."
  value       = var.deployment_id
}
