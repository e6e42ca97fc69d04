#!/bin/bash
# Start script of gpuops/runpod-pytorch-standin, modelled on RunPod's
# container-template/start.sh (runpod/containers): no systemd; start nginx
# (RunPod's proxy, on all addresses); authorise $PUBLIC_KEY for root, make SSH host keys, `service ssh start`, print the
# host keys' fingerprints, export the pod's variables to login shells, then
# sleep.
#
# Host keys: RunPod's script makes the keys that are missing, and every start
# of a RunPod pod is a fresh container (the container disk is wiped), so every
# start gets new keys. The stand-in removes the old ones first, so that the
# same holds even where the local cloud restarts a container in place.
set -e

# As RunPod's script, first of all and at every start.
start_nginx() {
    echo "Starting Nginx service..."
    service nginx start
}

setup_ssh() {
    if [[ $PUBLIC_KEY ]]; then
        echo "Setting up SSH..."
        mkdir -p ~/.ssh
        grep -qxF "$PUBLIC_KEY" ~/.ssh/authorized_keys 2>/dev/null || echo "$PUBLIC_KEY" >> ~/.ssh/authorized_keys
        chmod 700 -R ~/.ssh
        rm -f /etc/ssh/ssh_host_*
        # As RunPod's script, key type by key type: make the key, then print
        # its fingerprint (`ssh-keygen -lf`: "<bits> SHA256:<hash> <comment>
        # (<TYPE>)") under "<TYPE> key fingerprint:". RunPod's script makes a
        # DSA key too (between RSA and ECDSA) where its Ubuntu's OpenSSH still
        # can (9.6 on 24.04; sshd does not offer it); OpenSSH 10 here has no
        # DSA at all, so the stand-in has none.
        if [[ ! -f /etc/ssh/ssh_host_rsa_key ]]; then
            ssh-keygen -t rsa -f /etc/ssh/ssh_host_rsa_key -q -N ''
            echo "RSA key fingerprint:"
            ssh-keygen -lf /etc/ssh/ssh_host_rsa_key.pub
        fi

        if [[ ! -f /etc/ssh/ssh_host_ecdsa_key ]]; then
            ssh-keygen -t ecdsa -f /etc/ssh/ssh_host_ecdsa_key -q -N ''
            echo "ECDSA key fingerprint:"
            ssh-keygen -lf /etc/ssh/ssh_host_ecdsa_key.pub
        fi

        if [[ ! -f /etc/ssh/ssh_host_ed25519_key ]]; then
            ssh-keygen -t ed25519 -f /etc/ssh/ssh_host_ed25519_key -q -N ''
            echo "ED25519 key fingerprint:"
            ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub
        fi
        mkdir -p /run/sshd
        service ssh start
        # As RunPod's script: every key's fingerprint once more, after sshd
        # started (the pod's log, GET /v2/pods/{id}/logs, is how gpuops pins
        # the host keys of each start: "Pod Started" marks a start).
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

start_nginx
echo "Pod Started"
setup_ssh
export_env_vars
echo "Start script(s) finished, Pod is ready to use."
sleep infinity
