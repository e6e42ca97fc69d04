# shellcheck shell=sh
# Run with ansible.builtin.raw (no Python needed) before any module: install
# what modules and fact gathering need on a minimal image (python3-apt for
# the apt module, iproute2 for network facts), then print the Python whose
# modules can use APT (tasks/python.yml). GPUOPS_PROBE_ONLY=1 (check mode)
# installs nothing.
probe() {
    for p in /usr/bin/python3.[0-9] /usr/bin/python3.[0-9][0-9]; do
        [ -x "$p" ] && "$p" -c 'import apt_pkg' >/dev/null 2>&1 && { echo "$p"; return 0; }
    done
    return 1
}
need=""
probe >/dev/null || need="python3-apt"
command -v ip >/dev/null 2>&1 || need="$need iproute2"
if [ -n "$need" ] && [ -z "${GPUOPS_PROBE_ONLY:-}" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing the prerequisites:$need" >&2
    # shellcheck disable=SC2086 # $need is a list of package names
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need; } >&2 ||
        echo "could not install$need" >&2
fi
probe && exit 0
d=$(sed -n 's/^default-version *= *//p' /usr/share/python3/debian_defaults 2>/dev/null)
[ -n "$d" ] && [ -x "/usr/bin/$d" ] && { echo "/usr/bin/$d"; exit 0; }
echo /usr/bin/python3
