#!/usr/bin/env bash
# The commands behind the README's "Results" sections, as sweep.py calls. From the repository root, installed:
#
#   bash docs/results/reproduce.sh nav-sweep   # 2D navigation: reservoir sweep of the reward-aware frozen RNN (1 seed x 30)
#   bash docs/results/reproduce.sh nav         # 2D navigation: the six groups below, 3 seeds x 50 meta-batches
#   bash docs/results/reproduce.sh hc          # HalfCheetahDir: the six groups, 3 seeds x 100 meta-batches
#   bash docs/results/reproduce.sh ant         # AntDir: MLP and RNN (observation only), 2 seeds x 150 meta-batches ($ANT_SEEDS)
#   bash docs/results/reproduce.sh compare     # compare.py -> docs/results/memory/*, docs/results/ant-dir/
#   bash docs/results/reproduce.sh plasticity  # the plasticity experiment's HalfCheetahDir groups (in progress, see below)
#   bash docs/results/reproduce.sh plasticity-small  # its plastic groups at the matched small size (see below)
#   bash docs/results/reproduce.sh credit      # credit for the pre-update policy: four HalfCheetahDir groups (below)
#   bash docs/results/reproduce.sh credit-compare  # compare.py -> docs/results/credit
#   bash docs/results/reproduce.sh fork        # the original fork's open questions (see below)
#   bash docs/results/reproduce.sh fork-compare  # compare.py -> docs/results/fork/{swimmer,small,cells}
#
# Groups of the reward-memory experiment (config : policy):
#   1 <family>.yaml : mlp                     MLP, observation only
#   2 <family>-reward.yaml : mlp              MLP, observation + previous action + previous reward (memoryless control)
#   3 <family>.yaml : rnn                     frozen-recurrence RNN, observation only
#   4 <family>-reward.yaml : rnn              frozen-recurrence RNN, observation + previous action + previous reward
#   5 <family>-reward-trained.yaml : rnn      as 4 with the recurrent weights trained too
#   6 <family>-rl2.yaml : rnn                 as 5 with fast-lr 0: adaptation by memory alone (RL^2)
#
# Groups of the plasticity experiment (HalfCheetahDir, 100 meta-batches, seeds $PLASTIC_SEEDS, default 1-5):
#   7 halfcheetah-dir-reservoir.yaml : rnn    frozen RNN + reward inputs, fast-lr 0 (the frozen circuit trained for memory)
#  11 halfcheetah-dir-memoryless.yaml : mlp   MLP + reward inputs, fast-lr 0 (the memoryless control)
#   8 halfcheetah-dir-hebbian.yaml : rnn      7 with Hebbian plastic synapses        } about 33-54 GB per meta-batch at
#   9 halfcheetah-dir-neuromodulated.yaml     7 with neuromodulated plastic synapses } this size: preflight refuses them
#  10 halfcheetah-dir-neuromodulated-maml     9 with MAML's inner step               } on a smaller machine
# The matched small design (plasticity-small, into $RUNS/plasticity-h16/): groups 7, 8, 9 and 10 with
# policy.hidden-sizes [16, 16], where a plastic meta-batch takes about 3-4.4 GB and a few times the frozen one's time
#
# Every run is a train.py run folder trained by sweep.py (Ray Tune trials, one CPU each, as many at once as there
# are cores), then evaluated with test.py --adapt-steps 3 on 5 batches of fresh tasks (--evaluate). Re-running a
# command skips finished runs and resumes interrupted ones. Runs go under $RUNS (default: runs/); set
# ADDRESS=auto (or ray://HOST:PORT) to run the trials on an existing Ray cluster.
#
# Credit for the pre-update policy (HalfCheetahDir, 100 meta-batches, seeds $CREDIT_SEEDS, default 1-5, into
# $RUNS/credit/): halfcheetah-dir.yaml : mlp with inner-loss reinforce (MAML-TRPO), lvc (LVC + TRPO) and lvc with
# outer-step ppo (ProMP), and halfcheetah-dir-reward.yaml : rnn with inner-loss lvc (the frozen memory, credited)
#
# The original fork's open questions (100 meta-batches each, into $RUNS/fork/):
#   swimmer  swimmer-dir.yaml : mlp, rnn (observation only, the fork's setup) and rnn with reward inputs, seeds $SEEDS
#   small    halfcheetah-dir.yaml : mlp, rnn at policy.hidden-sizes [16, 16] and fast-batch-size 5, seeds $SMALL_SEEDS
#            (default 1-5), compared beside the shipped-size groups 1 and 3 of "hc" with the thresholds fixed in
#            advance: --level 100 (about half the final post-adaptation return of the shipped runs) and
#            --fall-back 50 (five times the meta-batch-to-meta-batch spread of that return, about 10)
#   cells    halfcheetah-dir-reservoir.yaml : rnn with policy.cell gru and lstm (frozen, reward inputs, fast-lr 0),
#            seeds $SEEDS, beside the rnn cell's group 7 of "plasticity"
set -euo pipefail
PY=${PYTHON:-python}
RUNS=${RUNS:-runs}
SEEDS=${SEEDS:-1,2,3}
ANT_SEEDS=${ANT_SEEDS:-1,2}

