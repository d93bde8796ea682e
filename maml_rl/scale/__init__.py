"""Scale-out: a meta-batch's tasks on Ray shards (:mod:`.ray_shards`), the driver's Ray session
(:mod:`.ray_session`), a ``--ray`` driver watched from a parent process (:mod:`.supervise`) and resumable
multi-seed sweeps on Ray Tune (:mod:`.sweep`). Ray is an optional extra; it is imported only where it is used."""
