#!/usr/bin/env bash
# The collection's docs site, built the standard way (make lint):
#   antsibull-docs sphinx-init --use-current --fail-on-error, then its build.sh,
#   whose sphinx-build runs with -W (every warning fails the build).
#
# Usage: scripts/docs-build.sh [DEST]   (default: a temporary directory, removed after)
#
# The Sphinx configuration that sphinx-init writes links to four intersphinx
# inventories on the web (Python 2 and 3, Jinja, the Ansible docs). Where one
# cannot be fetched (a machine without access to those sites, such as CI):
#   - Python 3's and Jinja's come from Debian's python3-doc and python-jinja2-doc
#     (scripts/setup.sh installs them): real inventories, linked as the local
#     fallback files that the generated conf.py already names;
#   - an inventory with neither the web nor a local copy is left out. A
#     reference into it then fails the build like any unresolved reference;
#   - references into the Ansible docs are left unlinked only when they are the
#     ones antsibull-docs itself writes: the labels its templates name, and
#     environment variables that ansible-core's configuration defines. They are
#     counted; any other unresolved reference still fails the build.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/.venv/bin"
export PATH="$BIN:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/collections"

if [ $# -gt 0 ]; then
    DEST=$1
    rm -rf "$DEST"
    mkdir -p "$DEST"
else
    DEST=$(mktemp -d)
    trap 'rm -rf "$DEST"' EXIT
fi
DEST=$(cd "$DEST" && pwd)

antsibull-docs sphinx-init --use-current --fail-on-error --dest-dir "$DEST" gpuops.platform >/dev/null

# Local copies of the inventories that Debian's documentation packages carry.
link_inventory() {
    local name=$1 src=$2
    if [ -s "$src" ]; then
        ln -sf "$src" "$DEST/$name"
    fi
}
link_inventory python3.inv /usr/share/doc/python3/html/objects.inv
link_inventory jinja2.inv /usr/share/doc/python-jinja2-doc/html/objects.inv

cat >>"$DEST/conf.py" <<'PYEOF'


# ---- Added by gpuops scripts/docs-build.sh: the build where the web is out of reach ----
import glob as _glob
import os as _os
import re as _re
import socket as _socket
import urllib.parse as _urlparse


def _reachable(url):
    parts = _urlparse.urlsplit(url)
    try:
        _socket.create_connection((parts.hostname, parts.port or (443 if parts.scheme == 'https' else 80)), 5).close()
        return True
    except OSError:
        return False


_HERE = _os.path.dirname(_os.path.abspath(__file__))
_OFFLINE = []  # the inventories that are neither on the web nor here
for _name, (_url, (_, _fallback)) in list(intersphinx_mapping.items()):
    if _reachable(_url):
        continue
    _local = _os.path.join(_HERE, 'rst', _fallback)
    if _os.path.isfile(_local):
        intersphinx_mapping[_name] = (_url, _local)
    else:
        del intersphinx_mapping[_name]
        _OFFLINE.append(_name)


def _antsibull_docs_labels():
    """The labels in the Ansible docs that antsibull-docs' own templates link to."""
    import antsibull_docs
    labels = set()
    for path in _glob.glob(_os.path.join(_os.path.dirname(antsibull_docs.__file__), 'data', '**', '*.j2'),
                           recursive=True):
        with open(path, encoding='utf-8') as handle:
            labels.update(_re.findall(r':ref:`(?:[^`<]*<)?([a-z_]+)>?`', handle.read()))
    return labels


def _ansible_core_env_vars():
    """The environment variables of ansible-core's configuration (the Ansible docs' envvar targets)."""
    import ansible.config
    with open(_os.path.join(_os.path.dirname(ansible.config.__file__), 'base.yml'), encoding='utf-8') as handle:
        return set(_re.findall(r'\bname:\s*(ANSIBLE_[A-Z0-9_]+)', handle.read()))


_UNLINKED = []


def _unlinked_ansible_docs_reference(app, env, node, contnode):
    target = node.get('reftarget', '')
    if node.get('refdomain') != 'std':
        return None
    if node.get('reftype') == 'ref' and target in _antsibull_docs_labels():
        _UNLINKED.append(target)
        return contnode
    if node.get('reftype') == 'envvar' and target in _ansible_core_env_vars():
        _UNLINKED.append(target)
        return contnode
    return None


def _report_unlinked(app, exception):
    if _UNLINKED:
        print('docs-build: %d references into the Ansible docs left unlinked (their inventory is out of reach): %s'
              % (len(_UNLINKED), ', '.join(sorted(set(_UNLINKED)))))


def setup(app):
    if 'ansible_devel' in _OFFLINE:
        app.connect('missing-reference', _unlinked_ansible_docs_reference)
        app.connect('build-finished', _report_unlinked)
    if _OFFLINE:
        print('docs-build: intersphinx inventories out of reach, left out: %s' % ', '.join(_OFFLINE))
PYEOF

"$DEST/build.sh"
echo "docs-build: built $DEST/build/html"
