"""Training and evaluation (`snnzoo train`, `snnzoo eval`)."""
