#!/usr/bin/env bash
# Enable EPEL 9 (autossh is there) in the EE, verified before anything of it is
# installed:
#   1. EPEL 9's key is imported into rpm only when its primary key fingerprint
#      is FF8A D134 4597 106E CE81  3B91 8A38 72BF 3228 467C, the one
#      https://fedoraproject.org/keys publishes for "Fedora EPEL (9)";
#   2. the epel-release RPM must carry a good signature by that key
#      (rpm -Kv: "key ID 3228467c: OK"; an unsigned RPM is refused too);
#   3. only then is it installed. Later EPEL packages are GPG-checked by dnf
#      with the same key (epel-release's repository file sets gpgcheck=1).
# Runs in the EE's base stage (execution-environment.yml, prepend_base).
#
#   EPEL_KEY_URL=... EPEL_RELEASE_URL=... install-epel.sh
#
# Where EPEL comes from is the builder's choice, never a default of this
# script: EPEL_KEY_URL is the URL of RPM-GPG-KEY-EPEL-9 and EPEL_RELEASE_URL
# that of epel-release-latest-9.noarch.rpm, both on the EPEL mirror to use
# (build arguments of the EE, checked first by check-build-args.sh).
# GPUOPS_EPEL_KEY_FINGERPRINT overrides the pinned key (tests).
set -euo pipefail

# The download locations: required, no default.
required() {
    [ -n "${!1:-}" ] && return 0
    echo "install-epel: $1 is not set: set it (build argument $1) to the URL of $2 on the EPEL mirror to use" >&2
    exit 2
}
required EPEL_KEY_URL RPM-GPG-KEY-EPEL-9
required EPEL_RELEASE_URL epel-release-latest-9.noarch.rpm
fingerprint=${GPUOPS_EPEL_KEY_FINGERPRINT:-FF8AD1344597106ECE813B918A3872BF3228467C}
key_url=$EPEL_KEY_URL
rpm_url=$EPEL_RELEASE_URL
key_id=$(printf '%s' "${fingerprint: -8}" | tr '[:upper:]' '[:lower:]')

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GNUPGHOME="$work/gnupg"
mkdir -m 0700 "$GNUPGHOME"

fetch() { curl -fsSL --retry 3 --proto '=https,file' -o "$work/$2" "$1"; }
fetch "$key_url" epel.asc

# The primary keys in the file: exactly one, the pinned one.
primaries=$(gpg --batch --show-keys --with-colons "$work/epel.asc" 2>/dev/null |
    awk -F: '$1 == "pub" { want = 1; next } $1 == "fpr" && want { print $10; want = 0 }') || true
if [ "$primaries" != "$fingerprint" ]; then
    echo "install-epel: $key_url holds primary key(s) '${primaries//$'\n'/ }', not EPEL 9's key $fingerprint; refusing it" >&2
    exit 1
fi

fetch "$rpm_url" epel-release.rpm
rpm --import "$work/epel.asc"
check=$(rpm -Kv "$work/epel-release.rpm" 2>&1) || {
    echo "install-epel: epel-release's signature does not verify against EPEL 9's key $fingerprint; refusing it:" >&2
    echo "$check" >&2
    exit 1
}
if ! grep -Eq "Signature, key ID $key_id: OK\$" <<<"$check"; then
    echo "install-epel: epel-release is not signed by EPEL 9's key $fingerprint (key ID $key_id); refusing it:" >&2
    echo "$check" >&2
    exit 1
fi
"${PKGMGR:-dnf}" install -y "$work/epel-release.rpm"
"${PKGMGR:-dnf}" clean all
echo "install-epel: epel-release verified (key $fingerprint) and installed"
