output "pods" {
  description = <<-EOT
    Pods by name: id, gpu_type_id, gpu_count, cost (USD/h), data_center_id,
    global_networking, role (controller for index 0, compute for the others),
    and cost_per_hr (the same as cost, for consumers not yet on the 2.x name).
  EOT
  value = {
    for name, pod in runpod_pod.pod : name => {
      id                = pod.id
      gpu_type_id       = pod.gpu_type_id
      gpu_count         = pod.gpu_count
      cost              = pod.cost
      cost_per_hr       = pod.cost
      data_center_id    = pod.data_center_id
      global_networking = pod.global_networking
      role              = local.pods[name] == 0 ? "controller" : "compute"
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

output "controller" {
  description = "Name of the controller pod."
  value       = format("%s-0", var.name_prefix)
}
