"""Analysis of trained runs: evaluation on fresh tasks (:mod:`.evaluation`), comparisons of groups of runs with
their figures (:mod:`.compare`, :mod:`.statistics`) and videos of adapted policies (:mod:`.video`)."""
