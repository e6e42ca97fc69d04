#!/bin/sh
# First step of the EE's base stage (execution-environment.yml, prepend_base):
# stop the build, before anything is installed, unless every location the
# build downloads from was given as a build argument. The repository names
# no registry or mirror host: each comes from whoever builds the EE.
#
#   check-build-args.sh PINNED_BASE
#
# PINNED_BASE is the base image's repository path, tag and digest as
# execution-environment.yml pins them (ubi9/ubi:<tag>@sha256:<digest>).
# The build arguments (--build-arg NAME=VALUE of podman/docker build or of
# ansible-builder build):
#   EE_BASE_IMAGE           <registry>/PINNED_BASE: the pinned UBI 9 image on
#                           the registry (or mirror) your container client uses
#   EPEL_KEY_URL            EPEL 9's public key file (RPM-GPG-KEY-EPEL-9) on an
#                           EPEL mirror (install-epel.sh)
#   EPEL_RELEASE_URL        the epel-release RPM for EL 9
#                           (epel-release-latest-9.noarch.rpm) on that mirror
#   TERRAFORM_RELEASES_URL  Terraform's release directory: <url>/<version>/
#                           holds terraform_<version>_SHA256SUMS, its .sig and
#                           the zips (install-terraform.sh)
#   HASHICORP_KEY_URL       HashiCorp's public release key
# Each download is still checked against what the repository pins (the image
# digest, EPEL's and HashiCorp's key fingerprints, the signed checksums).
set -eu

pinned=${1:?usage: check-build-args.sh PINNED_BASE}
missing=""

# need NAME HINT: NAME must be set (build arguments reach RUN as environment variables).
need() {
    if [ -z "$(printenv "$1" || true)" ]; then
        missing="$missing $1"
        printf 'gpuops EE: build argument %s is not set: pass --build-arg %s=%s\n' "$1" "$1" "$2" >&2
    fi
}

need EE_BASE_IMAGE "<registry>/$pinned (the pinned base image on the registry your container client uses)"
need EPEL_KEY_URL "<URL of RPM-GPG-KEY-EPEL-9 on the EPEL mirror to use>"
need EPEL_RELEASE_URL "<URL of epel-release-latest-9.noarch.rpm on the same mirror>"
need TERRAFORM_RELEASES_URL "<URL of the directory of Terraform's releases, one subdirectory per version>"
need HASHICORP_KEY_URL "<URL of HashiCorp's public release key>"

if [ -n "${EE_BASE_IMAGE:-}" ]; then
    case "$EE_BASE_IMAGE" in
        */"$pinned") ;;
        *)
            missing="$missing EE_BASE_IMAGE"
            printf 'gpuops EE: EE_BASE_IMAGE is %s, not the pinned base image: pass --build-arg EE_BASE_IMAGE=<registry>/%s\n' \
                "$EE_BASE_IMAGE" "$pinned" >&2
            ;;
    esac
fi

if [ -n "$missing" ]; then
    echo "gpuops EE: stopping before anything is installed (see awx/README.md, \"Build the execution environment\")" >&2
    exit 1
fi
echo "gpuops EE: build arguments set; base image $EE_BASE_IMAGE"
