#!/usr/bin/env bash
# Assemble the Docker build context of the gpuops web image in CTXDIR:
#   1. npm ci in app/web, only when node_modules is missing or package-lock.json changed;
#   2. npm run build (typecheck + vite), only when the app's sources changed since
#      the build in app/web/dist (a SHA-256 of the sources is kept in dist);
#   3. copy Dockerfile, nginx templates, scripts and dist into CTXDIR.
# Progress goes to stderr; stdout is one JSON line:
#   {"context": ..., "npm_ci": bool, "built": bool, "source_sha256": ...}
# Build the image with:
#   docker build --build-arg GPUOPS_WEB_SOURCE_SHA256=<source_sha256> -t gpuops/web:bookworm CTXDIR
#
# Usage: images/web/build-context.sh CTXDIR      (needs node >= 20 and npm on the host)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WEB="$ROOT/app/web"
STAMP_NAME=.gpuops-source-sha256
LOCK_STAMP="$WEB/node_modules/.gpuops-lock-sha256"

say() { printf '[web-context] %s\n' "$*" >&2; }
die() {
    printf '[web-context] FAILED: %s\n' "$*" >&2
    exit 1
}

if [ $# -ne 1 ] || [ -z "$1" ]; then die "usage: $0 CTXDIR"; fi
ctx=$1
case "$ctx" in
    / | "$ROOT" | "$ROOT/" | "$WEB" | "$WEB/") die "refusing to use $ctx as the build context directory" ;;
esac
command -v node >/dev/null || die "node is not installed: install Node.js >= 20 (Debian bookworm: apt-get install nodejs npm is too old; use NodeSource or nvm)"
command -v npm >/dev/null || die "npm is not installed"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
    die "node $(node --version) is too old: the web build needs node >= 20"

# One build at a time per checkout.
exec 9>"$WEB/.gpuops-build.lock"
flock 9

source_sha256() {
    (
        cd "$WEB"
        {
            printf '%s\n' index.html package.json package-lock.json tsconfig.json vite.config.ts
            for d in src public; do
                if [ -d "$d" ]; then find "$d" -type f; fi
            done
        } | LC_ALL=C sort | while IFS= read -r f; do
            if [ -f "$f" ]; then printf '%s  %s\n' "$(sha256sum <"$f" | cut -d' ' -f1)" "$f"; fi
        done
    ) | sha256sum | cut -d' ' -f1
}

npm_ci=false
lock_sum=$(sha256sum <"$WEB/package-lock.json" | cut -d' ' -f1)
if [ ! -d "$WEB/node_modules" ] || [ "$(cat "$LOCK_STAMP" 2>/dev/null)" != "$lock_sum" ]; then
    say "npm ci (node_modules missing or package-lock.json changed)"
    (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error) >&2 || die "npm ci failed in $WEB"
    printf '%s\n' "$lock_sum" >"$LOCK_STAMP"
    npm_ci=true
else
    say "node_modules matches package-lock.json"
fi

built=false
src_sum=$(source_sha256)
if [ ! -f "$WEB/dist/index.html" ] || [ "$(cat "$WEB/dist/$STAMP_NAME" 2>/dev/null)" != "$src_sum" ] || [ "$npm_ci" = true ]; then
    say "npm run build (sources changed since the last build)"
    (cd "$WEB" && npm run build --silent) >&2 || die "npm run build failed in $WEB"
    printf '%s\n' "$src_sum" >"$WEB/dist/$STAMP_NAME"
    built=true
else
    say "dist/ is up to date (sources $src_sum)"
fi

mkdir -p "$ctx"
rm -rf "${ctx:?}/dist" "${ctx:?}/nginx" "${ctx:?}/bin" "${ctx:?}/Dockerfile"
cp "$HERE/Dockerfile" "$ctx/Dockerfile"
cp -R "$HERE/nginx" "$ctx/nginx"
mkdir -p "$ctx/bin"
install -m 0755 "$HERE/bin/gpuops-web-entrypoint" "$HERE/bin/gpuops-web-healthcheck" "$ctx/bin/"
cp -R "$WEB/dist" "$ctx/dist"
rm -f "$ctx/dist/$STAMP_NAME"
chmod -R a+rX "$ctx/dist" "$ctx/nginx"
say "context ready in $ctx"

printf '{"context": "%s", "npm_ci": %s, "built": %s, "source_sha256": "%s"}\n' "$ctx" "$npm_ci" "$built" "$src_sum"
