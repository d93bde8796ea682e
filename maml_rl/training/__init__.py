"""Training: the trainer loop (:mod:`.trainer`), the run folder (:mod:`.folder`: default names, resuming, loading;
:mod:`.log`: metrics, TensorBoard, atomic checkpoints), the checks before a run (:mod:`.preflight`,
:mod:`.resources`) and the stop signals (:mod:`.signals`)."""
