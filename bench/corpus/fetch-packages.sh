#!/usr/bin/env bash
# Fetches the sources of popular dependency-free npm packages into bench/.packages/ (gitignored),
# for bench/prescreen-corpus.ts to measure the pre-screen's false positives on real code. Only this
# list is committed, never the packages' code. Versions are pinned so the figures are repeatable.
# Usage: bash bench/corpus/fetch-packages.sh   (needs npm; safe to run again)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.packages
mkdir -p "$dest"

PACKAGES=(
  lodash@4.18.1 underscore@1.13.8 ramda@0.32.0 async@3.2.6 bluebird@3.7.2 immer@11.2.10
  moment@2.31.0 dayjs@1.11.23 jquery@4.0.0 core-js@3.51.0
  mustache@4.2.0 marked@18.2.1 yaml@2.9.1 papaparse@5.7.1 acorn@8.19.0 esprima@4.0.1 diff@9.0.0 he@2.0.0
  semver@7.8.6 uuid@14.0.3 nanoid@6.0.2 ms@2.1.3 clsx@2.1.1 classnames@2.5.1 minimist@1.2.8
  cookie@2.0.2 escape-html@1.0.3 fast-deep-equal@3.1.3 deepmerge@4.3.1 eventemitter3@5.0.4
  validator@13.15.35 decimal.js@10.6.0 bignumber.js@11.1.5
)

for spec in "${PACKAGES[@]}"; do
  name=${spec%@*}
  if [ -f "$dest/$name/package.json" ]; then continue; fi
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null)
  mkdir -p "$dest/$name"
  tar -xzf "$tmp"/*.tgz -C "$dest/$name" --strip-components=1
  rm -rf "$tmp"
  deps=$(node -p "Object.keys(require('./$dest/$name/package.json').dependencies ?? {}).length")
  if [ "$deps" != "0" ]; then echo "warning: $spec has dependencies; it does not belong in this corpus" >&2; fi
  echo "fetched $spec"
done
