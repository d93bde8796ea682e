"""bio-maml-rl: biologically inspired meta-reinforcement learning.

Two systems live here. The MAML-TRPO core, in layers (each imports only the layers below it):

* :mod:`maml_rl.analysis`: evaluation on fresh tasks, comparisons of runs, videos;
* :mod:`maml_rl.scale`: Ray shards, the Ray session, sweeps;
* :mod:`maml_rl.training`: the trainer loop and the run folder (log, checkpoint, pre-flight checks, signals);
* the algorithm: :mod:`maml_rl.experiment` (one meta-batch), :mod:`maml_rl.metabatch` (task slices),
  :mod:`maml_rl.trpo` (the outer step), :mod:`maml_rl.metalearner` (inner loop and per-task terms),
  :mod:`maml_rl.sampler`, :mod:`maml_rl.baseline`, :mod:`maml_rl.episodes`, :mod:`maml_rl.optim`,
  :mod:`maml_rl.threads`, :mod:`maml_rl.config`;
* :mod:`maml_rl.policies` and :mod:`maml_rl.envs`;
* leaves: :mod:`maml_rl.seeding`, :mod:`maml_rl.process`, :mod:`maml_rl.exits`.

And the learning-rules lab, :mod:`maml_rl.rules`. Importing the package sets nothing process-wide; the entry
points call :func:`maml_rl.process.prepare_process`.
"""

__version__ = "0.1.0"
