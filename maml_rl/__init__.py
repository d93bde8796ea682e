"""bio-maml-rl: biologically inspired meta-reinforcement learning.

Two systems live here:

* the MAML-TRPO core (:mod:`maml_rl.metalearner`, :mod:`maml_rl.sampler`, :mod:`maml_rl.policies`,
  :mod:`maml_rl.envs`), and
* the learning-rules lab (:mod:`maml_rl.rules`).
"""

__version__ = "0.1.0"
