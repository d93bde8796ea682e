#!/usr/bin/env bash
# The commands behind the README's "Results" sections, as sweep.py calls. From the repository root, installed:
#
#   bash docs/results/reproduce.sh nav-sweep   # 2D navigation: reservoir sweep of the reward-aware frozen RNN (1 seed x 30)
#   bash docs/results/reproduce.sh nav         # 2D navigation: the six groups below, 3 seeds x 50 meta-batches
#   bash docs/results/reproduce.sh hc          # HalfCheetahDir: the six groups, 3 seeds x 100 meta-batches
#   bash docs/results/reproduce.sh ant         # AntDir: MLP and RNN (observation only), 2 seeds x 150 meta-batches ($ANT_SEEDS)
#   bash docs/results/reproduce.sh compare     # compare.py -> docs/results/memory/*, docs/results/ant-dir/
#   bash docs/results/reproduce.sh plasticity  # the plasticity experiment's HalfCheetahDir groups 7, 11 and 1, 4, 6
#   bash docs/results/reproduce.sh plasticity-small  # its plastic groups at the matched small size (see below)
#   bash docs/results/reproduce.sh plasticity-ant  # its group 7 on AntDir, 150 meta-batches, seeds $ANT_SEEDS
#   bash docs/results/reproduce.sh plasticity-nav  # its groups 7 and 9 on 2D navigation at [16, 16] units, seeds $SEEDS
#   bash docs/results/reproduce.sh plasticity-compare  # compare.py -> docs/results/plasticity/*
#   bash docs/results/reproduce.sh credit      # credit for the pre-update policy: four HalfCheetahDir groups (below)
#   bash docs/results/reproduce.sh credit-compare  # compare.py -> docs/results/credit
#   bash docs/results/reproduce.sh fork        # the original fork's open questions (see below)
#   bash docs/results/reproduce.sh fork-compare  # compare.py -> docs/results/fork/{swimmer,small,cells}
#   bash docs/results/reproduce.sh keep        # keep every unfinished run of $RUNS in $UNFINISHED (below)
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
# The *-compare commands read each run from $RUNS where it is there, else its run record committed under
# $RECORDS (default: docs/results/records/, a slim mirror of $RUNS: see "Run records" in docs/usage.md), and save
# every finished run they compare as a record there: seeds run on different days or machines add up.
#
# A run that one machine cannot finish goes on on another: `keep` copies each unfinished run's config, checkpoint
# and metrics (the files train.py --resume needs, about 100 kB) to $UNFINISHED (default: docs/results/unfinished/,
# <parent folder>/<run name> as for records); every sweep below first copies those of its output folder back
# into $RUNS where $RUNS lacks them, so it continues them exactly; a run's copy is dropped once its record is saved.
#
# Every run is a train.py run folder trained by sweep.py (Ray Tune trials, one CPU each, as many at once as there
# are cores), then evaluated with test.py --adapt-steps 3 on 5 batches of fresh tasks (--evaluate). Re-running a
# command skips finished runs and resumes interrupted ones. Runs go under $RUNS (default: runs/); set
# ADDRESS=auto (or ray://HOST:PORT) to run the trials on an existing Ray cluster.
#
# Credit for the pre-update policy (HalfCheetahDir, 100 meta-batches, seeds $CREDIT_SEEDS, default 1-5, into
# $RUNS/credit/): halfcheetah-dir.yaml : mlp with inner-loss lvc (LVC + TRPO) and lvc with outer-step ppo (ProMP),
# and halfcheetah-dir-reward.yaml : rnn with inner-loss lvc (the frozen memory, credited), beside MAML-TRPO
# (inner-loss reinforce), which is the plasticity experiment's group 1 (halfcheetah-dir.yaml : mlp, same seeds)
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
RECORDS=${RECORDS:-docs/results/records}
UNFINISHED=${UNFINISHED:-docs/results/unfinished}
MOVABLE=(config.yaml checkpoint.pt metrics.jsonl)  # what resuming a run needs (maml_rl.training.log.MOVABLE)
SEEDS=${SEEDS:-1,2,3}
ANT_SEEDS=${ANT_SEEDS:-1,2}

