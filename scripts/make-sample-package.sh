#!/usr/bin/env bash
# Rebuilds config/sample-catalog/files/app.tar.gz from config/sample-catalog/app-src/
# deterministically (fixed mtime/owner/order), so the checked-in tarball and
# its SHA-256 only change when the sources do.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/config/sample-catalog/app-src"
out="$root/config/sample-catalog/files/app.tar.gz"
tar --sort=name --mtime='2025-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner \
    -C "$src" -cf - . | gzip -9n > "$out"
echo "$out: $(stat -c %s "$out") bytes"
