"""The backend switch of SASA2d and the Triton backend at layer level (under Triton's interpreter on the CPU).

The Triton tests run the real kernels of sasa/kernels/_triton_window.py interpreted (numpy; slow), so shapes are
tiny (batch·heads <= 8, H, W <= 9, channels <= 16). Outputs and gradients (input, q/k/v projections, relative
embeddings) are compared with the naive float64 reference from the paper's equations (tests/sasa/reference.py).
"""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from sasa import SASA2d
from sasa.kernels import ops, resolve_backend, window_attention
from tests.sasa.reference import sasa_reference
from tests.sasa.saved import saved_sizes
from tests.support.limits import HANG_S

CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda"), torch.device("mps")


pytestmark = pytest.mark.usefixtures("no_backend_override")


@pytest.fixture
def interpret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")


class SasaOps(TorchDispatchMode):
    """Records every ``torch.ops.sasa.*`` call with the dtypes of its tensor arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, set[torch.dtype]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # torch's dispatch protocol
        if func.namespace == "sasa":
            self.calls.append((func.__name__, {a.dtype for a in args if isinstance(a, torch.Tensor)}))
        return func(*args, **(kwargs or {}))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


# ---- the switch ----


@pytest.mark.parametrize(
    ("backend", "env", "device", "installed", "interpreted", "expected"),
    [
        ("auto", None, CUDA, True, False, "triton"),
        ("auto", None, CUDA, False, False, "torch"),  # CUDA without triton: the pure-PyTorch GPU fallback
        ("auto", None, CPU, True, False, "torch"),
        ("auto", None, CPU, True, True, "torch"),  # the interpreter is never chosen automatically
        ("auto", None, MPS, True, False, "torch"),
        ("torch", None, CUDA, True, False, "torch"),
        ("triton", None, CUDA, True, False, "triton"),
        ("triton", None, CPU, True, True, "triton"),
        ("auto", "torch", CUDA, True, False, "torch"),  # SASA_BACKEND decides what "auto" means
        ("auto", "triton", CPU, True, True, "triton"),
        ("auto", "auto", CUDA, True, False, "triton"),
        ("triton", "torch", CUDA, True, False, "triton"),  # an explicit argument beats the variable
        ("torch", "triton", CPU, True, False, "torch"),
    ],
)
def test_resolution_rules(
    backend: str,
    env: str | None,
    device: torch.device,
    installed: bool,
    interpreted: bool,
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ops, "TRITON_INSTALLED", installed)
    if env is not None:
        monkeypatch.setenv("SASA_BACKEND", env)
    if interpreted:
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert resolve_backend(backend, device) == expected


@pytest.mark.parametrize(
    ("backend", "device", "installed", "fragments"),
    [
        ("triton", CPU, True, ["TRITON_INTERPRET=1", "backend='torch'"]),
        ("triton", CUDA, False, ["triton package", "not installed", "backend='torch'"]),
        ("triton", MPS, True, ["'mps'", "backend='torch'"]),
        ("cuda", CPU, True, ["backend must be one of ['auto', 'torch', 'triton']", "'cuda'"]),
    ],
)
def test_resolution_errors(
    backend: str, device: torch.device, installed: bool, fragments: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ops, "TRITON_INSTALLED", installed)
    with pytest.raises(ValueError) as info:
        resolve_backend(backend, device)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_bad_values_fail_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"SASA2d: backend must be one of \['auto', 'torch', 'triton'\], got 'tpu'"):
        SASA2d(8, 8, backend="tpu")
    monkeypatch.setenv("SASA_BACKEND", "Triton")
    with pytest.raises(ValueError, match=r"SASA_BACKEND='Triton' is not valid; valid values: \['auto', 'torch'"):
        SASA2d(8, 8)
    assert SASA2d(8, 8, backend="torch").backend == "torch"  # an explicit backend does not read the variable


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kernel_size": 2}, "window_attention: kernel_size must be an odd integer >= 1, got 2"),
        ({"q": torch.zeros(3, 4, 5)}, "window_attention: q must be 4-D (N, d, H, W), got shape (3, 4, 5)"),
        ({"v": torch.zeros(2, 3, 4, 4)}, "window_attention: v must have q's shape (2, 3, 4, 5), got (2, 3, 4, 4)"),
        ({"row_bias": None}, "window_attention: give both row_bias and col_bias or neither"),
        ({"col_bias": torch.zeros(2, 5, 4, 5)}, "window_attention: col_bias must have shape (N, kernel_size, H, W)"),
    ],
)
def test_window_attention_checks_its_inputs_before_any_backend(change: dict, message: str) -> None:
    args = {name: torch.zeros(2, 3, 4, 5) for name in ("q", "k", "v", "row_bias", "col_bias")}
    args = args | {"kernel_size": 3, "backend": "torch"} | change
    with pytest.raises(ValueError) as info:
        window_attention(**args)
    assert message in str(info.value)


def test_backend_is_resolved_at_forward_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The layer keeps what was asked for and resolves it on every call, from the input (and the environment)."""
    torch.manual_seed(0)
    layer = SASA2d(4, 8, 3, 2, backend="triton")  # building it on the CPU is fine
    x = torch.randn(1, 4, 5, 6)
    with pytest.raises(ValueError, match="TRITON_INTERPRET=1"):
        layer(x)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    with SasaOps() as seen:
        layer(x)
    assert seen.names() == ["window_attention_triton.default"]
    monkeypatch.setenv("SASA_BACKEND", "triton")
    with SasaOps() as seen:
        SASA2d(4, 8, 3, 2)(x)  # "auto" follows SASA_BACKEND
    assert seen.names() == ["window_attention_triton.default"]
    monkeypatch.setenv("SASA_BACKEND", "torch")
    with SasaOps() as seen:
        SASA2d(4, 8, 3, 2)(torch.randn(1, 4, 9, 9))  # 9×9 > the dense path's map sizes for k = 3
    assert seen.names() == ["window_attention_torch.default"]


