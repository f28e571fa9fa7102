#!/bin/sh
# drift.sh LABEL RUNDIR TARGET...: "spladapt adapt drift" of RUNDIR's
# adapted-T model against its splade-source model (the zero-shot model,
# P_domain(source) + P_task), on 200 SQuAD passages (source text) and on 200
# documents of T (target text); JSON in /work/exp/abl/drift/.
# /work/exp/abl/spladapt-ab72c5c is bin/spladapt built at commit ab72c5c.
label=$1; run=$2; shift 2
mkdir -p /work/exp/abl/drift
for t in "$@"; do
  for text in source target; do
    c=/work/shared/data/squad-v1.1-dev; [ $text = target ] && c=/work/shared/data/$t
    out=/work/exp/abl/drift/$label-$t-$text.json
    [ -s $out ] && continue
    nice -n 19 /work/exp/abl/spladapt-ab72c5c --config /work/wt-abl/examples/study/adapt-nine.yaml adapt drift \
      --a $run/splade-source/model --b $run/adapted-$t/model --corpus $c --n 200 --json > $out.tmp && mv $out.tmp $out || exit 1
  done
done
