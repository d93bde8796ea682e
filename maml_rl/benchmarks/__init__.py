"""Throughput, memory and scale-out benchmarks, printed as ratios to raw MuJoCo measured in the same run, and a
profile of the outer step (``python -m maml_rl.benchmarks throughput|scaling|profile``)."""
