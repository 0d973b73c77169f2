#!/usr/bin/env bash
# Builds the managed origin's TCP_NODELAY preload (src/origin/nodelay.c) into
# dist/native/, where src/origin/nodelay.ts looks for it.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p dist/native
cc -shared -fPIC -O2 -Wall -Wextra -Werror -o dist/native/libnodelay.so.tmp src/origin/nodelay.c -ldl
mv dist/native/libnodelay.so.tmp dist/native/libnodelay.so
