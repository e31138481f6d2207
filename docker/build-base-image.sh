#!/usr/bin/env bash
# Build a local base image with Python 3.11 (Debian bookworm) when no image registry is reachable.
# Usage: docker/build-base-image.sh [TAG]   (default TAG: akto-harness-base:bookworm)
# Needs root, debootstrap and a Debian mirror; about 30 s. Skips the work when the image exists.
set -euo pipefail
tag="${1:-akto-harness-base:bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag already present"
  exit 0
fi
rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates bookworm "$rootfs" "$mirror"
# Trust what the host trusts (a corporate or sandbox TLS proxy's CA included), for pip inside builds.
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$rootfs/etc/pip.conf"
# What no image needs: apt's downloaded packages and lists, translations, docs (~140 MB of 290 MB).
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
tar -C "$rootfs" -c . | docker import - "$tag"
echo "built base image $tag"
