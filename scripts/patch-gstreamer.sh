#!/usr/bin/env bash
# Fixes the leaks of gstreamer-superficial 1.7.4 (see
# patches/gstreamer-superficial-1.7.4-leaks.patch) and adds pad buffer
# counters (patches/gstreamer-superficial-1.7.4-counters.patch): applies them to
# node_modules/gstreamer-superficial and rebuilds the addon with npm's own
# node-gyp, against the local Node headers, exactly as `npm ci` built it.
# Offline. Safe to run again: it skips what is done. Run after `npm ci`
# (which restores the stock sources).
set -euo pipefail
cd "$(dirname "$0")/.."

pkg=node_modules/gstreamer-superficial
patch_file=patches/gstreamer-superficial-1.7.4-leaks.patch
addon="$pkg/build/Release/gstreamer-superficial.node"

version=$(node -p "require('./$pkg/package.json').version")
if [ "$version" != 1.7.4 ]; then
  echo "patch-gstreamer: $pkg is $version; $patch_file is for 1.7.4, update it" >&2
  exit 1
fi

if grep -q 'vlive leak patch' "$pkg/Pipeline.cpp"; then
  echo "patch-gstreamer: sources already patched"
else
  echo "patch-gstreamer: applying $patch_file"
  patch -d "$pkg" -p1 --forward --quiet < "$patch_file"
fi

# The second patch adds buffer counters on pads (frames out of live relays);
# it applies on top of the first.
counters_patch=patches/gstreamer-superficial-1.7.4-counters.patch
if grep -q 'vlive counter patch' "$pkg/Pipeline.cpp" && ! grep -q '_structure_name' "$pkg/Pipeline.cpp"; then
  # An older revision of the counters patch is applied: start again from the stock package.
  echo "patch-gstreamer: an older counters patch is applied; reinstalling the stock package"
  rm -rf "$pkg"
  npm install --no-save --ignore-scripts --no-audit --no-fund gstreamer-superficial@1.7.4
  patch -d "$pkg" -p1 --forward --quiet < "$patch_file"
fi
if ! grep -q 'vlive counter patch' "$pkg/Pipeline.cpp"; then
  echo "patch-gstreamer: applying $counters_patch"
  patch -d "$pkg" -p1 --forward --quiet < "$counters_patch"
fi

if [ ! -f "$addon" ] || [ -n "$(find "$pkg" -maxdepth 1 \( -name '*.cpp' -o -name '*.h' \) -newer "$addon")" ]; then
  echo "patch-gstreamer: rebuilding the addon"
  npm rebuild gstreamer-superficial --foreground-scripts --no-audit --no-fund
fi