def test_sasa_runs_without_triton() -> None:
    """With triton not importable, ``import sasa`` works, "auto" means the torch backend everywhere (CUDA
    included: the pure-PyTorch GPU fallback) and asking for triton says it is not installed."""
    script = textwrap.dedent(
        """
        import sys

        class HideTriton:
            def find_spec(self, name, path=None, target=None):
                if name == "triton" or name.startswith("triton."):
                    raise ImportError("triton hidden by the test")
                return None

        sys.meta_path.insert(0, HideTriton())
        import torch
        import sasa
        from sasa.kernels import ops, resolve_backend

        assert not ops.TRITON_INSTALLED and "triton" not in sys.modules
        assert resolve_backend("auto", torch.device("cuda")) == "torch"
        x = torch.randn(1, 4, 9, 9, requires_grad=True)
        sasa.SASA2d(4, 8, 3, 2)(x).sum().backward()
        try:
            sasa.SASA2d(4, 8, 3, 2, backend="triton")(x)
        except ValueError as error:
            print(error)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=HANG_S, check=False)
    assert done.returncode == 0, done.stderr
    assert "needs the triton package, which is not installed" in done.stdout


# ---- the Triton backend against the paper's equations ----

# (kernel_size, heads, pos_enc, stride, B, H, W): k ∈ {1, 3, 5, 7}, heads 1–8, every pos_enc, odd, non-square,
# 1×1 and smaller-than-window maps.
TRITON_CASES = [
    (1, 1, "relative", 1, 2, 4, 5),
    (3, 8, "relative", 1, 1, 5, 6),  # d = 2
    (3, 2, "none", 2, 2, 9, 4),
    (5, 4, "absolute", 1, 1, 2, 3),  # smaller than the window
    (7, 2, "relative", 2, 1, 7, 6),
    (7, 1, "relative", 1, 1, 3, 5),  # smaller than the window, d = 16
    (5, 1, "none", 1, 2, 1, 1),
    (3, 4, "absolute", 2, 2, 5, 7),
]
# bf16: the layer's weights and input are bf16 and every op rounds to bf16 (8 significant bits, relative step
# 2^-8 = 0.4 %); accumulation inside the kernel is fp32. Against the float64 reference of the same bf16 weights the
# largest error measured in these cases is 0.9 % of the largest magnitude of the compared tensor, so:
BF16_TOLERANCE = 2e-2  # of the largest magnitude of each compared tensor (fp32: 1e-5 forward, 1e-4 gradients)
BF16_CASES = [(3, 4, "relative", 1, 2, 5, 7), (7, 2, "absolute", 2, 1, 6, 5), (5, 4, "none", 1, 1, 4, 4)]
CASE_IDS = [f"k{c[0]}-h{c[1]}-{c[2]}-s{c[3]}-{c[5]}x{c[6]}" for c in TRITON_CASES]


def _layer_and_reference(case: tuple, dtype: torch.dtype) -> tuple[SASA2d, SASA2d, torch.Tensor]:
    kernel_size, heads, pos_enc, stride, batch, height, width = case
    torch.manual_seed(kernel_size * 1000 + heads * 100 + height * 10 + width)
    layer = SASA2d(6, 16, kernel_size, heads, pos_enc, stride, backend="triton").to(dtype)
    reference = copy.deepcopy(layer).double()  # the same (rounded) weights in float64
    x = torch.randn(batch, 6, height, width).to(dtype)
    return layer, reference, x


def _check_against_reference(case: tuple, dtype: torch.dtype, rtol: float, fwd_tol: float, grad_tol: float) -> None:
    layer, reference, x = _layer_and_reference(case, dtype)
    x = x.requires_grad_()
    x_ref = x.detach().double().requires_grad_()
    with SasaOps() as seen:
        y = layer(x)
    assert seen.names() == ["window_attention_triton.default"] and y.dtype == dtype
    expected = sasa_reference(reference, x_ref)
    torch.testing.assert_close(y.double(), expected, rtol=rtol, atol=fwd_tol * expected.abs().max().item())
    weights = torch.randn(y.shape, dtype=torch.float64)
    (y.double() * weights).sum().backward()
    (expected * weights).sum().backward()
    pairs = [(x.grad, x_ref.grad)] + [
        (p.grad, dict(reference.named_parameters())[name].grad) for name, p in layer.named_parameters()
    ]
    assert len(pairs) == (6 if layer.pos_enc == "relative" else 4)
    for got, want in pairs:
        torch.testing.assert_close(got.double(), want, rtol=rtol, atol=grad_tol * want.abs().max().item())


@pytest.mark.parametrize("case", TRITON_CASES, ids=CASE_IDS)
def test_triton_layer_matches_reference_fp32(case: tuple, interpret: None) -> None:
    _check_against_reference(case, torch.float32, rtol=1e-5, fwd_tol=1e-5, grad_tol=1e-4)


@pytest.mark.parametrize("case", BF16_CASES, ids=[f"k{c[0]}-h{c[1]}-{c[2]}-{c[5]}x{c[6]}" for c in BF16_CASES])
def test_triton_layer_matches_reference_bf16(case: tuple, interpret: None) -> None:
    _check_against_reference(case, torch.bfloat16, rtol=BF16_TOLERANCE, fwd_tol=BF16_TOLERANCE, grad_tol=BF16_TOLERANCE)


def test_triton_saves_nothing_with_a_k2_factor(interpret: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every tensor saved for backward is at most heads·k·H·W per image (the bias terms), never heads·k²·H·W.
    The same measurement on the torch backend's window kernel sees its saved attention weights."""
    monkeypatch.setattr(ops, "use_dense", lambda *args: False)
    kernel_size, heads, channels, height, width = 5, 2, 4, 6, 6
    attention = heads * kernel_size**2 * height * width  # one image's attention weights
    torch.manual_seed(1)
    x = torch.randn(1, channels, height, width, requires_grad=True)

    def largest_saved(backend: str) -> int:
        layer = SASA2d(channels, channels, kernel_size, heads, "relative", backend=backend)
        with saved_sizes() as sizes:
            y = layer(x)
        y.sum().backward()  # what was saved suffices
        return max(sizes)

    assert largest_saved("triton") <= max(heads * kernel_size * height * width, channels * height * width)
    assert largest_saved("torch") >= attention


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("pos_enc", ["relative", "absolute"])
def test_autocast_gives_the_op_one_dtype(backend: str, pos_enc: str, interpret: None) -> None:
    torch.manual_seed(2)
    layer = SASA2d(6, 8, 3, 2, pos_enc, backend=backend)
    x = torch.randn(2, 6, 7, 5, requires_grad=True)
    with SasaOps() as seen, torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    assert seen.calls == [(f"window_attention_{backend}.default", {torch.bfloat16})]
    assert y.dtype == torch.bfloat16 and torch.isfinite(y).all()
    y.float().square().sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(layer.query.weight.grad).all()


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_mixed_dtypes_are_cast_to_the_query_dtype(backend: str, interpret: None, monkeypatch) -> None:
    """window_attention hands the (autocast-opaque) op one dtype, q's, whatever it is given."""
    monkeypatch.setattr(ops, "use_dense", lambda *args: False)
    q = torch.randn(2, 4, 5, 6, dtype=torch.bfloat16)
    k, v, row, col = torch.randn(2, 4, 5, 6), torch.randn(2, 4, 5, 6), torch.randn(2, 3, 5, 6), torch.randn(2, 3, 5, 6)
    with SasaOps() as seen:
        out = window_attention(q, k, v, 3, row, col, backend=backend)
    assert seen.calls == [(f"window_attention_{backend}.default", {torch.bfloat16})] and out.dtype == torch.bfloat16


@pytest.mark.parametrize(("backend", "bias"), [("torch", True), ("triton", True), ("torch", False)])
def test_opcheck(backend: str, bias: bool, interpret: None) -> None:
    """torch.library.opcheck: schema (no hidden mutation or aliasing), autograd registration, fake tensors
    (shapes, dtypes, strides against the real kernel) and AOT dispatch with dynamic shapes, forward and backward
    ops. (Without biases the triton op is exercised by the layer tests above.)"""
    torch.manual_seed(3)
    n, d, height, width, ks = 2, 3, 4, 5, 3
    q, k, v = (torch.randn(n, d, height, width, requires_grad=True) for _ in range(3))
    row, col = (torch.randn(n, ks, height, width, requires_grad=True) if bias else None for _ in range(2))
    op = getattr(torch.ops.sasa, f"window_attention_{backend}").default
    torch.library.opcheck(op, (q, k, v, row, col, ks))
    out, saved = op(q, k, v, row, col, ks)
    grad_out = torch.randn_like(out)
    if backend == "torch":
        backward_args = (grad_out, q.detach(), k.detach(), v.detach(), saved.detach(), ks, bias)
    else:
        biases = (row.detach(), col.detach()) if bias else (None, None)
        backward_args = (grad_out, q.detach(), k.detach(), v.detach(), *biases, out.detach(), saved.detach(), ks)
    backward = getattr(torch.ops.sasa, f"window_attention_{backend}_backward").default
    torch.library.opcheck(backward, backward_args)
    assert len(backward(*backward_args)) == (5 if bias else 3)


# ---- CUDA (run where a GPU is present; the CPU-only test machine skips them) ----

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
def test_cuda_model_built_on_cpu_picks_triton_and_matches_the_torch_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """A layer built on the CPU and moved to CUDA resolves "auto" to Triton there; the torch GPU fallback (what
    "auto" gives without triton) computes the same outputs and gradients."""
    monkeypatch.setattr(ops, "use_dense", lambda *args: False)  # the fallback's window kernel on every shape
    torch.manual_seed(4)
    layer = SASA2d(16, 32, 7, 4, "relative")
    x = torch.randn(2, 16, 19, 23, device="cuda")
    results = {}
    for installed in (True, False):
        monkeypatch.setattr(ops, "TRITON_INSTALLED", installed)
        model = copy.deepcopy(layer).cuda()
        inp = x.clone().requires_grad_()
        with SasaOps() as seen:
            y = model(inp)
        expected_op = "window_attention_triton.default" if installed else "window_attention_torch.default"
        assert seen.names() == [expected_op]
        grads = torch.autograd.grad(y.square().sum(), [inp, *model.parameters()])
        results[installed] = [y, *grads]
    for got, want in zip(results[True], results[False], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())
