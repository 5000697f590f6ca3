"""Memory-lean k×k windowed attention in plain PyTorch ops: the ``torch`` backend of SASA2d (private).

Called through the ``sasa::window_attention_torch`` custom op (:mod:`sasa.kernels.ops`), which owns autograd;
this module holds the forward (:func:`torch_window_forward`, returning the output and the attention weights
the backward needs) and the hand-written backward (:func:`torch_window_backward`). It runs on any device: the
CPU is its main target, and it is the CUDA fallback when Triton is not installed. (The attention stem's windows
are non-overlapping blocks, which a plain reshape handles; it does not need this.)

For every query pixel (i, j) and window offset (dy, dx) (p = k // 2), the logit is the per-head dot product
q_ij · k_{i+dy-p, j+dx-p} plus an optional separable relative term row[dy] + col[dx]; window positions outside
the image are masked out of the softmax (never attended as zeros).

How the windows are visited without k² copies. Heads are merged into the batch axis (N = B·heads) and N is
processed in chunks so that everything a chunk touches stays in the CPU cache. A chunk of k (or v) is
copied into a zero-bordered scratch buffer of size (n, d, H+2p, W+2p). For one window row dy, an
``as_strided`` *view* of that buffer with an extra axis dx of stride 1 gives every key of that window row for
every pixel, shape (n, d, k, H, W), without copying (the dx axis overlaps the column axis). One multiply and one
channel sum per window row then give k logits per pixel; likewise the weighted sum of values, and the backward
pass (the adjoint "scatter" to keys and values is rewritten as the same kind of gather by reading the
window-flipped gradient). Masking is separable: a window row dy is outside the image for query row i exactly
when i+dy-p is, so two (k, H, W) tables of 0 / -inf added to the logits mask the padding.

Parallelism (CPU): with T > 1 intra-op threads, T worker threads take chunks in turn and run their ops
single-threaded (see ``_run_chunks``), instead of one OpenMP team per op. On a GPU there are no helper threads
and a chunk is sized from the device's free memory (``_chunk_bytes``): the GPU wants few, large launches, not
cache-sized pieces.

Memory: the saved tensors are q, k, v (N·d·H·W each) and the attention weights (N·k²·H·W); the scratch buffers
belong to one chunk per worker (about ``_chunk_bytes`` each), so nothing of size B·C·H·W·k² exists at any time.
(Images smaller than the window are run with the smaller window that holds every reachable offset:
:func:`sasa.kernels.ops.window_attention` trims it before calling the op.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch
from torch import Tensor

# CPU chunk size along the merged (batch·head) axis: the scratch buffers of one chunk (k-window products, padded
# copies, padded window-flipped weights) hold about this many bytes in all (at least one batch·head entry per
# chunk); each worker thread has its own, so scratch memory is a constant. Measured with 2 threads at
# C=128, 32×32, k=7: 4 MiB beats 0.5–2 MiB (fewer Python-level steps) and 8 MiB.
CHUNK_BYTES = 1 << 22
# GPU chunk size: this fraction of the device's free memory (at least CHUNK_BYTES), so that a GPU runs few large
# launches while the scratch stays a bounded share of what is left.
GPU_FREE_FRACTION = 8


def _chunk_bytes(device: torch.device) -> int:
    """Scratch budget of one chunk: CHUNK_BYTES on the CPU, 1/GPU_FREE_FRACTION of free memory on CUDA."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return max(CHUNK_BYTES, free // GPU_FREE_FRACTION)
    return CHUNK_BYTES


