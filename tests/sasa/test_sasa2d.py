"""SASA2d (torch backend) against the paper's equations (tests/sasa/reference.py), its gradients, window and memory.

The torch backend runs small maps through the dense all-pairs path and the rest through the
``sasa::window_attention_torch`` custom op; the ``op_only`` fixture forces the custom op on every shape so the
window kernel itself is tested on the tiny shapes too. The Triton backend is tested in test_backends.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from benchmarks.timing import cpu_peak_mib
from sasa.kernels import _torch_window, ops, window_attention
from sasa.layers import SASA2d
from tests.sasa.reference import sasa_reference
from tests.sasa.saved import saved_sizes
from tests.support.limits import HANG_S


@pytest.fixture(autouse=True)
def _default_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the CPU "auto" is the torch backend unless SASA_BACKEND says otherwise: keep the variable unset here."""
    monkeypatch.delenv("SASA_BACKEND", raising=False)


def _force_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ops, "use_dense", lambda *args: False)


@pytest.fixture
def op_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The torch backend's custom op on every shape (the small-map dense path switched off)."""
    _force_op(monkeypatch)


# (kernel_size, heads, pos_enc, stride, H, W): every kernel size 1..11 and head count 1..16 appears, with
# non-square, odd, 1×1 and smaller-than-window inputs, all three encodings and both strides.
CASES = [
    (1, 1, "relative", 1, 4, 5),
    (3, 2, "relative", 1, 5, 7),
    (3, 16, "relative", 2, 5, 7),  # d = 1: no row slice, a 1-dim column slice
    (5, 4, "absolute", 1, 5, 7),
    (5, 8, "relative", 2, 3, 2),
    (7, 8, "relative", 1, 6, 6),
    (7, 1, "none", 1, 1, 1),
    (7, 2, "absolute", 2, 1, 1),
    (9, 4, "relative", 1, 3, 2),
    (9, 16, "absolute", 2, 5, 4),
    (11, 2, "none", 1, 6, 5),
    (11, 8, "relative", 2, 7, 3),
    (3, 4, "absolute", 1, 2, 9),
    (1, 16, "none", 2, 3, 3),
]


