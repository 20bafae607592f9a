#!/usr/bin/env bash
# modelreg demo: the main job end to end on the embedded registry.
# Starts `modelreg serve` on a free port on 127.0.0.1, makes a small Hugging
# Face style model (or uses MODEL_DIR), then: push with lineage, a promotion
# the policy refuses (unsigned), sign, the promotion that passes, and a
# deploy-time pull by `production` with signature and policy verification.
# It ends by restarting the registry with the dashboard (`serve --ui`) and
# printing its URL; DEMO_UI=1 keeps both running until Ctrl-C
# (DEMO_UI_ADDR=HOST:PORT picks the dashboard's address, default a free port).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${MODELREG:-$here/bin/modelreg}
work=$(mktemp -d "${TMPDIR:-/tmp}/modelreg-demo.XXXXXX")
# Key passwords come from COSIGN_PASSWORD, as with cosign. The digest cache,
# the memory of accepted promotion records and the docker config live in
# the demo's scratch folder, so the demo leaves nothing behind.
export COSIGN_PASSWORD=${COSIGN_PASSWORD:-demo-password}
export MODELREG_CACHE_DIR=$work/cache
export MODELREG_STATE_DIR=$work/state
export DOCKER_CONFIG=$work/docker
export MODELREG_ACTOR=${MODELREG_ACTOR:-demo-release-owner}

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
run() { printf '$ %s\n' "$*"; "$@"; }

server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

step "Start the embedded registry (olareg) on 127.0.0.1"
"$bin" serve --addr 127.0.0.1:0 --root "$work/registry" 2>"$work/serve.log" &
server=$!
for _ in $(seq 50); do
  addr=$(sed -n 's/.*listening on \([^,]*\),.*/\1/p' "$work/serve.log")
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "${addr:-}" ] || { cat "$work/serve.log"; echo "registry did not start" >&2; exit 1; }
echo "registry at $addr"
repo=$addr/demo/sentiment

step "A model folder"
if [ -n "${MODEL_DIR:-}" ]; then
  model=$MODEL_DIR
else
  model=$work/model
  (cd "$here" && go run ./scripts/mkmodel "$model")
fi
ls -l "$model"

step "A dataset to record as lineage"
mkdir -p "$work/dataset/data"
printf 'text,label\ngreat,1\nawful,0\n' > "$work/dataset/data/train.csv"
run "$bin" push "$addr/demo/reviews" "$work/dataset"

step "Push the model with its lineage"
run "$bin" push "$repo" "$model" --alias candidate \
  --dataset "$addr/demo/reviews:v1" --run-id run-42 \
  --source https://git.example.com/ml/sentiment --revision 3f1c2a9

step "Push the same files again: no new version"
run "$bin" push "$repo" "$model" --alias candidate \
  --dataset "$addr/demo/reviews:v1" --run-id run-42 \
  --source https://git.example.com/ml/sentiment --revision 3f1c2a9
run "$bin" versions "$repo"
run "$bin" inspect "$repo:v1"

step "A release key (password from COSIGN_PASSWORD) and a promotion policy"
cd "$work"
run "$bin" keygen --prefix release
cat > policy.yaml <<'YAML'
apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    signatures: {keys: [release.pub], minSigners: 1}
    annotations: [org.opencontainers.image.source, dev.modelreg.lineage.datasets]
    files: ["README.md", "*.safetensors"]
    promoters: {keys: [release.pub]}
YAML
cat policy.yaml

step "Promote to production before signing: the policy refuses (exit 3)"
set +e
run "$bin" promote "$repo:v1" --to production --policy policy.yaml --key release.key
rc=$?
set -e
echo "exit code $rc"
[ "$rc" -eq 3 ] || { echo "expected exit code 3" >&2; exit 1; }

step "Sign v1, then promote again: the policy passes"
run "$bin" sign "$repo:v1" --key release.key
run "$bin" verify "$repo:v1" --key release.pub
run "$bin" promote "$repo:v1" --to production --policy policy.yaml --key release.key
run "$bin" history "$repo" production --policy policy.yaml
run "$bin" alias ls "$repo"

step "Deploy: pull production, verified before a byte is written"
run "$bin" pull "$repo:production" "$work/deploy" --key release.pub --policy policy.yaml
diff -r "$model" "$work/deploy" && echo "pulled files are byte-identical to the pushed ones"

step "Pull again: nothing to download"
run "$bin" pull "$repo:production" "$work/deploy" --key release.pub --policy policy.yaml

step "The dashboard: the registry again, with serve --ui"
kill "$server" && wait "$server" 2>/dev/null || true
"$bin" serve --addr "$addr" --root "$work/registry" --ui --ui-addr "${DEMO_UI_ADDR:-127.0.0.1:0}" \
  --key release.pub --policy policy.yaml 2>"$work/serve-ui.log" &
server=$!
ui=""
for _ in $(seq 50); do
  ui=$(sed -n 's/.*dashboard at \(http:[^ ]*\)/\1/p' "$work/serve-ui.log")
  [ -n "$ui" ] && break
  sleep 0.1
done
[ -n "$ui" ] || { cat "$work/serve-ui.log"; echo "dashboard did not start" >&2; exit 1; }
models=$(curl -fsS "${ui}api/models")
case $models in *"demo/sentiment"*) ;; *) echo "the dashboard does not list demo/sentiment: $models" >&2; exit 1 ;; esac
echo "dashboard at $ui (models, versions, the model card, signatures, promotion history)"

printf '\nDemo finished: push, refused and passing promotion, verified pull.\n'
if [ "${DEMO_UI:-}" = 1 ]; then
  printf 'Open %s in a browser; Ctrl-C stops the registry and the dashboard.\n' "$ui"
  wait "$server"
else
  printf 'To browse it, run the demo with the dashboard kept open: DEMO_UI=1 make demo\n'
fi
