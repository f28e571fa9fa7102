#!/bin/bash
# AVX2 against AVX-512 kernels side by side in one run (issue #19): the
# fused-kernel micro-benchmarks (nn BenchmarkKernels: SPLADE pooling,
# attention, GELU, softmax cross-entropy) and "spladapt bench model
# --kernels avx2,avx512" (both levels on one model, runs alternating) for
# encoding (32×256) and MLM training (16×128) of bert-mini, bert-small and
# distilbert-base, on two threads. The load average is printed beside every
# figure; cpu-ms (process CPU time) is the figure to read on a loaded
# machine. Run from the repository root on a CPU with AVX-512:
#
#   tools/benchkernels/run.sh [ROUNDS] > avx512.txt
#
# RUNS / WARMUP set bench model's timed and warm-up runs (default 5 / 2);
# TASKS (default "encode mlm-train"), SHAPES (default all three) and
# MICRO=0 (skip the micro-benchmarks) shorten it. ORT=1 also times ONNX
# Runtime (../shared/tools/ort-peer/bench_ort.js, reordered graph, two
# intra-op threads) before each encoding shape, as tools/benchpeers/run.sh
# does; it needs $ORT_WORK (default /tmp/ort-peer) prepared by
# ../shared/tools/ort-peer/run_all.sh.
set -euo pipefail
ROUNDS=${1:-1}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-2}
TASKS=${TASKS:-encode mlm-train}
SHAPES=${SHAPES:-bert-mini bert-small distilbert-base}
MICRO=${MICRO:-1}
ORT=${ORT:-0}
ORT_WORK=${ORT_WORK:-/tmp/ort-peer}
PEERS=${PEERS:-../shared/tools}
SP=${SP:-bin/spladapt}
load() { cut -d' ' -f1-3 /proc/loadavg; }
declare -A shape=([bert-mini]="bert 4 256 4 1024" [bert-small]="bert 4 512 8 2048" [distilbert-base]="distilbert 6 768 12 3072")

echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- nn cmd || echo ' (modified)')"
echo "cpu $(lscpu | sed -n 's/^Model name: *//p') (family $(lscpu | sed -n 's/^CPU family: *//p') model $(lscpu | sed -n 's/^Model: *//p')), $(nproc) CPUs"
echo "avx512: $(grep -o 'avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
go build -o "$SP" ./cmd/spladapt
if [ "$MICRO" = 1 ]; then
	go test -c -o /tmp/nn-avx512.test ./nn
fi
for r in $(seq "$ROUNDS"); do
	if [ "$MICRO" = 1 ]; then
		# (go test matches -bench element by element between the slashes)
		for op in op=pool-infer/hidden=256 op=pool-forward/hidden=256 op=pool-infer/hidden=768 op=pool-forward/hidden=768 \
			op=attention/len=256/head=64 op=gelu op=gelu-backward op=softmax-xent; do
			for k in avx2 avx512; do
				echo "micro round $r $op $k (load $(load))"
				/tmp/nn-avx512.test -test.run '^$' -test.bench "^BenchmarkKernels\$/^$op\$/^kernels=$k\$" -test.benchtime "$(case $op in op=pool*) echo 3x ;; *) echo 30x ;; esac)" | grep '^Benchmark' || true
			done
		done
	fi
	for task in $TASKS; do
		for s in $SHAPES; do
			set -- ${shape[$s]}
			if [ "$ORT" = 1 ] && [ "$task" = encode ]; then
				echo "ort round $r $s (load $(load))"
				node "$PEERS/ort-peer/bench_ort.js" --work "$ORT_WORK" --models "$s" --variants reordered --runs "$RUNS" --warmup "$WARMUP" 2>/dev/null | tail -1 |
					python3 -c "import json,sys; d=json.load(sys.stdin); print('  ort', d['tokens_per_s'], 'tok/s')"
			fi
			echo "$task round $r $s (load $(load))"
			"$SP" bench model --config "" --threads 2 --arch "$1" --layers "$2" --hidden "$3" --heads "$4" --ff "$5" --vocab 30522 \
				--task "$task" --runs "$RUNS" --warmup "$WARMUP" --peak=false --kernels avx2,avx512 --json |
				python3 -c "
import json,sys,statistics as st
d=json.load(sys.stdin); a,b=d['by_kernels']
for l in (a,b):
    print('  %-6s %7.0f tok/s  wall %8.1f ms  cpu %8.1f ms/batch (medians of %d; cpu runs %s)' % (l['kernels'], l['tokens_per_s'], l['ms_per_batch'], st.median(l['cpu_ms_runs']), len(l['ms_runs']), ' '.join('%.0f' % x for x in l['cpu_ms_runs'])))
print('  speed-up of avx512 over avx2: wall %.3f  cpu %.3f' % (a['ms_per_batch']/b['ms_per_batch'], st.median(a['cpu_ms_runs'])/st.median(b['cpu_ms_runs'])))"
			echo "  (load after $(load))"
		done
	done
done
