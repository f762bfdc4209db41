"""Training: the run setup, optimizer, jitted step, scanned epoch, the one loop, fit(), checkpoints, metrics."""

from aejax.train.checkpoint import Checkpointer
from aejax.train.fit import fit
from aejax.train.loop import Decision, Scheduler, StopRequested, train_population
from aejax.train.optim import make_optimizer
from aejax.train.setup import RunKeys, RunSetup, setup_run
from aejax.train.step import init_train_state, make_eval_fn, make_train_step

__all__ = ["Checkpointer", "Decision", "RunKeys", "RunSetup", "Scheduler", "StopRequested", "fit",
           "init_train_state", "make_eval_fn", "make_optimizer", "make_train_step", "setup_run",
           "train_population"]
