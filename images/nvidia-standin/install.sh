#!/bin/sh
# Installs the gpuops NVIDIA stand-in (NOT NVIDIA's driver) into a local-cloud
# pod image; run by each pod image's Dockerfile from a copy of this directory:
#   /usr/lib/<multiarch>/libnvidia-ml.so.<version> (+ .so.1)  NVML, from nvml-standin.c
#   /usr/bin/nvidia-smi                                      the stand-in nvidia-smi
#   /opt/gpuops-nvidia-standin/                              driver, entry point, README
# gcc and libc6-dev come from Debian for the build and leave again after it
# (unless the image already had them).
set -eu
src=$(cd "$(dirname "$0")" && pwd)
version=$(sed -n 's/^DRIVER_VERSION = "\(.*\)"$/\1/p' "$src/gpuops-nvidia-standin-driver")
[ -n "$version" ] || { echo "install.sh: no DRIVER_VERSION in gpuops-nvidia-standin-driver" >&2; exit 1; }

added=""
for package in gcc libc6-dev; do
    dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || added="$added $package"
done
if [ -n "$added" ]; then
    apt-get update
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $added
fi

libdir=/usr/lib/$(gcc -print-multiarch)
mkdir -p "$libdir"
gcc -std=gnu99 -O2 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden \
    -Wl,-soname,libnvidia-ml.so.1 -o "$libdir/libnvidia-ml.so.$version" "$src/nvml-standin.c" -lpthread
ln -sf "libnvidia-ml.so.$version" "$libdir/libnvidia-ml.so.1"

if [ -n "$added" ]; then
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get purge -y --auto-remove $added
    rm -rf /var/lib/apt/lists/*
fi
ldconfig

install -m 0755 "$src/nvidia-smi" /usr/bin/nvidia-smi
install -d -m 0755 /opt/gpuops-nvidia-standin
install -m 0755 "$src/gpuops-nvidia-standin-driver" "$src/entrypoint" /opt/gpuops-nvidia-standin/
install -m 0644 "$src/README.md" /opt/gpuops-nvidia-standin/README.md
# The build must have produced a library NVML's users can load.
python3 -c 'import ctypes; ctypes.CDLL("libnvidia-ml.so.1").nvmlInit_v2'
