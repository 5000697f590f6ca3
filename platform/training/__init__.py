"""Training one trial with Lightning: the classifier module (:mod:`.classifier`), the Trainer loop
(:mod:`.trainer`) and Optuna pruning as a Lightning callback (:mod:`.pruning`). Knows nothing of studies."""

from .classifier import SasaClassifier, warmup_cosine
from .pruning import OptunaPruning
from .trainer import TrainOutcome, runtime_settings, train_trial

__all__ = ["OptunaPruning", "SasaClassifier", "TrainOutcome", "runtime_settings", "train_trial", "warmup_cosine"]
