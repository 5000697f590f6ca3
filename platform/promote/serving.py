"""How to call a promoted model over HTTP, written from its registered signature.

``mlflow models serve`` enforces the model's signature: a request must be a batch of ``(C, S, S)`` float32 images
of exactly the logged shape (``sasa-window_size`` takes ``(-1, 1, 16, 16)``: digits upscaled to 16×16). The
request below is built from that shape, so it fits the model it is printed for; docs/registry.md holds the one for
``sasa-window_size@champion`` and a test posts exactly that line to a served champion.
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_PORT = 5001


def input_shape(model_uri: str) -> tuple[int, ...]:
    """The input shape of the model's signature, e.g. ``(-1, 1, 16, 16)`` (batch first, -1 = any)."""
    import mlflow.models  # late: only when a model was promoted

    signature = mlflow.models.get_model_info(model_uri).signature
    if signature is None or signature.inputs is None:
        raise ValueError(f"{model_uri} has no input signature")
    spec = signature.inputs.inputs[0]
    return tuple(int(n) for n in spec.shape)


def request_python(shape: Sequence[int]) -> str:
    """A Python expression that prints one request body: a batch of one mid-grey image of ``shape[1:]``."""
    body = "0.5"
    for size in reversed(shape[1:]):
        body = f"[{body}] * {size}"
    return f"import json; print(json.dumps({{\"inputs\": [{body}]}}))"


def serve_command(model_uri: str, tracking_uri: str, port: int = DEFAULT_PORT) -> str:
    return (f"MLFLOW_TRACKING_URI={tracking_uri} mlflow models serve -m {model_uri} --env-manager local "
            f"--host 127.0.0.1 --port {port}")


def curl_command(shape: Sequence[int], port: int = DEFAULT_PORT) -> str:
    """A shell line that posts one image of the signature's shape and prints ``{"predictions": [[logits]]}``."""
    return (f"curl -s 127.0.0.1:{port}/invocations -H 'Content-Type: application/json' "
            f"-d \"$(python -c '{request_python(shape)}')\"")