sweep() {  # sweep.py flags...: one CPU per run, then test.py on every finished run
    $PY sweep.py --threads-per-run 1 ${ADDRESS:+--address "$ADDRESS"} --evaluate \
        --test-args "--adapt-steps 3 --num-batches 5" "$@"
}

groups() {  # family meta-batches: the six groups, one sweep per config, all into $RUNS/<family>/
    local family=$1 batches=$2 out="$RUNS/$1"
    sweep --config "configs/$family.yaml" --policies mlp,rnn --seeds "$SEEDS" --set "num-batches=$batches" --output-folder "$out"
    sweep --config "configs/$family-reward.yaml" --policies mlp,rnn --seeds "$SEEDS" --set "num-batches=$batches" --output-folder "$out"
    sweep --config "configs/$family-reward-trained.yaml" --policies rnn --seeds "$SEEDS" --set "num-batches=$batches" --output-folder "$out"
    sweep --config "configs/$family-rl2.yaml" --policies rnn --seeds "$SEEDS" --set "num-batches=$batches" --output-folder "$out"
}

nav_sweep() {  # spectral radius (null: PyTorch's initialisation, about 0.57-0.65) x leak, reward-aware frozen RNN
    for radius in null 0.9 1.0 1.2; do for leak in 1.0 0.3; do
        sweep --config configs/2d-navigation-reward.yaml --policies rnn --seeds 1 --set num-batches=30 \
            --set "policy.spectral-radius=$radius" --set "policy.leak=$leak" \
            --output-folder "$RUNS/2d-navigation-sweep/radius$radius-leak$leak"
    done; done
}

