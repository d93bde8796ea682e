"""Throughput, memory and scale-out benchmarks, printed as ratios to raw MuJoCo measured in the same run
(``python -m maml_rl.benchmarks throughput|scaling``)."""
