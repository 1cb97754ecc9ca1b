#!/usr/bin/env bash
# One-factor ablations of the embedded recipe (issue 14), each a full `text2token pipeline` run whose
# stage-2 model is scored on the quick-100 cut at 512 tokens beside the untrained backbone.
#   bash scripts/recipe_ablation.sh ROOT [VARIANT ...]      (default: every variant, in order)
#   bash scripts/recipe_ablation.sh ROOT table               (every finished variant's stage 2 on one table)
# A variant that only changes stage 2 reuses ROOT/base/stage1 when it is complete (the pipeline skips a
# complete stage). Results: ROOT/<variant>/eval/summary.md; a stage's train time in its training_complete.json.
# The gcide, mix, s1_gcide, s2_gcide and gcide_defs variants need `python scripts/build_gcide_corpus.py` first.
set -euo pipefail
root=${1:?usage: recipe_ablation.sh ROOT [VARIANT ...]}; shift || true
here=$(cd "$(dirname "$0")/.." && pwd)
declare -A stage1 stage2 reuse
# `base` is the main recipe as shipped; every other variant changes one lever of it.
stage1[base]="";                           stage2[base]=""
stage1[s2_rows1024]="";                    stage2[s2_rows1024]="--max_train_samples 1024 --max_steps 64";  reuse[s2_rows1024]=1
stage1[s1_idf]="--weighting idf";          stage2[s1_idf]=""
stage1[s1_lr5e-4]="--learning_rate 5e-4";  stage2[s1_lr5e-4]=""
stage1[s1_steps200]="--max_steps 200";     stage2[s1_steps200]=""
stage1[s2_tau1e-3]="";                     stage2[s2_tau1e-3]="--target_temperature 1e-3";                 reuse[s2_tau1e-3]=1
stage1[s2_lr5e-4]="";                      stage2[s2_lr5e-4]="--learning_rate 5e-4";                        reuse[s2_lr5e-4]=1
stage1[bidir]="--attention bidirectional"; stage2[bidir]="--attention bidirectional"
# Last-token pooling with PromptEOL (the model's default prompt); stage 2's tau follows it (1e-5).
stage1[last]="--pooling last";             stage2[last]="--pooling last"
# The training corpus: GCIDE (dictionary prose, literary quotations, whole entries) instead of WordNet
# in both stages; build it first with `python scripts/build_gcide_corpus.py`. `gcide_len128` also
# trains at 128 tokens, since GCIDE's notes and entries run past 64.
stage1[gcide]="--corpus gcide";            stage2[gcide]="--corpus gcide"
stage1[gcide_len128]="--corpus gcide --max_length 128"; stage2[gcide_len128]="--corpus gcide --max_length 128"
# Both corpora, every text of each, shuffled together (seed 0): ROOT/mix_corpus.parquet, written below.
stage1[mix]="--corpus $root/mix_corpus.parquet"; stage2[mix]="--corpus $root/mix_corpus.parquet"
# GCIDE's one-sense definitions only (no quotations, notes or entries): ROOT/gcide_defs_corpus.parquet.
stage1[gcide_defs]="--corpus $root/gcide_defs_corpus.parquet"; stage2[gcide_defs]="--corpus $root/gcide_defs_corpus.parquet"
# GCIDE in one stage only: stage 1 (content-word targets) or stage 2 (from the main recipe's stage 1).
stage1[s1_gcide]="--corpus gcide";         stage2[s1_gcide]=""
stage1[s2_gcide]="";                       stage2[s2_gcide]="--corpus gcide";                               reuse[s2_gcide]=1
# Stage-1 targets keep the negations (NLTK's list less no, nor, not): glosses such as "not capable of"
# otherwise share their targets with "capable of". ROOT/stopwords_keep_negation.txt, written below.
stage1[s1_keepneg]="--stopwords $root/stopwords_keep_negation.txt"; stage2[s1_keepneg]=""
variants=("$@"); [ ${#variants[@]} -gt 0 ] || variants=(base s2_rows1024 s1_idf s1_lr5e-4 s1_steps200 s2_tau1e-3 s2_lr5e-4 bidir last gcide gcide_len128 mix s1_gcide s2_gcide gcide_defs)
if [ "${variants[0]}" = table ]; then
  # One evaluation call, so every variant is scored on the same task instances and random draws
  # (embeddings are cached from each variant's own run, so this only re-scores).
  args=()
  for done in "$root"/*/stage2/training_complete.json; do
    v=$(basename "$(dirname "$(dirname "$done")")"); args+=(--model "$root/$v/stage2" --label "$v")
  done
  exec "$here/.venv/bin/text2token" evaluate "${args[@]}" --baselines untrained tfidf --quick 100 \
    --output_dir "$root/table"
fi
# ROOT/<file>, once, written atomically by a Python statement that writes sys.argv[1].
derived() {
  local path="$root/$1"
  [ -f "$path" ] && return
  "$here/.venv/bin/python" -c "import sys, datasets; from text2token.corpora import load_corpus; $2" "$path.tmp"
  mv "$path.tmp" "$path"
}
for v in "${variants[@]}"; do
  case $v in
    mix) derived mix_corpus.parquet 'datasets.concatenate_datasets([load_corpus(n).select_columns(["text"]) for n in ("wordnet-glosses", "gcide")]).shuffle(seed=0).flatten_indices().to_parquet(sys.argv[1])' ;;
    gcide_defs) derived gcide_defs_corpus.parquet 'load_corpus("gcide").filter(lambda kind: kind == "definition", input_columns="kind").to_parquet(sys.argv[1])' ;;
    s1_keepneg) derived stopwords_keep_negation.txt 'from text2token.targets import nltk_english_stopwords as n; open(sys.argv[1], "w").write("\n".join(sorted(n() - {"no", "nor", "not"})) + "\n")' ;;
  esac
  out="$root/$v"
  if [ -n "${reuse[$v]:-}" ] && [ -f "$root/base/stage1/training_complete.json" ] && [ ! -e "$out/stage1" ]; then
    mkdir -p "$out" && cp -r "$root/base/stage1" "$out/stage1"
  fi
  echo "== $v  stage1: ${stage1[$v]:-(recipe)}  stage2: ${stage2[$v]:-(recipe)}  $(date -u +%T)"
  "$here/.venv/bin/text2token" pipeline --output_root "$out" --stage1_args "${stage1[$v]}" --stage2_args "${stage2[$v]}"
done
