#!/usr/bin/env bash
# Builds the operator's console (console/) into dist/console/: type-checks it
# with its own tsconfig (DOM, Preact's JSX), then bundles it with esbuild into
# one app.js beside index.html and app.css. Everything comes from
# node_modules; the page loads nothing from elsewhere at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p console/tsconfig.json
mkdir -p dist/console
npx esbuild console/src/main.tsx --bundle --format=esm --target=es2022 --minify \
  --jsx=automatic --jsx-import-source=preact --legal-comments=none --log-level=warning \
  --outfile=dist/console/app.js
cp console/index.html console/app.css dist/console/
