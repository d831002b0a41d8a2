"""Jobs of many runs, above the runner: a portfolio build (:mod:`.portfolio`), seed 001's
transfer table (:mod:`.transfer`), seed 002's supernet study (:mod:`.supernet`), the built-in
priors' rebuild (:mod:`.priors`), a learning-curve table's build (:mod:`.table`), the transferability ground truth of a model
zoo (:mod:`.ground_truth`), a named experiment's trial or sweep (:mod:`.named`), seed 003's
valley study of the distance regularizer (:mod:`.valleys`). Each module loads on first use."""