def _chunk_size(n: int, d: int, kernel_size: int, height: int, width: int, element_size: int, budget: int) -> int:
    """Entries per chunk so that the backward pass's scratch (the larger one) fits in ``budget`` bytes."""
    pad = kernel_size // 2
    padded = (height + 2 * pad) * (width + 2 * pad)
    kk = kernel_size * kernel_size
    per_item = (d * kernel_size * height * width + kk * height * width + (2 * d + kk) * padded) * element_size
    return max(1, min(n, budget // per_item))


def _padding_masks(kernel_size: int, height: int, width: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """0 / -inf tables (k, H, W): row_mask[dy, i, :] = -inf iff image row i+dy-p does not exist, and
    col_mask[dx, :, j] = -inf iff image column j+dx-p does not exist."""
    pad = kernel_size // 2
    offs = torch.arange(kernel_size, device=like.device) - pad

    def table(length: int) -> Tensor:
        pos = torch.arange(length, device=like.device)[None, :] + offs[:, None]  # (k, length)
        outside = (pos < 0) | (pos >= length)
        return torch.zeros(outside.shape, dtype=like.dtype, device=like.device).masked_fill_(outside, float("-inf"))

    rows = table(height)[:, :, None].expand(kernel_size, height, width)
    cols = table(width)[:, None, :].expand(kernel_size, height, width)
    return rows, cols


def _window_row(padded: Tensor, dy: int, kernel_size: int, height: int, width: int) -> Tensor:
    """View (n, c, k, H, W) of a contiguous zero-bordered (n, c, H+2p, W+2p) buffer: element (., ., dx, i, j) is
    padded[., ., i + dy, j + dx], i.e. the image pixel (i + dy - p, j + dx - p) or 0 outside the image."""
    n, c, hp, wp = padded.shape
    return padded.as_strided(
        (n, c, kernel_size, height, width), (c * hp * wp, hp * wp, 1, wp, 1), padded.storage_offset() + dy * wp
    )


def _flipped_window_row(padded: Tensor, dy: int, kernel_size: int, height: int, width: int) -> Tensor:
    """View (n, 1, k, H, W) of a zero-bordered (n, k², H+2p, W+2p) buffer holding the window-flipped weights
    f[o'] = w[k²-1-o']: element (., 0, dx, a, b) is padded[., dy·k + dx, a + dy, b + dx].

    With f flipped, f at window (dy, dx) and pixel (a+dy-p, b+dx-p) is w at window (k-1-dy, k-1-dx) of the query
    whose window puts key (a, b) there: summing over (dy, dx) this view times the window rows of a padded query
    (or output-gradient) tensor gives the gradient at key / value pixel (a, b) without any scatter.
    """
    n, kk, hp, wp = padded.shape
    return padded.as_strided(
        (n, 1, kernel_size, height, width),
        (kk * hp * wp, 0, hp * wp + 1, wp, 1),
        padded.storage_offset() + dy * kernel_size * hp * wp + dy * wp,
    )


def _gather_sum(weights: list[Tensor], values: list[Tensor], acc: Tensor, out: Tensor) -> None:
    """out = Σ_dy Σ_dx weights[dy] * values[dy] over the k window rows, accumulating in ``acc`` (n, c, k, H, W)."""
    torch.mul(weights[0], values[0], out=acc)
    for w, x in zip(weights[1:], values[1:], strict=True):
        acc.addcmul_(w, x)
    torch.sum(acc, 2, out=out)


def _threads_are_per_thread() -> bool:
    """True when torch.set_num_threads in a worker thread only changes that thread's OpenMP team size."""
    global _PER_THREAD
    if _PER_THREAD is None:
        _PER_THREAD = "ATen parallel backend: OpenMP" in torch.__config__.parallel_info()
    return _PER_THREAD


_PER_THREAD: bool | None = None


def _run_chunks(
    n_total: int, size: int, make_scratch: Callable[[int], _Scratch], work: Callable, device: torch.device
) -> None:
    """Call ``work(chunk_slice, scratch)`` for every chunk of the (batch·head) axis.

    On a CPU with T > 1 intra-op threads, T worker threads take chunks in turn, each running its ops
    single-threaded with its own scratch: eager PyTorch opens an OpenMP team (and a barrier) per op, and a kernel
    of thousands of small ops then stalls whenever another process holds a core; independent workers only share
    the GIL, which every op releases. A GPU gets no helper threads (its ops are asynchronous launches on one stream).
    ``make_scratch(n)`` returns the scratch for chunks of n entries.
    """
    chunks = [slice(i, min(i + size, n_total)) for i in range(0, n_total, size)]
    threads = torch.get_num_threads()
    workers = min(threads, len(chunks)) if device.type == "cpu" and _threads_are_per_thread() else 1
    if workers <= 1:
        scratch = make_scratch(size)
        for sl in chunks:
            work(sl, scratch)
        return
    todo, lock, errors = iter(chunks), threading.Lock(), []
    inference = torch.is_inference_mode_enabled()
    # Scratch is allocated here, in the calling thread, so memory profilers attached to it see it; the workers
    # then allocate nothing but views.
    scratches = [make_scratch(size) for _ in range(workers)]

    def worker(scratch) -> None:
        try:
            torch.set_num_threads(1)  # this thread's team size only (OpenMP ICVs are per thread)
            with torch.inference_mode() if inference else torch.no_grad():
                while True:
                    with lock:
                        sl = next(todo, None)
                    if sl is None:
                        return
                    work(sl, scratch)
        except BaseException as error:  # re-raised in the calling thread
            errors.append(error)

    pool = [threading.Thread(target=worker, args=(scratch,), name="sasa-window", daemon=True) for scratch in scratches]
    try:
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    finally:
        torch.set_num_threads(threads)  # restores the process-wide default the workers overwrote
    if errors:
        raise errors[0]


class _Scratch:
    """Per-worker scratch buffers for chunks of up to ``size`` entries and their views, built once per chunk
    length (all chunks but the last share one), so the Python work per chunk is the arithmetic itself."""

    def __init__(self, kernel_size: int, height: int, width: int, buffers: dict[str, Tensor], build) -> None:
        self.ks, self.pad, self.height, self.width = kernel_size, kernel_size // 2, height, width
        self.buffers, self._build, self._cache = buffers, build, {}

    def __call__(self, n: int) -> dict:
        if n not in self._cache:
            self._cache[n] = self._build(self, {name: buf[:n] for name, buf in self.buffers.items()})
        return self._cache[n]

    def interior(self, padded: Tensor) -> Tensor:
        p = self.pad
        return padded[:, :, p : p + self.height, p : p + self.width]

    def window_rows(self, padded: Tensor) -> list[Tensor]:
        return [_window_row(padded, dy, self.ks, self.height, self.width) for dy in range(self.ks)]

    def flipped_rows(self, padded: Tensor) -> list[Tensor]:
        return [_flipped_window_row(padded, dy, self.ks, self.height, self.width) for dy in range(self.ks)]

    def blocks(self, logits: Tensor) -> list[Tensor]:
        """The k window rows of (n, k², H, W) logits: (n, k, H, W) each."""
        return [logits[:, dy * self.ks : (dy + 1) * self.ks] for dy in range(self.ks)]


def _forward_views(s: _Scratch, b: dict[str, Tensor]) -> dict:
    blocks = s.blocks(b["logits"])
    n = b["logits"].shape[0]
    return {
        "logits": b["logits"],
        "logits5": b["logits"].view(n, s.ks, s.ks, s.height, s.width),  # offset o = dy·k + dx
        "blocks": blocks,
        "weights": [block.unsqueeze(1) for block in blocks],
        "acc": b["acc"],
        "interior": s.interior(b["pad"]),
        "rows": s.window_rows(b["pad"]),
    }


def _backward_views(s: _Scratch, b: dict[str, Tensor]) -> dict:
    blocks = s.blocks(b["grad"])
    n = b["grad"].shape[0]
    return {
        "g": b["grad"],
        "g5": b["grad"].view(n, s.ks, s.ks, s.height, s.width),
        "blocks": blocks,
        "weights": [block.unsqueeze(1) for block in blocks],
        "acc": b["acc"],
        "prod": b["prod"],
        "dot": b["dot"],
        "flip": torch.arange(s.ks * s.ks - 1, -1, -1, device=b["grad"].device),
        "interior_a": s.interior(b["pad_a"]),
        "interior_b": s.interior(b["pad_b"]),
        "interior_w": s.interior(b["pad_w"]),
        "rows_a": s.window_rows(b["pad_a"]),
        "rows_b": s.window_rows(b["pad_b"]),
        "flipped": s.flipped_rows(b["pad_w"]),
    }


def torch_window_forward(
    q: Tensor, k: Tensor, v: Tensor, row_bias: Tensor | None, col_bias: Tensor | None, kernel_size: int
) -> tuple[Tensor, Tensor]:
    """Windowed attention forward: returns ``(out (N, d, H, W), attn (N, k², H, W))``, attn saved for backward.

    q, k, v: (N, d, H, W) with N = batch·heads, one dtype; row_bias / col_bias: (N, kernel_size, H, W) or None.
    """
    N, d, H, W = q.shape
    ks, kk, p = kernel_size, kernel_size * kernel_size, kernel_size // 2
    row_mask, col_mask = _padding_masks(ks, H, W, q)
    if row_bias is not None and col_bias is not None:  # (N, k, H, W) logit terms for row dy / column dx, masked
        row_term, col_term = row_bias + row_mask, col_bias + col_mask
    else:
        row_term, col_term = row_mask.expand(N, ks, H, W), col_mask.expand(N, ks, H, W)
    attn = q.new_empty(N, kk, H, W)
    out = q.new_empty(N, d, H, W)

    def make_scratch(size: int) -> _Scratch:
        buffers = {
            "logits": q.new_empty(size, kk, H, W),
            "acc": q.new_empty(size, d, ks, H, W),
            "pad": q.new_zeros(size, d, H + 2 * p, W + 2 * p),  # borders stay 0; interior: k, then v
        }
        return _Scratch(ks, H, W, buffers, _forward_views)

    def work(sl: slice, scratch: _Scratch) -> None:
        c = scratch(sl.stop - sl.start)
        # Logits, window row by window row: logits[:, dy·k + dx] = Σ_c q[:, c] k_pad[:, c, i + dy, j + dx].
        c["interior"].copy_(k[sl])
        q_ = q[sl].unsqueeze(2)
        for block, rows in zip(c["blocks"], c["rows"], strict=True):
            torch.sum(torch.mul(q_, rows, out=c["acc"]), 1, out=block)
        c["logits5"].add_(row_term[sl].unsqueeze(2)).add_(col_term[sl].unsqueeze(1))
        _softmax_(c["logits"])
        attn[sl] = c["logits"]
        # Weighted sum of values: out[:, c] = Σ_o a[:, o] v_pad[:, c, i + dy, j + dx].
        c["interior"].copy_(v[sl])
        _gather_sum(c["weights"], c["rows"], c["acc"], out[sl])

    size = _chunk_size(N, d, ks, H, W, q.element_size(), _chunk_bytes(q.device))
    _run_chunks(N, size, make_scratch, work, q.device)
    return out, attn


def torch_window_backward(
    grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, attn: Tensor, kernel_size: int, has_bias: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None]:
    """Gradients ``(grad_q, grad_k, grad_v, grad_row_bias, grad_col_bias)`` (the last two None without bias)
    from the forward's inputs and its attention weights ``attn``; every buffer is ``(N, ., H, W)``."""
    ks = kernel_size
    p, kk = ks // 2, ks * ks
    N, d, H, W = q.shape
    grad_out = grad_out.contiguous()
    grad_q, grad_k, grad_v = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    grad_row = grad_col = None
    if has_bias:
        grad_row = q.new_empty(N, ks, H, W)
        grad_col = q.new_empty(N, ks, H, W)

    def make_scratch(size: int) -> _Scratch:
        padded = (H + 2 * p, W + 2 * p)
        buffers = {
            "acc": q.new_empty(size, d, ks, H, W),
            "grad": q.new_empty(size, kk, H, W),  # dL/dattn, then dL/dlogits, of one chunk
            "prod": q.new_empty(size, kk, H, W),  # a ⊙ dL/dattn
            "dot": q.new_empty(size, 1, H, W),  # Σ_o a_o dL/da_o
            # Zero-bordered, only interiors written: values (a), q / k / grad_out (b), flipped weights (w).
            "pad_a": q.new_zeros(size, d, *padded),
            "pad_b": q.new_zeros(size, d, *padded),
            "pad_w": q.new_zeros(size, kk, *padded),
        }
        return _Scratch(ks, H, W, buffers, _backward_views)

    def work(sl: slice, scratch: _Scratch) -> None:
        c = scratch(sl.stop - sl.start)
        a, g, acc, go = attn[sl], c["g"], c["acc"], grad_out[sl]
        # dL/da[:, o] = go · v shifted by o, window row by window row.
        c["interior_a"].copy_(v[sl])
        go_ = go.unsqueeze(2)
        for block, rows in zip(c["blocks"], c["rows_a"], strict=True):
            torch.sum(torch.mul(go_, rows, out=acc), 1, out=block)
        # Softmax backward: dL/dlogit = a (g - Σ_o a_o g_o); masked offsets have a = 0.
        g.sub_(torch.sum(torch.mul(a, g, out=c["prod"]), 1, keepdim=True, out=c["dot"])).mul_(a)
        if grad_row is not None and grad_col is not None:
            torch.sum(c["g5"], 2, out=grad_row[sl])
            torch.sum(c["g5"], 1, out=grad_col[sl])
        # dL/dq = Σ_o dL/dlogit_o · k shifted by o.
        c["interior_b"].copy_(k[sl])
        _gather_sum(c["weights"], c["rows_b"], acc, grad_q[sl])
        # dL/dk at key pixel (a, b) = Σ over the queries whose window holds it: flipped gather of q.
        c["interior_b"].copy_(q[sl])
        torch.index_select(g, 1, c["flip"], out=c["interior_w"])  # offsets in reverse order
        _gather_sum(c["flipped"], c["rows_b"], acc, grad_k[sl])
        # dL/dv likewise from the attention weights and the output gradient.
        c["interior_b"].copy_(go)
        torch.index_select(a, 1, c["flip"], out=c["interior_w"])
        _gather_sum(c["flipped"], c["rows_b"], acc, grad_v[sl])

    size = _chunk_size(N, d, ks, H, W, q.element_size(), _chunk_bytes(q.device))
    _run_chunks(N, size, make_scratch, work, q.device)
    return grad_q, grad_k, grad_v, grad_row, grad_col


def _softmax_(logits: Tensor) -> Tensor:
    """In-place softmax over dim 1 (no second attention-sized buffer); -inf entries become exactly 0."""
    logits.sub_(logits.amax(1, keepdim=True)).exp_()
    return logits.div_(logits.sum(1, keepdim=True))
