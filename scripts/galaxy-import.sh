#!/usr/bin/env bash
# Galaxy's own import checks on the collection as it would be uploaded (make lint):
# `ansible-galaxy collection build` into a temporary directory, then
# galaxy-importer on the tarball. Fails on any error the importer reports
# (a role without a README, broken docs, a bad galaxy.yml, ...); its warnings
# (ansible-lint's, flake8's) are printed.
#
# Configuration (scripts/galaxy-importer.cfg): the importer runs ansible-doc,
# ansible-lint and flake8 as Galaxy does; its ansible-test run is off because
# galaxy-importer only runs ansible-test sanity with --docker (a container
# image this machine cannot pull). make sanity runs ansible-test sanity on
# every ansible-core the collection claims instead, without a container.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/.venv/bin"
COLLECTION="$ROOT/collections/ansible_collections/gpuops/platform"
export PATH="$BIN:$PATH"
export GALAXY_IMPORTER_CONFIG="$ROOT/scripts/galaxy-importer.cfg"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ansible-galaxy collection build --output-path "$tmp" "$COLLECTION" >/dev/null
tarball=$(ls "$tmp"/*.tar.gz)

# The importer's temporary files (ansible-doc's, ansible-lint's) stay in $tmp.
rc=0
(cd "$tmp" && TMPDIR="$tmp" "$BIN/python" -m galaxy_importer.main "$tarball") >"$tmp/import.log" 2>&1 || rc=$?

errors=$(grep -c '^ERROR' "$tmp/import.log" || true)
warnings=$(grep -c '^WARNING' "$tmp/import.log" || true)
grep -E '^(ERROR|WARNING)' "$tmp/import.log" || true
if [ "$rc" -ne 0 ] || [ "$errors" -ne 0 ] || ! grep -q '^Importer processing completed successfully' "$tmp/import.log"; then
    echo "galaxy-import: FAILED: galaxy-importer reported $errors error(s) (exit $rc) on ${tarball##*/}; its log:" >&2
    cat "$tmp/import.log" >&2
    exit 1
fi
echo "galaxy-import: ${tarball##*/} imports with 0 errors, $warnings warning(s)"
