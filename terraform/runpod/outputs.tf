output "pods" {
  description = "Pods by name: id, gpu_type_id, gpu_count, cost_per_hr and role (controller for index 0, compute for the others)."
  value = {
    for name, pod in runpod_pod.pod : name => {
      id          = pod.id
      gpu_type_id = pod.gpu_type_id
      gpu_count   = pod.gpu_count
      cost_per_hr = pod.cost_per_hr
      role        = local.pods[name] == 0 ? "controller" : "compute"
    }
  }
}

output "deployment" {
  description = "Name of this deployment (the pods' name prefix)."
  value       = var.name_prefix
}

output "controller" {
  description = "Name of the controller pod."
  value       = format("%s-0", var.name_prefix)
}
