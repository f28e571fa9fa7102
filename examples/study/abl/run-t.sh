#!/bin/sh
# Runs (or resumes) one target-MLM-length run of issue 14's ablations
# (this machine's paths; /work/exp/abl/rekey is "go build ./tools/rekey" at commit
# 321d729 — removed since: stage inputs are fingerprinted by content from ce2d8ae
# on, so a run made by the current binary needs no re-keying):
#   run-t.sh 62|1000
# It reuses the study's base, source-mlm, splade-source, bm25-T and
# index-zero-shot-T stages, copied into /work/runs/abl-tN. Two things stand
# in the way, and are handled here:
#  - stage keys hold absolute input paths (/work/runs/study/...): a private
#    mount namespace binds the copy over /work/runs/study for this process
#    alone, and the study binary (the code that made those stages) runs there;
#  - stage keys hold the corpora's modification times, which changed when
#    /work/shared/data was unpacked again: the files are checked against the
#    data README's sha256 (data.sha256), then tools/rekey re-keys the copied
#    stages.
n=$1
exec unshare -m sh -c '
set -e
mount --bind /work/runs/abl-t'$n' /work/runs/study
test -e /work/runs/study/.abl-copy-of-study   # the copy is mounted, not the study
sha256sum -c --quiet /work/exp/abl/data.sha256
D=/work/shared/data
/work/exp/abl/rekey -run /work/runs/study -accept $D/squad-v1.1-dev -accept $D/wikiqa -accept $D/med -accept $D/npl -accept $D/scifact \
  base source-mlm splade-source bm25-med bm25-npl bm25-scifact index-zero-shot-med index-zero-shot-npl index-zero-shot-scifact
cd /work/wt-abl
exec nice -n 19 /work/bin/spladapt-study --config examples/study/abl/t'$n'.yaml adapt --out /work/runs/study
'
