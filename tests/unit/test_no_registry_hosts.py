"""No package registry's or mirror's host is written into the repository (issue 12, item 13).

Where packages and images come from is what the clients are already
configured with (apt's own sources for the Debian mirror, the pod's own APT
source for NVIDIA's CUDA repository, the container client's registries), or
an input without a default that the code asks for by name
(dcgm_exporter_cuda_repo_base_url, the EE's build arguments). This test
reads every file git tracks (and new files it does not ignore) and fails on
a host name of a package registry, a package mirror or a download server.

It knows such hosts two ways: by a label that names the service
(registry, mirror, download, releases, packages, repo, cdn, ...) in any
host name, and by the few registries whose domain is the whole service.
Reserved example names (RFC 2606 / 6761: example.*, .invalid, .test, ...)
never count. The only exceptions are files that record what others wrote:
RunPod's own API contract, whose examples name a container registry.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().relative_to(REPO).as_posix()

# Top-level domains a real registry or mirror host ends in (a file name such
# as repo.tar.gz or a Python attribute chain is not a host).
_TLD = (r"(?:com|org|net|io|dev|ai|sh|rs|co|cloud|app|info|edu|gov|us|uk|de|fr|nl|se|ch|at|be|cz|pl|jp|cn|kr|tw"
        r"|in|au|ca|br|ru|eu|me|ly|gg|xyz|tech)")
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
# A host with a service label (registry.<...>, mirrors.<...>, dl-cdn.<...>, <x>.download.<...>).
_SERVICE = (r"(?:registry|mirrors?|downloads?|dl|releases|packages|pkgs?|repos?|apt|yum|rpm|deb|archive|cdn"
            r"|artifacts?|artifactory|nexus|proxy|ppa)")
GENERIC = re.compile(
    rf"(?<![\w.-])(?:{_LABEL}\.)*{_SERVICE}(?:-{_LABEL})*\.(?:{_LABEL}\.)*{_LABEL}\.{_TLD}(?![\w-])")

# Registries and mirrors whose whole domain is the service, or whose host
# has no service label. Regular expressions over lower-cased text.
KNOWN = {
    "Python package index": r"(?<![\w-])(?:[a-z0-9.-]+\.)?(?:pypi\.org|pypi\.python\.org|pythonhosted\.org)\b",
    "npm registry": r"(?<![\w-])(?:[a-z0-9.-]+\.)?(?:npmjs\.(?:org|com)|yarnpkg\.com|unpkg\.com|jsdelivr\.net)\b",
    "container registry": (r"(?<![\w.-])(?:quay\.io|ghcr\.io|(?:[a-z0-9-]+\.)?gcr\.io|nvcr\.io|mcr\.microsoft\.com"
                           r"|public\.ecr\.aws|[a-z0-9.-]*dkr\.ecr\.[a-z0-9.-]+|[a-z0-9-]+\.azurecr\.io"
                           r"|[a-z0-9-]+\.pkg\.dev|(?:index|hub|get|auth|registry-1)\.docker\.(?:io|com))\b"),
    # Docker's registry as an image reference's host (docker.io/...); the Debian package docker.io is no host.
    "Docker's registry": r"(?:(?<![\w.-])|//)docker\.io(?=/)",
    "Debian mirror": r"(?<![\w.-])(?:security|ftp(?:\.[a-z]{2})?|snapshot|httpredir|incoming)\.debian\.org\b",
    "Ubuntu mirror": r"(?<![\w.-])(?:[a-z]{2}\.)?(?:security|ports|esm)\.ubuntu\.com\b|launchpadcontent\.net\b",
    "NVIDIA package repository": r"(?<![\w.-])nvidia\.github\.io\b",
    "Ansible Galaxy": r"(?<![\w.-])galaxy\.ansible\.com\b",
    "Go module proxy": r"(?<![\w.-])(?:sum\.golang\.org|goproxy\.io)\b",
    "Rust registry": r"(?<![\w.-])(?:[a-z]+\.)?crates\.io\b|static\.rust-lang\.org\b|sh\.rustup\.rs\b",
    "RubyGems": r"(?<![\w.-])rubygems\.org\b",
    "Conda channel": r"(?<![\w.-])conda\.anaconda\.org\b",
    "GitHub release download": (r"(?<![\w.-])(?:objects|release-assets)\.githubusercontent\.com\b"
                                r"|codeload\.github\.com\b|github\.com/[^\s/]+/[^\s/]+/releases/download/"),
    "Node.js download": r"(?<![\w.-])nodejs\.org/dist\b|nodesource\.com\b",
    "browser download": r"(?<![\w.-])playwright\.azureedge\.net\b",
}
KNOWN_RE = {name: re.compile(pattern) for name, pattern in KNOWN.items()}

# Names reserved for examples and documentation: never a registry.
RESERVED = re.compile(r"(?:^|\.)(?:example\.(?:com|org|net)|example|invalid|test|localhost|local|internal)$")

# path -> hosts allowed there, each with the reason. Only for files that record another party's text.
ALLOWED = {
    "localcloud/reference/runpod-rest-v2-openapi.json": {
        # RunPod's REST API v2 contract (vendored): an example value of a container registry field.
        "123456789.dkr.ecr.us-east-2.amazonaws.com",
    },
}


def _host(match: str) -> str:
    return match.split("/")[-1] if match.startswith("//") else match.split("/")[0]


def findings(text: str) -> list[tuple[str, str]]:
    """(what, host) for each registry or mirror host in text, reserved example names left out."""
    found = []
    lower = text.lower()
    for match in GENERIC.finditer(lower):
        found.append(("registry or mirror host", match.group(0)))
    for name, pattern in KNOWN_RE.items():
        for match in pattern.finditer(lower):
            found.append((name, match.group(0).lstrip("/")))
    return [(what, host) for what, host in found if not RESERVED.search(_host(host))]


def repository_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    return sorted({path for path in listed if path})


def test_the_patterns_find_what_they_are_for():
    """The detector itself: service-labelled hosts, whole-domain registries and image references are found;
    reserved example names, package names, file names and attribute chains are not."""
    hosts = ["registry.vendor.io", "mirrors.university.edu", "dl-cdn.distro.org", "developer.download.vendor.com",
             "packages.vendor.co", "pkgs.vendor.dev", "apt.vendor.com", "releases.vendor.com/tool/1.0"]
    for host in hosts:
        assert findings(f"url: https://{host}/x") and findings(f"{host} "), host
    assert findings("FROM docker.io/library/debian:12")
    assert findings("image: ghcr.io/org/image:1")
    assert findings("pip index https://pypi.org/simple")
    assert findings("https://github.com/org/tool/releases/download/v1/tool.zip")
    assert findings("x 123.dkr.ecr.eu-west-1.amazonaws.com/repo:1")
    not_hosts = ["registry.example.com/gpuops/ee:1", "https://mirror.example.org/debian",
                 "set-build-arg-ee-base-image.invalid/ubi9/ubi:9.5", "apt_install docker.io ||",
                 "the Debian package docker.io", "repo.tar.gz", "registry.register(collector)",
                 "archive.extract('terraform', dest)", "https://docs.vendor.io/guide", "https://api.vendor.ai/v2"]
    for text in not_hosts:
        assert not findings(text), (text, findings(text))


def test_no_registry_or_mirror_host_in_the_repository():
    files = repository_files()
    assert len(files) > 300, "git ls-files listed too few files"
    bad = []
    scanned = 0
    for path in files:
        full = REPO / path
        if path == HERE or full.is_symlink() or not full.is_file():
            continue  # this file names the patterns; a link's target is scanned itself
        data = full.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        scanned += 1
        text = data.decode("utf-8", errors="replace")
        allowed = ALLOWED.get(path, set())
        for what, host in findings(text):
            if _host(host) not in allowed:
                line = text.lower()[:text.lower().index(host)].count("\n") + 1
                bad.append(f"{path}:{line}: {host} ({what})")
    assert scanned > 300
    assert not bad, (
        "package registry or mirror hosts are written into the repository; take the location from the client's "
        "own configuration or make it an input without a default:\n  " + "\n  ".join(sorted(set(bad))))


@pytest.mark.parametrize("path", sorted(ALLOWED))
def test_every_allowed_host_is_still_there(path):
    """An exception that no longer matches anything goes (the allow-list only shrinks)."""
    text = (REPO / path).read_text()
    hosts = {_host(host) for _, host in findings(text)}
    assert ALLOWED[path] <= hosts, f"{path}: {sorted(ALLOWED[path] - hosts)} no longer there: drop it from ALLOWED"
