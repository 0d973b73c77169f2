#!/usr/bin/env bash
# Generates the Prisma client of every provider schema (prisma/<provider>/schema.prisma)
# into src/generated/ (gitignored), offline.
#
#   bash scripts/prisma-generate.sh            # regenerate what changed
#   bash scripts/prisma-generate.sh --force    # regenerate everything
#
# Why PRISMA_SCHEMA_ENGINE_BINARY=/bin/false: every Prisma CLI command first tries to
# download a native schema engine, which fails offline. generate only needs the
# bundled WASM, and pointing the engine variable at a binary that exists skips the
# download.
#
# Why a stamp: generate takes about a second; the stamp (a hash of the schema, the
# Prisma versions and this script) lets setup and test runs skip it when nothing
# changed. The generated files carry `// @ts-nocheck`, so our strict tsconfig
# compiles them with the rest of src/ as they are.
set -euo pipefail

cd "$(dirname "$0")/.."

force=0
if [[ "${1:-}" == "--force" ]]; then force=1; fi

prisma_bin=node_modules/.bin/prisma
if [[ ! -x "$prisma_bin" ]]; then
  echo "prisma-generate: $prisma_bin is missing; run npm ci first" >&2
  exit 1
fi

versions="$(node -p 'require("prisma/package.json").version + " " + require("@prisma/client/package.json").version')"

shopt -s nullglob
schemas=(prisma/*/schema.prisma)
if [[ ${#schemas[@]} -eq 0 ]]; then
  echo "prisma-generate: no prisma/*/schema.prisma found" >&2
  exit 1
fi

for schema in "${schemas[@]}"; do
  # The output folder is whatever the schema's generator says; read it rather than
  # guess, so the stamp lands next to the generated client.
  output="$(sed -n 's/^[[:space:]]*output[[:space:]]*=[[:space:]]*"\(.*\)"[[:space:]]*$/\1/p' "$schema" | head -n 1)"
  if [[ -z "$output" ]]; then
    echo "prisma-generate: $schema has no generator output" >&2
    exit 1
  fi
  outdir="$(realpath -m "$(dirname "$schema")/$output")"
  stamp="$outdir/.generated-from"
  want="$( { cat "$schema" "$0"; echo "$versions"; } | sha256sum | cut -d' ' -f1)"

  if [[ $force -eq 0 && -f "$stamp" && -f "$outdir/client.ts" && "$(cat "$stamp")" == "$want" ]]; then
    echo "prisma-generate: $schema unchanged, skipped"
    continue
  fi

  # A client left from a removed model would still compile; start from empty.
  rm -rf "$outdir"
  PRISMA_SCHEMA_ENGINE_BINARY=/bin/false PRISMA_HIDE_UPDATE_MESSAGE=1 CHECKPOINT_DISABLE=1 \
    "$prisma_bin" generate --schema "$schema"
  echo "$want" > "$stamp"
done
