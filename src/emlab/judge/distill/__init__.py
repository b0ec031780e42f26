"""The pipeline that distilled the offline judge's weights (``judge/weights/offline_head.*``).

Not needed to judge: the runtime judges (``judge.offline``, ``judge.openai_api``, ``judge.hf``)
read only the shipped weights. This subpackage rebuilds them from reference judgments
(``emlab judge train DATA_DIR``, or ``python -m emlab.judge.distill DATA_DIR``):

- ``train``: row selection, candidates, the two validations (by question, by source), the card;
- ``protocol``: validation by question (question groups, grouped folds, per-set figures);
- ``augment``: synthetic degenerate answers, trained on for coherence only;
- ``embcache``: an on-disk cache of MiniLM embeddings (saves time, never changes a result).

It imports the runtime judge's pieces (encoder, features, head, novelty); they never import it.
"""
