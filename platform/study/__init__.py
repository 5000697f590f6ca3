"""Running studies (``python -m platform.study STUDY.yaml``): lifecycle of the Optuna study, the session with its
MLflow parent run, the objective, worker processes, DDP ranks, devices, the summary and the dry run.

Modules, bottom up: :mod:`.devices`, :mod:`.ddp` (payload), :mod:`.follower` (ranks ≥ 1), :mod:`.tracking`
(MLflow), :mod:`.claims` (sampled points), :mod:`.objective`, :mod:`.lifecycle`, :mod:`.session`,
:mod:`.workers`, :mod:`.summary`, :mod:`.dry_run`, :mod:`.report_hook`, :mod:`.run` (:func:`~.run.run_study`, the
one typed call), ``__main__`` (the command line).
"""
