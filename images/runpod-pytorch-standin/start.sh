#!/bin/bash
# Start script of gpuops/runpod-pytorch-standin, modelled on RunPod's
# container-template/start.sh (runpod/containers): no systemd; authorise
# $PUBLIC_KEY for root, make SSH host keys, `service ssh start`, print the
# host keys' fingerprints, export the pod's variables to login shells, then
# sleep.
#
# Host keys: RunPod's script makes the keys that are missing, and every start
# of a RunPod pod is a fresh container (the container disk is wiped), so every
# start gets new keys. The stand-in removes the old ones first, so that the
# same holds even where the local cloud restarts a container in place.
set -e

setup_ssh() {
    if [[ $PUBLIC_KEY ]]; then
        echo "Setting up SSH..."
        mkdir -p ~/.ssh
        grep -qxF "$PUBLIC_KEY" ~/.ssh/authorized_keys 2>/dev/null || echo "$PUBLIC_KEY" >> ~/.ssh/authorized_keys
        chmod 700 -R ~/.ssh
        rm -f /etc/ssh/ssh_host_*
        for type in rsa ecdsa ed25519; do
            ssh-keygen -t "$type" -f "/etc/ssh/ssh_host_${type}_key" -q -N ''
            ssh-keygen -lf "/etc/ssh/ssh_host_${type}_key.pub"
        done
        mkdir -p /run/sshd
        service ssh start
        # As RunPod's script: the keys' fingerprints go to the pod's log.
        echo "SSH host keys:"
        for key in /etc/ssh/*.pub; do
            echo "Key: $key"
            ssh-keygen -lf "$key"
        done
    fi
}

export_env_vars() {
    echo "Exporting environment variables..."
    printenv | grep -E '^[A-Z_][A-Z0-9_]*=' | grep -v '^PUBLIC_KEY' \
        | awk -F = '{ val = $0; sub(/^[^=]*=/, "", val); print "export " $1 "=\"" val "\"" }' > /etc/rp_environment
    grep -q 'source /etc/rp_environment' ~/.bashrc 2>/dev/null || echo 'source /etc/rp_environment' >> ~/.bashrc
}

echo "Pod Started"
setup_ssh
export_env_vars
echo "Start script(s) finished, Pod is ready to use."
sleep infinity
