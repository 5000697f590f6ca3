"""The three Triton kernels of the fused windowed attention (private; launched by
:mod:`sasa.kernels._triton_window`, whose docstring describes the design).

Plain functions, not ``@triton.jit``: the launcher wraps them compiled or interpreted at first use. They call only
builtins of ``triton.language`` (``tl.full``, ``tl.reduce`` with triton's own ``_sum_combine``) and
:func:`pixel_tile`, so that they also run interpreted when triton was imported in compiled mode. Per-entry base
pointers are shifted once by an int64 scalar, so per-element offsets stay int32; each window offset moves a
loop-invariant pointer tile by one scalar.
"""

import functools

import triton
import triton.language as tl


class _DeviceFunction(triton.JITFunction):
    """A device function that both compiled and interpreted kernels can call, whatever ``TRITON_INTERPRET`` said
    when triton was imported.

    A compiled kernel calls it as any ``@triton.jit`` function (inlined); an interpreted kernel runs as Python and
    calls the object itself, which ``JITFunction`` refuses: here that call runs the function under Triton's
    interpreter (what ``@triton.jit`` gives under ``TRITON_INTERPRET=1``).
    """

    @functools.cached_property
    def _interpreted(self) -> object:
        from triton.runtime.interpreter import InterpretedFunction  # numpy-based; only interpreted kernels need it

        return InterpretedFunction(self.fn)

    def __call__(self, *args: object, **kwargs: object) -> object:
        return self._interpreted(*args, **kwargs)


def _pixel_tile(D, H, W, K, BLOCK_P: tl.constexpr, BLOCK_D: tl.constexpr):
    """Indices shared by the kernels for this program: (tile of BLOCK_P flat pixels, batch·head entry n).

    Returns ``(HW, n, pad, offs_p, in_tile, row, col, tile, d_ok)``: n as int64 (per-entry base pointers are
    shifted by it), pad = K // 2, offs_p (BLOCK_P,) the flat pixel index (query or key pixel, by kernel), in_tile
    whether it is inside the image, row / col its coordinates, tile (BLOCK_D, BLOCK_P) the int32 offsets of the
    tile inside one entry and d_ok (BLOCK_D, 1) the real channels. Compiled, it inlines to the same code as the
    lines written out in each kernel.
    """
    HW = H * W
    n = tl.program_id(1).to(tl.int64)
    pad = K // 2
    offs_p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)  # flat pixel index
    offs_d = tl.arange(0, BLOCK_D)
    in_tile = offs_p < HW
    row = offs_p // W
    col = offs_p % W
    tile = offs_d[:, None] * HW + offs_p[None, :]  # (BLOCK_D, BLOCK_P) int32 offsets inside one entry
    d_ok = (offs_d < D)[:, None]
    return HW, n, pad, offs_p, in_tile, row, col, tile, d_ok


pixel_tile = _DeviceFunction(_pixel_tile)


