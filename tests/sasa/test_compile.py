"""SASA2d under torch.compile(fullgraph=True) and torch.export: the attention core is one opaque custom op.

Inductor on the CPU compiles C++ with the system compiler, so there is a single Inductor compile (a bottleneck
block with attention, forward and backward); the other compiles use AOTAutograd with eager kernels, which is
enough to see the captured forward and backward graphs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from functorch.compile import make_boxed_func
from torch import nn
from torch._dynamo.backends.common import aot_autograd

from sasa import SASA2d
from sasa.kernels import ops
from sasa.models import Bottleneck, create_model


@pytest.fixture(autouse=True)
def _interpreted(no_backend_override: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # the triton cases run interpreted on the CPU
    torch._dynamo.reset()


def _sasa_nodes(graph: torch.fx.Graph) -> list[str]:
    """Names of the ``torch.ops.sasa.*`` calls in an FX graph."""
    return [
        node.target.name()
        for node in graph.nodes
        if node.op == "call_function" and getattr(node.target, "namespace", None) == "sasa"
    ]


class RecordGraphs:
    """AOTAutograd backend running the traced forward / backward graphs eagerly and keeping them."""

    def __init__(self) -> None:
        self.forward: list[torch.fx.GraphModule] = []
        self.backward: list[torch.fx.GraphModule] = []

    def backend(self) -> Callable:
        def keep(into: list[torch.fx.GraphModule]) -> Callable:
            def compiler(gm: torch.fx.GraphModule, example_inputs: list[torch.Tensor]) -> Callable:
                into.append(gm)
                return make_boxed_func(gm.forward)

            return compiler

        return aot_autograd(fw_compiler=keep(self.forward), bw_compiler=keep(self.backward))


def _forward_backward(module: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Output, then the gradients of a fixed loss with respect to the input and every parameter."""
    x = x.clone().requires_grad_()
    y = module(x)
    weights = torch.linspace(-1, 1, y.numel()).view_as(y)
    grads = torch.autograd.grad((y * weights).sum(), [x, *module.parameters()])
    return [y.detach(), *grads]


def _assert_all_close(got: list[torch.Tensor], want: list[torch.Tensor], tol: float) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol * max(b.abs().max().item(), 1e-6))


def test_inductor_compiles_a_bottleneck_with_attention(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole block is one graph (fullgraph) with the window kernel's custom op in it; forward and backward
    match eager. (Before the op was registered, dynamo refused the kernel's autograd.Function.)"""
    monkeypatch.setattr(ops, "use_dense", lambda *args: False)  # the custom op, not the small-map dense path
    torch.manual_seed(0)
    block = Bottleneck(16, 8, 1, {"kernel_size": 3, "heads": 2, "pos_enc": "relative", "backend": "torch"})
    for module in block.modules():
        if isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)  # undo the residual zero-init so the attention branch gets gradient
    x = torch.randn(2, 16, 6, 5)
    eager = _forward_backward(copy.deepcopy(block), x)
    # No compile worker pool, scalar C++ kernels: about half the compiler time on a small machine; neither has
    # anything to do with the custom op.
    with torch._inductor.config.patch({"compile_threads": 1, "cpp.vec_isa_ok": False}):
        compiled = _forward_backward(torch.compile(block, fullgraph=True), x)
    _assert_all_close(compiled, eager, 1e-4)


@pytest.mark.parametrize(
    ("backend", "dense", "expected"),
    [
        ("triton", False, ["window_attention_triton", "window_attention_triton_backward"]),
        ("torch", False, ["window_attention_torch", "window_attention_torch_backward"]),
        ("torch", True, []),  # the torch backend's small-map path: plain torch ops, traced through
    ],
)
def test_fullgraph_captures_one_opaque_op(
    backend: str, dense: bool, expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ops, "use_dense", lambda *args: dense)
    torch.manual_seed(1)
    layer = SASA2d(4, 8, 3, 2, "relative", backend=backend)
    x = torch.randn(2, 4, 6, 5)
    eager = _forward_backward(layer, x)
    recorder = RecordGraphs()
    compiled = _forward_backward(torch.compile(layer, backend=recorder.backend(), fullgraph=True), x)
    _assert_all_close(compiled, eager, 1e-5)
    (forward,), (backward,) = recorder.forward, recorder.backward
    assert [*_sasa_nodes(forward.graph), *_sasa_nodes(backward.graph)] == [f"sasa::{op}" for op in expected]


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_export_shows_one_opaque_op(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ops, "use_dense", lambda *args: False)
    torch.manual_seed(2)
    layer = SASA2d(4, 8, 5, 2, "relative", stride=2, backend=backend).eval()
    x = torch.randn(1, 4, 7, 6)
    program = torch.export.export(layer, (x,))
    assert _sasa_nodes(program.graph) == [f"sasa::window_attention_{backend}"]
    torch.testing.assert_close(program.module()(x), layer(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_fullgraph_captures_the_op_under_bf16_autocast(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under CPU bf16 autocast (what Lightning's ``bf16-mixed`` runs) the layer is still one graph around one
    opaque op, which receives bf16 inputs, and the compiled gradients match eager ones."""
    monkeypatch.setattr(ops, "use_dense", lambda *args: False)
    torch.manual_seed(5)
    layer = SASA2d(4, 8, 3, 2, "relative", backend=backend)
    x = torch.randn(2, 4, 6, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        eager = _forward_backward(layer, x)
        recorder = RecordGraphs()
        compiled = _forward_backward(torch.compile(layer, backend=recorder.backend(), fullgraph=True), x)
    _assert_all_close(compiled, eager, 2e-2)
    assert eager[0].dtype == compiled[0].dtype == torch.bfloat16
    (forward,), (backward,) = recorder.forward, recorder.backward
    op_nodes = [n for n in forward.graph.nodes if getattr(n.target, "namespace", None) == "sasa"]
    assert [n.target.name() for n in op_nodes] == [f"sasa::window_attention_{backend}"]
    assert {arg.meta["val"].dtype for arg in op_nodes[0].args[:3]} == {torch.bfloat16}
    assert _sasa_nodes(backward.graph) == [f"sasa::window_attention_{backend}_backward"]


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_a_whole_attention_network_compiles_without_graph_breaks(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ResNet-26 with attention in its last two layer groups (5 SASA layers on 8×8 and 4×4 maps, the 4×4 ones
    with the window trimmed to the image) in training mode: fullgraph (any graph break would raise), one op call
    per SASA layer in the forward graph and one backward op per layer in the backward graph."""
    monkeypatch.setattr(ops, "use_dense", lambda *args: False)
    torch.manual_seed(6)
    net = create_model("resnet26", 3, in_channels=1, width=0.1, small_input=True, stem="conv",
                       attention_groups=[3, 4], heads=2, kernel_size=5, backend=backend)
    layers = sum(isinstance(m, SASA2d) for m in net.modules())
    x = torch.randn(2, 1, 16, 16)
    recorder = RecordGraphs()
    compiled = torch.compile(net, backend=recorder.backend(), fullgraph=True)
    compiled(x).square().sum().backward()
    (forward,), (backward,) = recorder.forward, recorder.backward
    assert _sasa_nodes(forward.graph) == [f"sasa::window_attention_{backend}"] * layers
    assert _sasa_nodes(backward.graph) == [f"sasa::window_attention_{backend}_backward"] * layers
