#!/usr/bin/env bash
# The whole documented workflow on the local provider, in a fresh temporary store.
set -euo pipefail
MODELKIT="${MODELKIT:-modelkit}"
work=$(mktemp -d "${TMPDIR:-/tmp}/modelkit-assets-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
export MODELKIT_STORAGE_PROVIDER=local
export MODELKIT_STORAGE_BUCKET="$work/bucket"
export MODELKIT_STORAGE_PREFIX=demo-assets
export MODELKIT_ASSETS_DIR="$work/assets"
mkdir -p "$MODELKIT_STORAGE_BUCKET" "$MODELKIT_ASSETS_DIR" "$work/model/vocab/.meta"
echo "weights v0" > "$work/weights.bin"
echo "hello world" > "$work/model/vocab/words.txt"
echo "hidden" > "$work/model/vocab/.meta/info"
echo '{"dim": 3}' > "$work/model/config.json"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "store: $MODELKIT_STORAGE_BUCKET (prefix $MODELKIT_STORAGE_PREFIX), cache: $MODELKIT_ASSETS_DIR"
step "$MODELKIT" assets new "$work/weights.bin" demo/model --yes
step "$MODELKIT" assets update "$work/model" demo/model --yes
step "$MODELKIT" assets update "$work/model" demo/model --bump-major --yes
step "$MODELKIT" assets update "$work/weights.bin" demo/model:0 --yes
step "$MODELKIT" assets update "$work/weights.bin" demo/model --dry-run
step "$MODELKIT" assets list
step "$MODELKIT" assets fetch demo/model:0.1
step "$MODELKIT" assets fetch "demo/model:1[vocab/words.txt]"
step "$MODELKIT" assets fetch demo/model --json

printf '\n\033[1m# the same from Python\033[0m\n'
python - <<'PY'
from modelkit_assets import AssetsManager

info = AssetsManager().fetch_asset("demo/model:0.1[vocab/words.txt]", return_info=True)
print("fetched", info["name"], info["version"], "from cache:", info["from_cache"])
print(open(info["path"]).read().strip())
PY

printf '\n\033[1m# pre-downloaded mode: no provider, only the assets dir\033[0m\n'
step env -u MODELKIT_STORAGE_PROVIDER "$MODELKIT" assets fetch demo/model
printf '\n\033[1m# simple_date versioning\033[0m\n'
export MODELKIT_ASSETS_VERSIONING_SYSTEM=simple_date
step "$MODELKIT" assets new "$work/weights.bin" demo/dated --yes
step "$MODELKIT" assets update "$work/weights.bin" demo/dated --yes
step "$MODELKIT" assets fetch demo/dated
printf '\n\033[1m# one store, both systems: each asset keeps its own\033[0m\n'
step "$MODELKIT" assets list
step "$MODELKIT" assets update "$work/weights.bin" demo/model --yes
step "$MODELKIT" assets info demo/model
echo
echo "demo complete"
