#!/usr/bin/env bash
# The competent-retriever recipe on the shared data: base MLM from scratch,
# two stages of inference-free SPLADE, then the tables of the nine targets
# and of the source dev set, next to BM25 and their fusion.
#
#   examples/recipe/run.sh [RUNS_DIR] [DATA_DIR]     (defaults: runs, ../shared/data)
#
# RECIPE_CONFIGS=DIR takes each step's config from DIR when DIR has it
# (base.yaml, splade-stage1.yaml, splade-stage2.yaml), else from here: a
# variant of the recipe is a directory of the files it changes
# (examples/experiments/mini: the same recipe at BERT-mini's shape).
#
# A step is done when RUNS_DIR/recipe-times.tsv records it (one line per
# finished step: name, seconds of its last attempt) and its output exists.
# Training writes its best model so far to its output while it runs, so an
# output alone does not mean a finished step. An interrupted step resumes
# from its checkpoint when the script is run again; finished steps are
# reused. RECIPE_BIN names the spladapt binary (default bin/spladapt).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
runs="${1:-runs}"
data="${2:-../shared/data}"
bin="${RECIPE_BIN:-$root/bin/spladapt}"
mkdir -p "$runs"
cfg() { # the config of one step: RECIPE_CONFIGS's if it has one, else the recipe's
	if [[ -n "${RECIPE_CONFIGS:-}" && -e "$RECIPE_CONFIGS/$1" ]]; then
		echo "$RECIPE_CONFIGS/$1"
	else
		echo "$here/$1"
	fi
}
times="$runs/recipe-times.tsv"

step() { # name output command...
	local name="$1" out="$2"; shift 2
	if [[ -e "$out" && -e "$times" ]] && cut -f1 "$times" | grep -qx "$name"; then
		echo "== $name: done, $out reused"
		return
	fi
	echo "== $name"
	local t0=$SECONDS
	"$@"
	printf '%s\t%d\n' "$name" $((SECONDS - t0)) >>"$times"
}

src=(--corpus "$data/squad-v1.1-dev" --corpus "$data/wikiqa")
train=(--train "$data/squad-v1.1-dev" --train "$data/wikiqa")

step base "$runs/base/config.json" \
	"$bin" --config "$(cfg base.yaml)" pretrain --from-scratch --resume "${src[@]}" --out "$runs/base"
step splade-stage1 "$runs/splade-stage1/config.json" \
	"$bin" --config "$(cfg splade-stage1.yaml)" train splade --resume --init "$runs/base" "${train[@]}" \
	--out "$runs/splade-stage1"
step splade-stage2 "$runs/splade/config.json" \
	"$bin" --config "$(cfg splade-stage2.yaml)" train splade --resume --init "$runs/splade-stage1" "${train[@]}" \
	--dev "$data/squad-v1.1-dev" --out "$runs/splade"
targets=()
for c in adi cacm cisi climate-fever-evidence cranfield lisa med npl scifact; do
	targets+=(--collection "$c")
done
step table-targets "$runs/table.md" \
	"$bin" --config "$(cfg splade-stage2.yaml)" splade table --model "$runs/splade" --data "$data" \
	--work "$runs/table" "${targets[@]}" --out "$runs/table.md"
step table-source-dev "$runs/table-source.md" \
	"$bin" --config "$(cfg splade-stage2.yaml)" splade table --model "$runs/splade" --data "$data" \
	--work "$runs/table" --collection squad-v1.1-dev --out "$runs/table-source.md"
echo "== stage times (seconds)"
cat "$times"
