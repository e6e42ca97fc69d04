terraform {
  # RunPod's docs for provider 2.x require Terraform 1.6 or later.
  required_version = ">= 1.6.0"

  required_providers {
    runpod = {
      source = "runpod/runpod"
      # 2.x is generated from RunPod's REST API v2 (REST v1 is retired). RunPod's
      # docs recommend "~> 2.0": any 2.x, never an automatic move to 3.0. Commit
      # .terraform.lock.hcl where you run it, so every run uses the same release.
      # On the local cloud, dev_overrides replace this provider with the
      # stand-in (localcloud/tfprovider) and the version is ignored.
      version = "~> 2.0"
    }
  }
}