unfinished_back() {  # output-folder: copy its kept unfinished runs back where the folder lacks them
    local out=$1 kept
    shopt -s nullglob
    for kept in "$UNFINISHED/$(basename "$out")"/*/; do
        kept=${kept%/}
        [ -e "$out/$(basename "$kept")" ] && continue
        mkdir -p "$out/$(basename "$kept")"
        cp "$kept"/* "$out/$(basename "$kept")/"
        echo "continuing $(basename "$kept") from $kept" >&2
    done
}

keep() {  # every run folder under $RUNS with a checkpoint and no evaluation: its movable files to $UNFINISHED
    local run name target
    while IFS= read -r run; do
        run=$(dirname "$run")
        [ -f "$run/results.json" ] && continue
        target="$UNFINISHED/$(basename "$(dirname "$run")")/$(basename "$run")"
        mkdir -p "$target"
        for name in "${MOVABLE[@]}"; do cp "$run/$name" "$target/"; done
        echo "kept $run in $target" >&2
    done < <(find "$RUNS" -name checkpoint.pt -not -path "*/.*")
}

sweep() {  # sweep.py flags...: one CPU per run, then test.py on every finished run
    local arg previous=""
    for arg in "$@"; do [ "$previous" = --output-folder ] && unfinished_back "$arg"; previous=$arg; done
    $PY sweep.py --threads-per-run 1 ${ADDRESS:+--address "$ADDRESS"} --records "$RECORDS" --evaluate \
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

either() {  # subfolder name-glob...: each matching run of $RUNS/subfolder, else its record (in $RECORDS/<last part>)
    local sub=$1 pattern folder; shift
    local -A seen=()
    shopt -s nullglob
    for pattern in "$@"; do
        for folder in "$RUNS/$sub"/$pattern/ "$RECORDS/${sub##*/}"/$pattern/; do
            [ -f "$folder/config.yaml" ] || continue
            [ -n "${seen[$(basename "$folder")]:-}" ] && continue
            seen[$(basename "$folder")]=1
            echo "${folder%/}"
        done
    done
}

compare_into() {  # output-folder [compare.py flags] run-folder...: compare.py saving records, skipped without runs
    local out=$1 runs=0 arg; shift
    for arg in "$@"; do [ -d "$arg" ] && runs=$((runs + 1)); done
    if [ "$runs" -eq 0 ]; then echo "no runs for $out yet, skipped" >&2; return 0; fi
    $PY compare.py "$@" --save-records "$RECORDS" --output-folder "$out"
    for arg in "$@"; do  # a run with a record needs its kept unfinished copy no more
        [ -d "$arg" ] || continue
        arg="$(basename "$(dirname "$arg")")/$(basename "$arg")"
        [ -f "$RECORDS/$arg/record.json" ] && [ -d "$UNFINISHED/$arg" ] && rm -r "${UNFINISHED:?}/$arg"
    done
    return 0
}

compare() {
    shopt -s nullglob
    compare_into docs/results/memory/2d-navigation-sweep "$RUNS"/2d-navigation-sweep/radius*/2d-navigation-reward-rnn-seed1/
    compare_into docs/results/memory/2d-navigation \
        $(either 2d-navigation '2d-navigation-'{mlp,rnn,reward-mlp,reward-rnn,reward-trained-rnn,rl2-rnn}'-seed*')
    compare_into docs/results/memory/halfcheetah-dir \
        $(either halfcheetah-dir 'halfcheetah-dir-'{mlp,rnn,reward-mlp,reward-rnn,reward-trained-rnn,rl2-rnn}'-seed*')
    compare_into docs/results/ant-dir $(either ant-dir 'ant-dir-'{mlp,rnn}'-seed*')
}

plasticity_compare() {  # thresholds fixed before the runs were looked at (see docs/results/plasticity.md)
    # groups 7, 11, 4 and 6; the committed comparison of 7 and 11 was made from run folders that predate run
    # records: rerun their seeds (reproduce.sh plasticity) before regenerating it, or it loses them
    compare_into docs/results/plasticity/halfcheetah-dir --level 100 --fall-back 50 \
        $(either plasticity 'halfcheetah-dir-'{reservoir-rnn,memoryless-mlp,reward-rnn,rl2-rnn}'-seed*')
    # group 1 (MAML's MLP) on its own: targets.py sets its return after one step against group 7's before any
    compare_into docs/results/plasticity/halfcheetah-dir-maml --level 100 --fall-back 50 \
        $(either plasticity 'halfcheetah-dir-mlp-seed*')
    $PY docs/results/plasticity/targets.py \
        --memory docs/results/plasticity/halfcheetah-dir/comparison.json:halfcheetah-dir-reservoir-rnn \
        --maml docs/results/plasticity/halfcheetah-dir-maml/comparison.json:halfcheetah-dir-mlp \
        --control docs/results/plasticity/halfcheetah-dir/comparison.json:halfcheetah-dir-memoryless-mlp
    compare_into docs/results/plasticity/halfcheetah-dir-h16 --level 100 --fall-back 50 \
        $(either plasticity-h16 'halfcheetah-dir-'{reservoir,hebbian,neuromodulated,neuromodulated-maml}'-rnn-seed*')
    compare_into docs/results/plasticity/ant-dir $(either plasticity-ant 'ant-dir-reservoir-rnn-seed*') \
        $(either ant-dir 'ant-dir-mlp-seed*')
    if [ -f docs/results/plasticity/ant-dir/comparison.json ]; then
        $PY docs/results/plasticity/targets.py --target b \
            --memory docs/results/plasticity/ant-dir/comparison.json:ant-dir-reservoir-rnn \
            --maml docs/results/ant-dir/comparison.json:ant-dir-mlp
    fi
    compare_into docs/results/plasticity/2d-navigation \
        $(either plasticity '2d-navigation-'{reservoir-rnn,memoryless-mlp,rl2-rnn}'-seed*')
    compare_into docs/results/plasticity/2d-navigation-h16 \
        $(either plasticity-nav-h16 '2d-navigation-'{reservoir,neuromodulated}'-rnn-seed*')
}

plasticity() {
    local seeds=${PLASTIC_SEEDS:-1,2,3,4,5} out="$RUNS/plasticity"
    sweep --config configs/halfcheetah-dir-reservoir.yaml --policies rnn --seeds "$seeds" --set num-batches=100 --output-folder "$out"
    sweep --config configs/halfcheetah-dir-memoryless.yaml --policies mlp --seeds "$seeds" --set num-batches=100 --output-folder "$out"
    # groups 1, 4 and 6 of the reward-memory experiment rerun beside them, five seeds at this experiment's commit
    sweep --config configs/halfcheetah-dir.yaml --policies mlp --seeds "$seeds" --set num-batches=100 --output-folder "$out"
    for config in reward rl2; do
        sweep --config "configs/halfcheetah-dir-$config.yaml" --policies rnn --seeds "$seeds" --set num-batches=100 \
            --output-folder "$out"
    done
}

plasticity_ant() {  # the second target: the frozen memory-only circuit on AntDir, beside "ant"'s MAML runs
    sweep --config configs/ant-dir-reservoir.yaml --policies rnn --seeds "$ANT_SEEDS" --set num-batches=150 \
        --output-folder "$RUNS/plasticity-ant"
}

plasticity_nav() {  # 2D navigation's plastic group 9 and its frozen group 7, both at the matched small size
    for config in reservoir neuromodulated; do
        sweep --config "configs/2d-navigation-$config.yaml" --policies rnn --seeds "$SEEDS" --set num-batches=100 \
            --set "policy.hidden-sizes=[16, 16]" --output-folder "$RUNS/plasticity-nav-h16"
    done
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
    # MAML-TRPO (inner-loss reinforce) is the plasticity experiment's group 1: the same runs (reproduce.sh plasticity)
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
    compare_into docs/results/fork/swimmer $(either fork/swimmer 'swimmer-dir-*-seed*') \
        $(either fork/swimmer-reward 'swimmer-dir-*-seed*')
    compare_into docs/results/fork/small --level 100 --fall-back 50 $(either fork/small 'halfcheetah-dir-*-seed*') \
        $(either plasticity 'halfcheetah-dir-mlp-seed*') $(either halfcheetah-dir 'halfcheetah-dir-rnn-seed*')
    compare_into docs/results/fork/cells $(either fork/gru 'halfcheetah-dir-reservoir-rnn-seed*') \
        $(either fork/lstm 'halfcheetah-dir-reservoir-rnn-seed*') $(either plasticity 'halfcheetah-dir-reservoir-rnn-seed*')
}

credit_compare() {
    compare_into docs/results/credit $(either plasticity 'halfcheetah-dir-mlp-seed*') \
        $(either credit/lvc-trpo 'halfcheetah-dir-mlp-seed*') $(either credit/promp 'halfcheetah-dir-mlp-seed*') \
        $(either credit/lvc-trpo-frozen-rnn 'halfcheetah-dir-reward-rnn-seed*')
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
    plasticity-ant) plasticity_ant ;;
    plasticity-nav) plasticity_nav ;;
    plasticity-compare) plasticity_compare ;;
    credit) credit ;;
    credit-compare) credit_compare ;;
    fork) fork ;;
    fork-compare) fork_compare ;;
    keep) keep ;;
    *) echo "usage: $0 nav-sweep|nav|hc|ant|compare|plasticity|plasticity-small|plasticity-ant|plasticity-nav|plasticity-compare|credit|credit-compare|fork|fork-compare|keep" >&2; exit 2 ;;
esac
