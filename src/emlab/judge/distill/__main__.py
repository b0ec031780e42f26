"""``python -m emlab.judge.distill DATA_DIR``: the same as ``emlab judge train DATA_DIR``."""

from emlab.judge.distill.train import main

main()
