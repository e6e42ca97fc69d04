#!/usr/bin/env bash
# Assemble the Docker build context of the gpuops API image in DIR:
#   DIR/Dockerfile         (images/api/Dockerfile)
#   DIR/gpuops_api/        (the package; gpuops_api/upstreams/_runpod_api.py is the
#                          collection's RunPod client, a link in the checkout,
#                          copied here as a file: one source for both)
#   DIR/requirements.txt   (app/api/requirements.txt: every runtime dependency, pinned
#                          with the sha256 of each file: scripts/lock.sh)
#   DIR/wheels/            (those pins as wheels for CPython 3.11 on x86_64 Linux)
# Wheels are downloaded on this machine (it reaches PyPI; docker build does not),
# only when the pinned set is not already in DIR/wheels; wheels of other
# versions are removed. Running it twice changes nothing the second time.
#   app/api/build-context.sh DIR && docker build -t gpuops/api:TAG DIR
# PIP names the pip to use (default: the repository's .venv/bin/pip).
set -euo pipefail

usage() { echo "usage: $0 CONTEXT_DIR" >&2; exit 2; }
[ $# -eq 1 ] || usage
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ctx=$1
pip=${PIP:-$root/.venv/bin/pip}
[ -x "$pip" ] || { echo "$0: no pip at $pip: run make setup, or set PIP" >&2; exit 1; }

mkdir -p "$ctx/wheels"
install -m 0644 "$root/images/api/Dockerfile" "$ctx/Dockerfile"
install -m 0644 "$here/requirements.txt" "$ctx/requirements.txt"
rm -rf "$ctx/gpuops_api"
mkdir -p "$ctx/gpuops_api"
(cd "$here" && find gpuops_api -name '__pycache__' -prune -o \( -type f -o -type l \) -name '*.py' -print) |
  while read -r file; do install -D -m 0644 "$here/$file" "$ctx/$file"; done
# The RunPod client must be the collection's file, byte for byte (the link resolves to it).
client=collections/ansible_collections/gpuops/platform/plugins/module_utils/_runpod_api.py
cmp -s "$root/$client" "$ctx/gpuops_api/upstreams/_runpod_api.py" ||
  { echo "$0: gpuops_api/upstreams/_runpod_api.py in $ctx is not $client" >&2; exit 1; }

# name==version -> the wheel file name prefix (PEP 427: name normalised to lower case and _).
wanted() {
  sed -nE 's/^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\\]+).*/\1==\2/p' "$here/requirements.txt" |
    awk -F'==' '{ name = tolower($1); gsub(/[-.]+/, "_", name); print name "-" $2 "-" }'
}
have() { find "$ctx/wheels" -maxdepth 1 -name '*.whl' -printf '%f\n' | tr '[:upper:]' '[:lower:]'; }
missing() {
  local listing prefix
  listing=$(have)
  while read -r prefix; do
    grep -q -- "^$prefix" <<<"$listing" || echo "$prefix"
  done < <(wanted)
}

if [ -n "$(missing)" ]; then
  "$pip" download --quiet --disable-pip-version-check --only-binary=:all: --require-hashes \
    --implementation cp --python-version 3.11 --abi cp311 --abi abi3 --abi none \
    --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_34_x86_64 \
    -r "$here/requirements.txt" -d "$ctx/wheels"
fi
left=$(missing)
if [ -n "$left" ]; then
  echo "$0: no wheel for: $left" >&2
  exit 1
fi
# Drop wheels that are not in the pinned set (an older pin, a dependency that is no longer needed).
prefixes=$(wanted)
for wheel in "$ctx"/wheels/*.whl; do
  [ -e "$wheel" ] || continue
  base=$(basename "$wheel" | tr '[:upper:]' '[:lower:]')
  keep=no
  while read -r prefix; do
    case $base in "$prefix"*) keep=yes; break ;; esac
  done <<<"$prefixes"
  if [ "$keep" = no ]; then
    echo "removing $(basename "$wheel"): not in app/api/requirements.txt"
    rm -f -- "$wheel"
  fi
done
echo "build context ready in $ctx ($(have | wc -l) wheels)"
