#!/usr/bin/env bash
# Re-ranking table of issue 15: every re-ranker re-scores BM25's top 100 on
# the source dev set and the nine targets; "spladapt compare" tests each
# against BM25 (paired t, Holm-adjusted over the re-rankers), and
# tools/reportsum puts the per-collection reports into one table.
#
#   tools/cetable/run.sh WORK DATA CONFIG NAME=MODEL [NAME=MODEL ...]
#
# WORK keeps the BM25 runs, re-ranked runs and reports (re-used when
# present, so an interrupted run continues); CONFIG is the settings file
# (rerank.max_length, rerank.score_batch_size). The table goes to
# WORK/table.md. A MICE model re-ranks with its document states computed
# on the fly (the same scores as from a store). COLLECTIONS="a b" limits
# the collections.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${CETABLE_BIN:-$root/bin/spladapt}"
work="$1" data="$2" cfg="$3"
shift 3
collections=(${COLLECTIONS:-squad-v1.1-dev adi cacm cisi climate-fever-evidence cranfield lisa med npl scifact})
mkdir -p "$work"
args=()
for c in "${collections[@]}"; do
	d="$work/$c"
	mkdir -p "$d"
	split=test
	[[ -e "$data/$c/qrels/test.tsv" ]] || split=dev
	qrels="$data/$c/qrels/$split.tsv"
	if [[ ! -e "$d/bm25.trec" ]]; then
		[[ -d "$d/bm25" ]] || "$bin" --config "$cfg" bm25 index --corpus "$data/$c" --out "$d/bm25"
		"$bin" --config "$cfg" bm25 search --index "$d/bm25" --queries "$data/$c/queries.jsonl" \
			--qrels "$qrels" -k 100 --run "$d/bm25.trec.tmp"
		mv "$d/bm25.trec.tmp" "$d/bm25.trec"
	fi
	runs=() names=(--name BM25)
	for nm in "$@"; do
		name="${nm%%=*}" model="${nm#*=}"
		if [[ ! -e "$d/$name.trec" ]]; then
			echo "== $c: $name"
			"$bin" --config "$cfg" rerank --model "$model" --queries "$data/$c/queries.jsonl" \
				--corpus "$data/$c" --run "$d/bm25.trec" --depth 100 --out "$d/$name.trec"
		fi
		runs+=("$d/$name.trec") names+=(--name "$name")
	done
	"$bin" --config "$cfg" compare --qrels "$qrels" --baseline "$d/bm25.trec" "${runs[@]}" "${names[@]}" \
		-m nDCG@10 -m RR@10 --title "$c ($split): re-rankers vs BM25" --out "$d/report" --force >/dev/null
	args+=("$c=$d/report/report.json")
done
(cd "$root" && go run ./tools/reportsum -m nDCG@10 -m RR@10 "${args[@]}") >"$work/table.md.tmp"
mv "$work/table.md.tmp" "$work/table.md"
cat "$work/table.md"
