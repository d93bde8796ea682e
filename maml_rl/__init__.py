"""bio-maml-rl: biologically inspired meta-reinforcement learning.

Two systems live here:

* the MAML-TRPO core (:mod:`maml_rl.metalearner`, :mod:`maml_rl.sampler`, :mod:`maml_rl.policies`,
  :mod:`maml_rl.envs`), and
* the learning-rules lab (:mod:`maml_rl.rules`).
"""

import os

# torch's OpenMP threads busy-wait between parallel regions by default. When another process holds one of a
# small machine's cores, that spinning stalls every parallel region (measured: a 2D-navigation meta-batch took
# 5.7 s with 2 threads instead of 0.14 s with 1). Passive waiting removes the stall. It only takes effect if
# set before torch is first imported, hence here; an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Scale-out on Ray: no usage statistics leave the machine unless the user asks for them.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

__version__ = "0.1.0"
