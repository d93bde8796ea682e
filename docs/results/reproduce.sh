#!/usr/bin/env bash
# Reproduces the README's "Results" section: 3 seeds x {mlp, rnn} on halfcheetah-dir and on 2D navigation,
# each run evaluated with test.py --adapt-steps 3, then compared with compare.py.
# Usage (from the repository root, in the installed environment):  bash docs/results/reproduce.sh [hc|nav|compare]
# The two task families can run at the same time on two cores ("hc" in one shell, "nav" in another), which is how
# the committed figures were produced; each run writes into runs/ (gitignored) and can be resumed with --resume.
set -euo pipefail
PY=${PYTHON:-python}
HC_BATCHES=${HC_BATCHES:-100}
NAV_BATCHES=${NAV_BATCHES:-50}
SEEDS=${SEEDS:-"1 2 3"}

train_and_test() {  # config policy seed batches [extra train.py flags...]
    local config=$1 policy=$2 seed=$3 batches=$4; shift 4
    local run="runs/$(basename "$config" .yaml)-$policy-seed$seed"
    if [ -f "$run/checkpoint.pt" ]; then
        $PY train.py --resume --output-folder "$run" --num-batches "$batches" --no-progress "$@"
    else
        $PY train.py --config "$config" --policy "$policy" --seed "$seed" --num-batches "$batches" \
            --output-folder "$run" --no-progress "$@"
    fi
    $PY test.py --run "$run" --adapt-steps 3 --num-batches 5 --no-progress "$@"
}

hc() {
    for seed in $SEEDS; do for policy in mlp rnn; do
        train_and_test configs/halfcheetah-dir.yaml "$policy" "$seed" "$HC_BATCHES"
    done; done
}

nav() {
    for seed in $SEEDS; do for policy in mlp rnn; do
        train_and_test configs/2d-navigation.yaml "$policy" "$seed" "$NAV_BATCHES" --threads 1
    done; done
}

compare() {
    $PY compare.py runs/halfcheetah-dir-{mlp,rnn}-seed* --output-folder docs/results/halfcheetah-dir
    $PY compare.py runs/2d-navigation-{mlp,rnn}-seed* --output-folder docs/results/2d-navigation
}

case "${1:-all}" in
    hc) hc ;;
    nav) nav ;;
    compare) compare ;;
    all) hc; nav; compare ;;
    *) echo "usage: $0 [hc|nav|compare|all]" >&2; exit 2 ;;
esac