def fwd_kernel(
    q_ptr, k_ptr, v_ptr, rb_ptr, cb_ptr, out_ptr, lse_ptr,
    D, H, W, dy_lo, dy_hi, dx_lo, dx_hi,
    K, HAS_BIAS: tl.constexpr, EVEN_D: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    """out (N, D, H, W) and lse (N, H, W) for one tile of query pixels of one batch·head entry."""
    HW, n, pad, offs_p, in_tile, row, col, tile, d_ok = pixel_tile(D, H, W, K, BLOCK_P, BLOCK_D)
    # Per-entry base pointers (one int64 scalar each), so the per-element offsets stay int32.
    q_ptr += n * D * HW
    k_tile = k_ptr + n * D * HW + tile  # shifted by a scalar per window offset
    v_tile = v_ptr + n * D * HW + tile
    if HAS_BIAS:
        rb_ptr += n * K * HW
        cb_ptr += n * K * HW
    tile_mask = in_tile[None, :] if EVEN_D else d_ok & in_tile[None, :]
    q = tl.load(q_ptr + tile, mask=tile_mask, other=0.0).to(tl.float32)
    m = tl.full((BLOCK_P,), float("-inf"), tl.float32)  # running max of the logits
    denom = tl.full((BLOCK_P,), 0.0, tl.float32)  # running Σ exp(logit - m)
    acc = tl.full((BLOCK_D, BLOCK_P), 0.0, tl.float32)  # running Σ exp(logit - m) · v
    for dy in range(dy_lo, dy_hi):
        key_row = row + dy - pad
        row_ok = in_tile & (key_row >= 0) & (key_row < H)
        if HAS_BIAS:
            rb = tl.load(rb_ptr + dy * HW + offs_p, mask=in_tile, other=0.0).to(tl.float32)
        for dx in range(dx_lo, dx_hi):
            key_col = col + dx - pad
            ok = row_ok & (key_col >= 0) & (key_col < W)
            shift = (dy - pad) * W + (dx - pad)  # key pixel = query pixel + shift (flat), valid where ok
            kv_mask = ok[None, :] if EVEN_D else d_ok & ok[None, :]
            kt = tl.load(k_tile + shift, mask=kv_mask, other=0.0).to(tl.float32)
            s = tl.reduce(q * kt, 0, tl.standard._sum_combine)
            if HAS_BIAS:
                s += rb + tl.load(cb_ptr + dx * HW + offs_p, mask=in_tile, other=0.0).to(tl.float32)
            s = tl.where(ok, s, float("-inf"))
            m_new = tl.maximum(m, s)
            m_ref = tl.where(m_new > float("-inf"), m_new, 0.0)  # avoids -inf - -inf before the first hit
            alpha = tl.exp(m - m_ref)
            w = tl.exp(s - m_ref)
            vt = tl.load(v_tile + shift, mask=kv_mask, other=0.0).to(tl.float32)
            acc = acc * alpha[None, :] + w[None, :] * vt
            denom = denom * alpha + w
            m = m_new
    l_safe = tl.where(denom > 0.0, denom, 1.0)  # denom > 0 at every real pixel (its own centre is in the window)
    out = acc / l_safe[None, :]
    tl.store(out_ptr + n * D * HW + tile, out.to(out_ptr.dtype.element_ty), mask=tile_mask)
    tl.store(lse_ptr + n * HW + offs_p, m + tl.log(l_safe), mask=in_tile)


def bwd_query_kernel(
    q_ptr, k_ptr, v_ptr, rb_ptr, cb_ptr, o_ptr, do_ptr, lse_ptr, delta_ptr, dq_ptr, drb_ptr, dcb_ptr,
    D, H, W, dy_lo, dy_hi, dx_lo, dx_hi,
    K, HAS_BIAS: tl.constexpr, EVEN_D: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_K: tl.constexpr,
):  # fmt: skip
    """delta, grad_q and the bias gradients for one tile of query pixels of one batch·head entry."""
    HW, n, pad, offs_p, in_tile, row, col, tile, d_ok = pixel_tile(D, H, W, K, BLOCK_P, BLOCK_D)
    entry = n * D * HW
    k_tile = k_ptr + entry + tile
    v_tile = v_ptr + entry + tile
    if HAS_BIAS:
        rb_ptr += n * K * HW
        cb_ptr += n * K * HW
    tile_mask = in_tile[None, :] if EVEN_D else d_ok & in_tile[None, :]
    q = tl.load(q_ptr + entry + tile, mask=tile_mask, other=0.0).to(tl.float32)
    do = tl.load(do_ptr + entry + tile, mask=tile_mask, other=0.0).to(tl.float32)
    o = tl.load(o_ptr + entry + tile, mask=tile_mask, other=0.0).to(tl.float32)
    delta = tl.reduce(do * o, 0, tl.standard._sum_combine)  # Σ_c grad_out · out = Σ_offsets p · dP
    tl.store(delta_ptr + n * HW + offs_p, delta, mask=in_tile)
    lse = tl.load(lse_ptr + n * HW + offs_p, mask=in_tile, other=0.0)
    dq = tl.full((BLOCK_D, BLOCK_P), 0.0, tl.float32)
    offs_k = tl.arange(0, BLOCK_K)
    dcol = tl.full((BLOCK_K, BLOCK_P), 0.0, tl.float32)  # grad_col_bias[dx] accumulated over dy
    for dy in range(dy_lo, dy_hi):
        key_row = row + dy - pad
        row_ok = in_tile & (key_row >= 0) & (key_row < H)
        drow = tl.full((BLOCK_P,), 0.0, tl.float32)
        if HAS_BIAS:
            rb = tl.load(rb_ptr + dy * HW + offs_p, mask=in_tile, other=0.0).to(tl.float32)
        for dx in range(dx_lo, dx_hi):
            key_col = col + dx - pad
            ok = row_ok & (key_col >= 0) & (key_col < W)
            shift = (dy - pad) * W + (dx - pad)
            kv_mask = ok[None, :] if EVEN_D else d_ok & ok[None, :]
            kt = tl.load(k_tile + shift, mask=kv_mask, other=0.0).to(tl.float32)
            vt = tl.load(v_tile + shift, mask=kv_mask, other=0.0).to(tl.float32)
            s = tl.reduce(q * kt, 0, tl.standard._sum_combine)
            if HAS_BIAS:
                s += rb + tl.load(cb_ptr + dx * HW + offs_p, mask=in_tile, other=0.0).to(tl.float32)
            p = tl.exp(tl.where(ok, s - lse, float("-inf")))
            ds = p * (tl.reduce(do * vt, 0, tl.standard._sum_combine) - delta)
            dq += ds[None, :] * kt
            if HAS_BIAS:
                drow += ds
                dcol += tl.where(offs_k[:, None] == dx, ds[None, :], 0.0)
        if HAS_BIAS:
            tl.store(drb_ptr + n * K * HW + dy * HW + offs_p, drow.to(drb_ptr.dtype.element_ty), mask=in_tile)
    tl.store(dq_ptr + entry + tile, dq.to(dq_ptr.dtype.element_ty), mask=tile_mask)
    if HAS_BIAS:
        dcb = dcb_ptr + n * K * HW + offs_k[:, None] * HW + offs_p[None, :]
        tl.store(dcb, dcol.to(dcb_ptr.dtype.element_ty), mask=(offs_k < K)[:, None] & in_tile[None, :])


def bwd_key_kernel(
    q_ptr, k_ptr, v_ptr, rb_ptr, cb_ptr, do_ptr, lse_ptr, delta_ptr, dk_ptr, dv_ptr,
    D, H, W, dy_lo, dy_hi, dx_lo, dx_hi,
    K, HAS_BIAS: tl.constexpr, EVEN_D: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    """grad_k and grad_v for one tile of key pixels: a gather over the queries whose windows contain each key."""
    HW, n, pad, offs_p, in_tile, row, col, tile, d_ok = pixel_tile(D, H, W, K, BLOCK_P, BLOCK_D)
    entry = n * D * HW
    q_tile = q_ptr + entry + tile
    do_tile = do_ptr + entry + tile
    if HAS_BIAS:
        rb_ptr += n * K * HW
        cb_ptr += n * K * HW
    lse_ptr += n * HW
    delta_ptr += n * HW
    tile_mask = in_tile[None, :] if EVEN_D else d_ok & in_tile[None, :]
    kt = tl.load(k_ptr + entry + tile, mask=tile_mask, other=0.0).to(tl.float32)
    vt = tl.load(v_ptr + entry + tile, mask=tile_mask, other=0.0).to(tl.float32)
    dk = tl.full((BLOCK_D, BLOCK_P), 0.0, tl.float32)
    dv = tl.full((BLOCK_D, BLOCK_P), 0.0, tl.float32)
    for dy in range(dy_lo, dy_hi):
        query_row = row - dy + pad
        row_ok = in_tile & (query_row >= 0) & (query_row < H)
        for dx in range(dx_lo, dx_hi):
            query_col = col - dx + pad
            ok = row_ok & (query_col >= 0) & (query_col < W)
            shift = (dy - pad) * W + (dx - pad)  # the query seeing this key at (dy, dx) is key pixel - shift
            query = offs_p - shift
            qd_mask = ok[None, :] if EVEN_D else d_ok & ok[None, :]
            qq = tl.load(q_tile - shift, mask=qd_mask, other=0.0).to(tl.float32)
            dd = tl.load(do_tile - shift, mask=qd_mask, other=0.0).to(tl.float32)
            s = tl.reduce(qq * kt, 0, tl.standard._sum_combine)
            if HAS_BIAS:
                s += tl.load(rb_ptr + dy * HW + query, mask=ok, other=0.0).to(tl.float32)
                s += tl.load(cb_ptr + dx * HW + query, mask=ok, other=0.0).to(tl.float32)
            lse = tl.load(lse_ptr + query, mask=ok, other=0.0)
            delta = tl.load(delta_ptr + query, mask=ok, other=0.0)
            p = tl.exp(tl.where(ok, s - lse, float("-inf")))
            ds = p * (tl.reduce(dd * vt, 0, tl.standard._sum_combine) - delta)
            dk += ds[None, :] * qq
            dv += p[None, :] * dd
    tl.store(dk_ptr + entry + tile, dk.to(dk_ptr.dtype.element_ty), mask=tile_mask)
    tl.store(dv_ptr + entry + tile, dv.to(dv_ptr.dtype.element_ty), mask=tile_mask)
