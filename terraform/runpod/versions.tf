terraform {
  # Variable validation with readable, interpolated messages needs >= 1.5.
  required_version = ">= 1.5.0"

  required_providers {
    runpod = {
      source = "runpod/runpod"
      # Pinned exactly. 1.0.9 is reported to fail loading its schema in
      # `terraform validate`; RunPod's own 1.x-to-2.0 migration guide names
      # 1.0.8 "the last release that worked end to end". 2.x is a breaking
      # rewrite (image instead of image_name, ...), so stay on 1.0.8 until
      # this module is migrated.
      # On the local cloud, dev_overrides replace this provider with the
      # stand-in (localcloud/tfprovider) and the version is ignored.
      version = "1.0.8"
    }
  }
}
