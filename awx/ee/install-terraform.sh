#!/usr/bin/env bash
# Install one pinned Terraform release from HashiCorp's release directory (or a
# mirror of it) into DEST_DIR, verified in three links, each before the next
# is used:
#   1. HashiCorp's release key (HASHICORP_KEY_URL) is trusted only for
#      signatures whose primary key fingerprint is
#      C874 011F 0AB4 0511 0D02 1055 3436 5D94 72D7 468F, the one
#      https://www.hashicorp.com/trust/security publishes;
#   2. that key's signature on terraform_<version>_SHA256SUMS must be good;
#   3. the zip's SHA256 must be the one the signed list gives (and, when
#      TERRAFORM_SHA256 is set, that value too).
# Runs in the EE's builder stage (execution-environment.yml).
#
#   install-terraform.sh VERSION DEST_DIR [ARCH]      ARCH: amd64 (default on x86_64) or arm64
#
# Where Terraform comes from is the builder's choice, never a default of this
# script (build arguments of the EE, checked first by check-build-args.sh):
#   TERRAFORM_RELEASES_URL  the release directory: <url>/<version>/ holds
#                           terraform_<version>_SHA256SUMS, its .sig and the zips
#   HASHICORP_KEY_URL       HashiCorp's public release key
# GPUOPS_TERRAFORM_KEY_FINGERPRINT overrides the pinned key (tests).
set -euo pipefail

usage="usage: install-terraform.sh VERSION DEST_DIR [amd64|arm64]"
version=${1:?$usage}
dest=${2:?$usage}
arch=${3:-}
if [ -z "$arch" ]; then
    case "$(uname -m)" in
        x86_64) arch=amd64 ;;
        aarch64 | arm64) arch=arm64 ;;
        *) echo "install-terraform: no Terraform build for $(uname -m); pass the architecture as third argument" >&2; exit 2 ;;
    esac
fi
if ! [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "install-terraform: '$version' is not a Terraform release number such as 1.11.4" >&2
    exit 2
fi

# The download locations: required, no default.
required() {
    [ -n "${!1:-}" ] && return 0
    echo "install-terraform: $1 is not set: set it (build argument $1) to the URL of $2" >&2
    exit 2
}
required TERRAFORM_RELEASES_URL "the directory of Terraform's releases (one subdirectory per version)"
required HASHICORP_KEY_URL "HashiCorp's public release key"

fingerprint=${GPUOPS_TERRAFORM_KEY_FINGERPRINT:-C874011F0AB405110D02105534365D9472D7468F}
releases=${TERRAFORM_RELEASES_URL%/}/$version
key_url=$HASHICORP_KEY_URL
sums=terraform_${version}_SHA256SUMS
zip=terraform_${version}_linux_${arch}.zip

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GNUPGHOME="$work/gnupg"
mkdir -m 0700 "$GNUPGHOME"

fetch() { curl -fsSL --retry 3 --proto '=https,file' -o "$work/$2" "$1"; }
fetch "$key_url" hashicorp.asc
fetch "$releases/$sums" "$sums"
fetch "$releases/$sums.sig" "$sums.sig"
fetch "$releases/$zip" "$zip"

gpg --batch --quiet --import "$work/hashicorp.asc" 2>/dev/null
# VALIDSIG's last field is the fingerprint of the signing key's primary key.
signer=$(gpg --batch --status-fd 1 --verify "$work/$sums.sig" "$work/$sums" 2>/dev/null |
    awk '$2 == "VALIDSIG" { print $NF }') || true
if [ "$signer" != "$fingerprint" ]; then
    echo "install-terraform: $sums is not signed by HashiCorp's release key $fingerprint (signer: '${signer:-none}'); refusing $zip" >&2
    exit 1
fi

expected=$(awk -v f="$zip" '$2 == f { print $1 }' "$work/$sums")
actual=$(sha256sum "$work/$zip" | cut -d' ' -f1)
if [ -z "$expected" ] || [ "$actual" != "$expected" ]; then
    echo "install-terraform: $zip has SHA256 $actual, the signed $sums lists '${expected:-nothing}'; refusing it" >&2
    exit 1
fi
if [ -n "${TERRAFORM_SHA256:-}" ] && [ "$actual" != "$TERRAFORM_SHA256" ]; then
    echo "install-terraform: $zip has SHA256 $actual, TERRAFORM_SHA256 pins $TERRAFORM_SHA256; refusing it" >&2
    exit 1
fi

mkdir -p "$dest"
# Python's zipfile: the builder stage has Python but not necessarily unzip.
"${PYCMD:-python3}" - "$work/$zip" "$dest" <<'EOF'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as archive:
    archive.extract("terraform", sys.argv[2])
EOF
chmod 0755 "$dest/terraform"
echo "install-terraform: Terraform $version ($arch, sha256 $actual) verified and installed in $dest"
