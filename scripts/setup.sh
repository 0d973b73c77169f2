#!/usr/bin/env bash
# Sets up everything `npm start` and `npm test` need on a fresh Debian machine
# with Node 20, as root: missing Debian packages, npm ci, the Prisma client,
# and the TypeScript build. Safe to run again; it skips what is done.
# Migrations are not run here: the service applies them itself at start.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  libgstreamer1.0-0 gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-base-apps
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  gstreamer1.0-x fonts-dejavu-core  # timeoverlay and a font for the demo picture's running clock
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  # npm ci builds two native addons (better-sqlite3, gstreamer-superficial) with node-gyp.
  make g++ python3 pkg-config
  gcc libc6-dev  # the origin's TCP_NODELAY preload (src/origin/nodelay.c, scripts/build-nodelay.sh)
  nginx libnginx-mod-rtmp
  util-linux patch
  # Test and benchmark tools only, never in the media path: the independent receiver,
  # and a real Prometheus (with promtool) that scrapes the service in the tests.
  ffmpeg prometheus
  flvmeta  # reads back every FLV tag a test receiver kept, script data included (test/helpers/flv-receiver.ts)
  gir1.2-gst-rtsp-server-1.0 python3-gi  # the tests' RTSP source (test/fixtures/rtsp-server.py)
  postgresql  # cluster mode's tests start throwaway clusters with its initdb/pg_ctl (scripts/scratch-postgres.ts)
  chromium  # the console's test drives it with playwright-core, which downloads no browser (test/console.test.ts)
  # The programme guide's test validates /epg/xmltv against XMLTV's own DTD (/usr/share/xmltv/xmltv.dtd,
  # shipped by xmltv-util with the XMLTV grabbers) with xmllint (test/programme.test.ts).
  libxml2-utils xmltv-util
  openssl  # self-signed certificates for the rtmps:// push target test, made at test time (test/helpers/tls-relay.ts)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: these packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -q
  # The nginx package would start a system-wide nginx; the service runs its own.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

# Every GStreamer element the service can ask for (pipelines/elements.txt)
# must exist now, not when a user's channel first needs it.
have=$(gst-inspect-1.0 | sed -n 's/^[A-Za-z0-9_-]*: *\([A-Za-z0-9_-]*\):.*/\1/p')
absent=0
while read -r element pkg _; do
  if ! grep -qx -- "$element" <<<"$have"; then
    echo "setup: GStreamer element $element is missing: it comes with the Debian package $pkg (apt-get install $pkg)" >&2
    absent=1
  fi
done < <(sed 's/#.*//' pipelines/elements.txt | awk 'NF')
[ "$absent" = 0 ] || exit 1

lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.vlive-lock ] || [ "$(cat node_modules/.vlive-lock)" != "$lock_sum" ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
  echo "$lock_sum" > node_modules/.vlive-lock
fi

# Fixes leaks in gstreamer-superficial (see patches/); safe to run again.
bash scripts/patch-gstreamer.sh
bash scripts/prisma-generate.sh
# tsc's incremental check still reads every file (about 3 s): skip it when
# nothing it compiles is newer than its last build. A checkout or an edit
# gives a file a new mtime, so it still rebuilds whenever something changed.
if [ -f dist/.tsbuildinfo ] && [ -z "$(find src test bench scripts tsconfig.json package-lock.json -newer dist/.tsbuildinfo -print -quit)" ]; then
  echo "setup: build up to date"
else
  echo "setup: building"
  npx tsc -p tsconfig.json
  touch dist/.tsbuildinfo  # tsc leaves it alone when no output changed
fi
# The operator's console (console/), skipped the same way when nothing it is built from changed.
if [ -f dist/native/libnodelay.so ] && [ ! src/origin/nodelay.c -nt dist/native/libnodelay.so ]; then
  echo "setup: origin preload up to date"
else
  echo "setup: building the origin's TCP_NODELAY preload"
  bash scripts/build-nodelay.sh
fi
if [ -f dist/console/app.js ] && [ -z "$(find console scripts/build-console.sh package-lock.json -newer dist/console/app.js -print -quit)" ]; then
  echo "setup: console up to date"
else
  echo "setup: building the console"
  bash scripts/build-console.sh
fi
