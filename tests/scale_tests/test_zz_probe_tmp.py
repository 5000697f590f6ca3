import os
from mlflow import MlflowClient
def test_probe(postgres, tracking_server):
    import optuna
    url = postgres.create_database("probe")
    s = optuna.create_study(storage=url, study_name="x")
    s.optimize(lambda t: t.suggest_float("a", 0, 1), n_trials=2)
    os.environ.update(tracking_server.env())
    c = MlflowClient(tracking_server.uri)
    e = c.create_experiment("e1")
    r = c.create_run(e)
    c.log_text(r.info.run_id, "hello", "a.txt")
    print(c.list_artifacts(r.info.run_id))