@pytest.mark.parametrize(("kernel_size", "heads", "pos_enc", "stride", "H", "W"), CASES)
def test_matches_reference(
    kernel_size: int, heads: int, pos_enc: str, stride: int, H: int, W: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(kernel_size * 100 + heads * 10 + H)
    layer = SASA2d(5, 16, kernel_size, heads, pos_enc, stride)
    x = torch.randn(2, 5, H, W)
    y = layer(x)  # the torch backend's choice of path (dense on small maps)
    _force_op(monkeypatch)
    y_op = layer(x)  # the window kernel (custom op)
    with torch.no_grad():
        expected = sasa_reference(layer, x)
    assert y.shape == (2, 16, -(-H // stride), -(-W // stride))
    scale = expected.abs().max().item()
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5 * scale)
    torch.testing.assert_close(y_op, expected, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("pos_enc", ["none", "relative", "absolute"])
def test_constant_image_padding_is_masked(pos_enc: str) -> None:
    """On a constant image every attended value equals W_V c, so the output is W_V c at every pixel, borders
    included. Attending to zero padding would shrink the border pixels towards 0."""
    layer = SASA2d(3, 8, 5, 2, pos_enc)
    x = torch.ones(1, 3, 6, 4) * torch.tensor([0.5, -1.0, 2.0]).view(1, 3, 1, 1)
    expected = layer.value(x)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("window_op", [False, True], ids=["auto-path", "op"])
@pytest.mark.parametrize("pos_enc", ["none", "relative", "absolute"])
def test_gradcheck_module(pos_enc: str, window_op: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if window_op:
        _force_op(monkeypatch)
    torch.manual_seed(1)
    layer = SASA2d(3, 8, 3, 2, pos_enc, stride=2 if pos_enc == "absolute" else 1).double()
    x = torch.randn(2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    tables = [layer.rel_rows, layer.rel_cols] if pos_enc == "relative" else []

    def fn(inp: torch.Tensor, *_tables: torch.Tensor) -> torch.Tensor:
        return layer(inp)

    assert torch.autograd.gradcheck(fn, (x, *tables), fast_mode=True)


def test_gradcheck_kernel_with_bias(op_only: None) -> None:
    """The hand-written backward of the windowed kernel, on independent q, k, v and bias inputs."""
    torch.manual_seed(2)
    N, d, H, W, ks = 2, 2, 3, 4, 3
    q, k, v = (torch.randn(N, d, H, W, dtype=torch.float64, requires_grad=True) for _ in range(3))
    row, col = (torch.randn(N, ks, H, W, dtype=torch.float64, requires_grad=True) for _ in range(2))
    assert torch.autograd.gradcheck(lambda *t: window_attention(t[0], t[1], t[2], ks, t[3], t[4]), (q, k, v, row, col))
    assert torch.autograd.gradcheck(lambda *t: window_attention(*t, 5), (q, k, v))
    # A window larger than the image is run as the smallest window holding every reachable offset (here 7).
    row9, col9 = (torch.randn(N, 9, H, W, dtype=torch.float64, requires_grad=True) for _ in range(2))
    assert torch.autograd.gradcheck(
        lambda *t: window_attention(t[0], t[1], t[2], 9, t[3], t[4]), (q, k, v, row9, col9), fast_mode=True
    )


def test_chunks_and_worker_threads_do_not_change_results(op_only: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """One chunk on one thread vs one batch·head entry per chunk shared by two worker threads."""
    torch.manual_seed(6)
    layer = SASA2d(4, 8, 5, 2, "relative")
    x = torch.randn(3, 4, 6, 5, requires_grad=True)
    threads = torch.get_num_threads()
    results = []
    try:
        for chunk_bytes, n_threads in ((1 << 30, 1), (1, 2)):
            monkeypatch.setattr(_torch_window, "CHUNK_BYTES", chunk_bytes)
            torch.set_num_threads(n_threads)
            y = layer(x)
            grads = torch.autograd.grad((y * torch.arange(y.numel()).view_as(y)).sum(), [x, layer.rel_rows])
            results.append((y, *grads))
            assert torch.get_num_threads() == n_threads  # the workers leave the caller's setting alone
    finally:
        torch.set_num_threads(threads)
    for single, chunked in zip(*results, strict=True):
        torch.testing.assert_close(single, chunked, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("kernel_size", "pos_enc"), [(3, "relative"), (5, "none"), (5, "absolute")])
def test_receptive_field_is_the_clipped_window(kernel_size: int, pos_enc: str) -> None:
    torch.manual_seed(3)
    layer = SASA2d(2, 4, kernel_size, 2, pos_enc).double()
    H, W, p = 6, 5, kernel_size // 2
    x = torch.randn(1, 2, H, W, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    for i in range(H):
        for j in range(W):
            (grad,) = torch.autograd.grad(y[0, :, i, j].sum(), x, retain_graph=True)
            touched = grad.abs().sum(dim=(0, 1)) > 0
            expected = torch.zeros(H, W, dtype=torch.bool)
            expected[max(0, i - p) : i + p + 1, max(0, j - p) : j + p + 1] = True
            assert torch.equal(touched, expected), (i, j)


def _unfold_sasa(layer: SASA2d, x: torch.Tensor) -> torch.Tensor:
    """The k²-materialising formulation public reimplementations use (here only to validate the measurement)."""
    B, _, H, W = x.shape
    ks, heads, d = layer.kernel_size, layer.heads, layer.head_dim
    q = layer.query(x).view(B, heads, d, 1, H * W)
    k = F.unfold(layer.key(x), ks, padding=ks // 2).view(B, heads, d, ks * ks, H * W)
    v = F.unfold(layer.value(x), ks, padding=ks // 2).view(B, heads, d, ks * ks, H * W)
    attn = torch.softmax((q * k).sum(2, keepdim=True), dim=3)
    return (attn * v).sum(3).view(B, heads * d, H, W)


# B·C·H·W = 32 768 and k² = 81: one unfolded k or v tensor has 2.7 M elements, the attention weights 332 k.
B, C, HW, KS, HEADS = 4, 32, 16, 9, 4
ACTIVATION = B * C * HW * HW
ATTENTION = B * HEADS * HW * HW * KS * KS
# Elements: O(C·H·W + heads·H·W·k²), and for the peak also the kernel's scratch (a constant: one chunk per
# worker thread, 2 threads here); both well below B·C·H·W·k².
SAVED_BUDGET = 10 * ACTIVATION + 2 * ATTENTION
PEAK_BUDGET = 12 * ACTIVATION + 3 * ATTENTION + 2 * _torch_window.CHUNK_BYTES // 4


def test_forward_saves_nothing_of_size_k2_activations(op_only: None) -> None:
    torch.manual_seed(4)
    layer = SASA2d(C, C, KS, HEADS, "relative")
    x = torch.randn(B, C, HW, HW, requires_grad=True)
    with saved_sizes() as sizes:
        y = layer(x)
    assert max(sizes) < ACTIVATION * KS * KS
    assert max(sizes) <= max(ATTENTION, ACTIVATION)
    assert sum(sizes) <= SAVED_BUDGET
    y.sum().backward()  # the saved tensors still suffice for backward


def test_peak_memory_stays_within_activation_plus_attention_budget(op_only: None) -> None:
    torch.manual_seed(5)
    layer = SASA2d(C, C, KS, HEADS, "relative")
    x = torch.randn(B, C, HW, HW, requires_grad=True)

    def step(forward) -> None:
        forward(layer, x).sum().backward()

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        step(lambda m, t: m(t))  # warm-up
        peak = cpu_peak_mib(lambda: step(lambda m, t: m(t))) * 2**20
    finally:
        torch.set_num_threads(threads)
    assert peak <= PEAK_BUDGET * 4
    # The same measurement sees the k² materialisation of the unfold formulation: the bound is meaningful.
    assert cpu_peak_mib(lambda: step(_unfold_sasa)) * 2**20 > 2 * ACTIVATION * KS * KS * 4 > PEAK_BUDGET * 4


_FIRST_PASS = """
import sys
import torch
from sasa.layers import SASA2d
from tests.sasa.saved import saved_sizes

layer = SASA2d(16, 16, 3, 2, "relative", backend="torch")
x = torch.randn(2, 16, 20, 20, requires_grad=True)  # 400 pixels: the window kernel's op, not the dense path
with saved_sizes() as sizes:
    y = layer(x)
y.sum().backward()
print(max(sizes), "torch._dynamo" in sys.modules)
"""


def test_first_forward_backward_in_a_fresh_process_does_not_import_dynamo() -> None:
    """The custom op's first eager call used to import torch._dynamo (torch.library.custom_op wraps kernels in
    torch._disable_dynamo): sympy, mpmath and ~800 modules, about 80 MiB of resident memory, which doubled the
    layer's first-pass peak RSS (C=128, 32×32, B=8, k=7: 149 MiB instead of 69 MiB, 1/6 of unfold's instead of
    1/12). The window op really runs: it saves its (N, k², H, W) attention weights."""
    done = subprocess.run([sys.executable, "-c", _FIRST_PASS], capture_output=True, text=True, timeout=HANG_S,
                          cwd=Path(__file__).resolve().parents[2], check=True)
    largest, dynamo = done.stdout.split()
    assert int(largest) == 2 * 2 * 3 * 3 * 20 * 20  # batch·heads · k² · H·W: the window op's attention weights
    assert dynamo == "False"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kernel_size": 4}, "kernel_size must be an odd integer >= 1, got 4"),
        ({"kernel_size": 0}, "kernel_size must be an odd integer >= 1, got 0"),
        ({"heads": 3}, "heads must divide out_channels=16, got heads=3"),
        ({"heads": 0}, "heads must be a positive integer"),
        ({"pos_enc": "learned"}, "pos_enc must be one of ['none', 'absolute', 'relative'], got 'learned'"),
        ({"stride": 3}, "stride must be 1 or 2, got 3"),
        ({"in_channels": 0}, "in_channels must be a positive integer (>= 1), got 0"),
        ({"out_channels": -16}, "out_channels must be a positive integer (>= 1), got -16"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    args = {"in_channels": 8, "out_channels": 16} | kwargs
    with pytest.raises(ValueError) as info:
        SASA2d(**args)
    assert message in str(info.value)
    assert str(info.value).startswith("SASA2d:")


def test_layers_pickled_before_the_backend_switch_still_load() -> None:
    layer = SASA2d(4, 8, 3, 2)
    state = dict(layer.__dict__)
    del state["backend"]  # what a SASA2d pickled by an earlier version carries
    restored = SASA2d.__new__(SASA2d)
    restored.__setstate__(state)
    assert restored.backend == "auto"
    x = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(restored(x), layer(x))


def test_parameters_flops_and_repr() -> None:
    layer = SASA2d(8, 16, 7, 4, "relative", 2)
    assert layer.rel_rows.shape == (7, 4, 2) and layer.rel_cols.shape == (7, 4, 2)
    assert sum(p.numel() for p in layer.parameters()) == 3 * 8 * 16 + 7 * 16
    assert sum(p.numel() for p in SASA2d(8, 16, 7, 4, "none").parameters()) == 3 * 8 * 16
    # q·k, q·r and the weighted sum: B·H·W·k²·C MACs each, 2 FLOPs per MAC, at the input resolution.
    assert layer.core_flops((2, 8, 10, 6)) == 2 * 3 * 2 * 10 * 6 * 49 * 16
    assert SASA2d(8, 16, 3, 4, "absolute").core_flops((1, 8, 4, 4)) == 2 * 2 * 16 * 9 * 16
    assert layer.extra_repr() == "8, 16, kernel_size=7, heads=4, pos_enc='relative', stride=2, backend='auto'"
    assert "backend='torch'" in repr(SASA2d(8, 16, backend="torch"))
    assert [name for name, _ in layer.named_children()] == ["query", "key", "value", "pool"]
