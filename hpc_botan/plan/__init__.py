"""The plan of a run: its configurations, targets index, training tasks and trained networks, and the
processes and devices that do the work.  Between io and the stages: every stage reads here what the run
consists of and what of it is finished, and no stage imports another."""
