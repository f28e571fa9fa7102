#!/bin/bash
# Side-by-side speed of the transformer core against its peers (issue #3):
# SPLADE encoding against ONNX Runtime (../shared/tools/ort-peer, reordered
# pooling graph) and MLM training against PyTorch (../shared/tools/oracle
# bench.py, full-head and masked-head), alternating peer and spladapt shape
# by shape, all on two threads. Run from the repository root on an idle
# machine after `make setup`:
#
#   tools/benchpeers/run.sh [ROUNDS] > speed.txt
#
# Needs bin/spladapt, node with onnxruntime-node installed by
# ../shared/tools/ort-peer/run_all.sh into $ORT_WORK (default /tmp/ort-peer,
# which also holds the exported models), and Debian's python3-torch.
# Takes ~6 minutes per encoding round plus ~6 for training.
set -euo pipefail
ROUNDS=${1:-2}
SP=${SP:-bin/spladapt}
ORT_WORK=${ORT_WORK:-/tmp/ort-peer}
PEERS=${PEERS:-../shared/tools}
shapes=("bert-mini 4 256 4 1024 bert" "bert-small 4 512 8 2048 bert" "distilbert-base 6 768 12 3072 distilbert")
ours() { # task arch L H A F
	"$SP" bench model --config "" --threads 2 --arch "$2" --layers "$3" --hidden "$4" --heads "$5" --ff "$6" \
		--vocab 30522 --task "$1" --runs 5 --warmup 2 --json |
		python3 -c "import json,sys; d=json.load(sys.stdin); print('  spladapt', round(d['tokens_per_s']), 'tok/s', round(d['gflops'],1), 'GFLOPS of peak', round(d['peak_gflops'],1), 'rss MB', round(d['rss_mb']))"
}
echo "commit $(git rev-parse --short HEAD)"
for r in $(seq "$ROUNDS"); do
	for m in "${shapes[@]}"; do
		set -- $m
		echo "encode round $r $1 (load $(cut -d' ' -f1 /proc/loadavg))"
		node "$PEERS/ort-peer/bench_ort.js" --work "$ORT_WORK" --models "$1" --variants reordered --runs 5 --warmup 2 2>/dev/null | tail -1 |
			python3 -c "import json,sys; d=json.load(sys.stdin); print('  ort', d['tokens_per_s'], 'tok/s')"
		ours encode "$6" "$2" "$3" "$4" "$5"
	done
done
for m in "${shapes[@]}"; do
	set -- $m
	echo "mlm-train $1 (load $(cut -d' ' -f1 /proc/loadavg))"
	(cd "$PEERS/oracle" && /usr/bin/python3 bench.py --models "$1" --tasks mlm_train_step --masked-head 2>/dev/null) |
		python3 -c "
import json,sys
for l in sys.stdin:
    d=json.loads(l); print('  pytorch', d['task'], d['tokens_per_s'], 'tok/s')"
	ours mlm-train "$6" "$2" "$3" "$4" "$5"
done