compare_into() {  # output-folder run-folder...: compare.py, skipped when no run folder exists yet
    local out=$1; shift
    if [ $# -eq 0 ]; then echo "no runs for $out yet, skipped" >&2; return 0; fi
    $PY compare.py "$@" --output-folder "$out"
}

compare() {
    shopt -s nullglob
    compare_into docs/results/memory/2d-navigation-sweep "$RUNS"/2d-navigation-sweep/radius*/2d-navigation-reward-rnn-seed1/
    compare_into docs/results/memory/2d-navigation \
        "$RUNS"/2d-navigation/2d-navigation{,-reward,-reward-trained,-rl2}-{mlp,rnn}-seed*/
    compare_into docs/results/memory/halfcheetah-dir \
        "$RUNS"/halfcheetah-dir/halfcheetah-dir{,-reward,-reward-trained,-rl2}-{mlp,rnn}-seed*/
    compare_into docs/results/ant-dir "$RUNS"/ant-dir/ant-dir-{mlp,rnn}-seed*/
}

plasticity() {
    local seeds=${PLASTIC_SEEDS:-1,2,3,4,5} out="$RUNS/plasticity"
    sweep --config configs/halfcheetah-dir-reservoir.yaml --policies rnn --seeds "$seeds" --set num-batches=100 --output-folder "$out"
    sweep --config configs/halfcheetah-dir-memoryless.yaml --policies mlp --seeds "$seeds" --set num-batches=100 --output-folder "$out"
}

plasticity_small() {
    local seeds=${PLASTIC_SEEDS:-1,2,3,4,5} out="$RUNS/plasticity-h16"
    for config in reservoir hebbian neuromodulated neuromodulated-maml; do
        sweep --config "configs/halfcheetah-dir-$config.yaml" --policies rnn --seeds "$seeds" --set num-batches=100 \
            --set "policy.hidden-sizes=[16, 16]" --output-folder "$out"
    done
}

credit() {
    local seeds=${CREDIT_SEEDS:-1,2,3,4,5} out="$RUNS/credit"
    sweep --config configs/halfcheetah-dir.yaml --policies mlp --seeds "$seeds" --set num-batches=100 --output-folder "$out/maml-trpo"
    sweep --config configs/halfcheetah-dir.yaml --policies mlp --seeds "$seeds" --set num-batches=100 --set inner-loss=lvc \
        --output-folder "$out/lvc-trpo"
    sweep --config configs/halfcheetah-dir.yaml --policies mlp --seeds "$seeds" --set num-batches=100 --set inner-loss=lvc \
        --set outer-step=ppo --output-folder "$out/promp"
    sweep --config configs/halfcheetah-dir-reward.yaml --policies rnn --seeds "$seeds" --set num-batches=100 --set inner-loss=lvc \
        --output-folder "$out/lvc-trpo-frozen-rnn"
}

REWARD_INPUTS="policy.inputs=[observation, previous-action, previous-reward]"

fork() {
    local out="$RUNS/fork"
    sweep --config configs/swimmer-dir.yaml --policies mlp,rnn --seeds "$SEEDS" --set num-batches=100 --output-folder "$out/swimmer"
    sweep --config configs/swimmer-dir.yaml --policies rnn --seeds "$SEEDS" --set num-batches=100 --set "$REWARD_INPUTS" \
        --output-folder "$out/swimmer-reward"
    sweep --config configs/halfcheetah-dir.yaml --policies mlp,rnn --seeds "${SMALL_SEEDS:-1,2,3,4,5}" --set num-batches=100 \
        --set "policy.hidden-sizes=[16, 16]" --set fast-batch-size=5 --output-folder "$out/small"
    for cell in gru lstm; do
        sweep --config configs/halfcheetah-dir-reservoir.yaml --policies rnn --seeds "$SEEDS" --set num-batches=100 \
            --set "policy.cell=$cell" --output-folder "$out/$cell"
    done
}

fork_compare() {
    shopt -s nullglob
    compare_into docs/results/fork/swimmer "$RUNS"/fork/swimmer{,-reward}/swimmer-dir-*-seed*/
    local small=("$RUNS"/fork/small/halfcheetah-dir-*-seed*/)
    if [ ${#small[@]} -gt 0 ]; then
        $PY compare.py "${small[@]}" "$RUNS"/halfcheetah-dir/halfcheetah-dir-{mlp,rnn}-seed*/ --level 100 --fall-back 50 \
            --output-folder docs/results/fork/small
    fi
    compare_into docs/results/fork/cells "$RUNS"/fork/{gru,lstm}/halfcheetah-dir-reservoir-rnn-seed*/ \
        "$RUNS"/plasticity/halfcheetah-dir-reservoir-rnn-seed*/
}

credit_compare() {
    shopt -s nullglob
    compare_into docs/results/credit "$RUNS"/credit/{maml-trpo,lvc-trpo,promp}/halfcheetah-dir-mlp-seed*/ \
        "$RUNS"/credit/lvc-trpo-frozen-rnn/halfcheetah-dir-reward-rnn-seed*/
}

case "${1:-}" in
    nav-sweep) nav_sweep ;;
    nav) groups 2d-navigation 50 ;;
    hc) groups halfcheetah-dir 100 ;;
    ant) sweep --config configs/ant-dir.yaml --policies mlp,rnn --seeds "$ANT_SEEDS" --set num-batches=150 \
             --output-folder "$RUNS/ant-dir" ;;
    compare) compare ;;
    plasticity) plasticity ;;
    plasticity-small) plasticity_small ;;
    credit) credit ;;
    credit-compare) credit_compare ;;
    fork) fork ;;
    fork-compare) fork_compare ;;
    *) echo "usage: $0 nav-sweep|nav|hc|ant|compare|plasticity|plasticity-small|credit|credit-compare|fork|fork-compare" >&2; exit 2 ;;
esac
