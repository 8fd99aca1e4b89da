#!/bin/sh
# The system tests create network namespaces and links: they need root.
# Fail loudly instead of letting them skip.
if [ "$(id -u)" != 0 ]; then
  echo "make test needs root (network namespaces, links, a private dockerd); run it as root" >&2
  exit 1
fi
command -v ip >/dev/null || { echo "iproute2 (ip) is missing: apt-get install iproute2" >&2; exit 1; }
