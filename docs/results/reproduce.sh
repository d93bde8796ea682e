#!/usr/bin/env bash
# The commands behind the README's "Results" sections. Usage, from the repository root in the installed environment:
#
#   bash docs/results/reproduce.sh nav-sweep   # 2D navigation: reservoir sweep of the reward-aware frozen RNN (1 seed x 30)
#   bash docs/results/reproduce.sh nav [base]  # 2D navigation: the six groups below, 3 seeds x 50 meta-batches ("base": 1 and 3)
#   bash docs/results/reproduce.sh hc [base]   # HalfCheetahDir: the six groups, 3 seeds x 100 meta-batches ("base": 1 and 3 only)
#   bash docs/results/reproduce.sh compare     # compare.py -> docs/results/memory/{2d-navigation-sweep,2d-navigation,halfcheetah-dir}/
#
# Groups (config : policy):
#   1 <family>.yaml : mlp                     MLP, observation only
#   2 <family>-reward.yaml : mlp              MLP, observation + previous action + previous reward (memoryless control)
#   3 <family>.yaml : rnn                     frozen-recurrence RNN, observation only
#   4 <family>-reward.yaml : rnn              frozen-recurrence RNN, observation + previous action + previous reward
#   5 <family>-reward-trained.yaml : rnn      as 4 with the recurrent weights trained too
#   6 <family>-rl2.yaml : rnn                 as 5 with fast-lr 0: adaptation by memory alone (RL^2)
#
# Every run is trained, then evaluated with test.py --adapt-steps 3 on 5 batches of fresh tasks. A run already
# evaluated is skipped and an interrupted one resumed, so re-running a command continues where it stopped.
# Two commands may run at once (e.g. "nav-sweep; nav" in one shell, "hc" in another): each run is claimed with a
# lock file, so two shells running the same command share its runs. Runs go to $RUNS (default: runs/).
set -euo pipefail
PY=${PYTHON:-python}
RUNS=${RUNS:-runs}
HC_BATCHES=${HC_BATCHES:-100}
NAV_BATCHES=${NAV_BATCHES:-50}
SWEEP_BATCHES=${SWEEP_BATCHES:-30}
SEEDS=${SEEDS:-"1 2 3"}
THREADS=${THREADS:-1}
BASE_GROUPS="base:mlp base:rnn"
REWARD_GROUPS="reward:mlp reward:rnn reward-trained:rnn rl2:rnn"

run() {  # folder config policy seed batches [extra train.py flags...]: train (or resume), then evaluate
    local run=$1 config=$2 policy=$3 seed=$4 batches=$5; shift 5
    mkdir -p "$run"
    exec 9>"$run/.lock"
    if ! flock -n 9; then echo "skip $run (another shell runs it)"; return 0; fi
    if [ -f "$run/results.json" ]; then echo "done $run"; exec 9>&-; return 0; fi
    if [ -f "$run/checkpoint.pt" ]; then
        $PY train.py --resume --output-folder "$run" --num-batches "$batches" --no-progress --threads "$THREADS"
    else
        $PY train.py --config "$config" --policy "$policy" --seed "$seed" --num-batches "$batches" \
            --output-folder "$run" --no-progress --threads "$THREADS" "$@"
    fi
    $PY test.py --run "$run" --adapt-steps 3 --num-batches 5 --no-progress --threads "$THREADS"
    exec 9>&-
}

groups() {  # family batches group...
    local family=$1 batches=$2; shift 2
    for seed in $SEEDS; do for group in "$@"; do
        local variant=${group%%:*} policy=${group##*:}
        local config="configs/$family.yaml"
        [ "$variant" = base ] || config="configs/$family-$variant.yaml"
        run "$RUNS/$(basename "$config" .yaml)-$policy-seed$seed" "$config" "$policy" "$seed" "$batches"
    done; done
}

nav_sweep() {  # spectral radius (null: PyTorch's initialisation, about 0.57-0.61) x leak, reward-aware frozen RNN
    for radius in null 0.9 1.0 1.2; do for leak in 1.0 0.3; do
        run "$RUNS/sweep/2d-navigation-reward-rnn-radius$radius-leak$leak" configs/2d-navigation-reward.yaml rnn 1 \
            "$SWEEP_BATCHES" --set "policy.spectral-radius=$radius" --set "policy.leak=$leak"
    done; done
}

compare() {
    shopt -s nullglob
    $PY compare.py "$RUNS"/sweep/2d-navigation-reward-rnn-radius*/ --output-folder docs/results/memory/2d-navigation-sweep
    $PY compare.py "$RUNS"/2d-navigation{,-reward,-reward-trained,-rl2}-{mlp,rnn}-seed*/ --output-folder docs/results/memory/2d-navigation
    $PY compare.py "$RUNS"/halfcheetah-dir{,-reward,-reward-trained,-rl2}-{mlp,rnn}-seed*/ --output-folder docs/results/memory/halfcheetah-dir
}

case "${1:-}" in
    nav-sweep) nav_sweep ;;
    nav) if [ "${2:-}" = base ]; then groups 2d-navigation "$NAV_BATCHES" $BASE_GROUPS
         else groups 2d-navigation "$NAV_BATCHES" $BASE_GROUPS $REWARD_GROUPS; fi ;;
    hc) if [ "${2:-}" = base ]; then groups halfcheetah-dir "$HC_BATCHES" $BASE_GROUPS
        else groups halfcheetah-dir "$HC_BATCHES" $BASE_GROUPS $REWARD_GROUPS; fi ;;
    compare) compare ;;
    *) echo "usage: $0 nav-sweep|nav [base]|hc [base]|compare" >&2; exit 2 ;;
esac
