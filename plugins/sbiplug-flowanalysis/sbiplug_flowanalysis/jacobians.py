"""Batched Jacobians of a decoder z -> x, the input of the manifold entropic metrics.

Galperin & Köthe, *Analyzing Generative Models by Manifold Entropic Metrics* (AISTATS 2025,
arXiv 2410.19426) read everything off the decoder Jacobian J(z) = dg/dz of shape ``(D, d)``.
:func:`decoder_jacobian` evaluates it for a batch of latents with ``torch.func``: forward mode
(``jacfwd``, one pass per latent dimension) when d < D, backward mode (``jacrev``, one pass per
output) otherwise, vectorised over the batch with ``vmap``. Decoders that ``vmap`` cannot trace
(data-dependent masking, as in nflows' splines) fall back to plain autograd on the batch
replicated D times, which needs only that rows are decoded independently.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["JACOBIAN_MODES", "Decoder", "decoder_jacobian", "replicated_jacobian"]

Decoder = Callable[[Tensor], Tensor]
"""A batched decoder: latents ``(n, d)`` -> outputs ``(n, D)``, each row decoded on its own."""

JACOBIAN_MODES = ("auto", "fwd", "rev", "autograd")


def _vmapped(decoder: Decoder, mode: str) -> Callable[[Tensor], Tensor]:
    def one(z_row: Tensor) -> Tensor:
        return decoder(z_row.unsqueeze(0)).squeeze(0)

    jacobian = torch.func.jacfwd(one) if mode == "fwd" else torch.func.jacrev(one)
    return torch.func.vmap(jacobian)


def replicated_jacobian(decoder: Decoder, z: Tensor, outputs: int, create_graph: bool) -> Tensor:
    """Rows of J by one backward pass through the batch replicated ``outputs`` times."""
    n, d = z.shape
    with torch.enable_grad():
        copies = z.detach() if not create_graph else z
        copies = copies.unsqueeze(0).expand(outputs, n, d).reshape(outputs * n, d)
        if not copies.requires_grad:
            copies = copies.clone().requires_grad_(True)
        x = decoder(copies).reshape(outputs, n, outputs)
        # copy k only needs output k: the diagonal picks x[k, :, k]
        picked = torch.diagonal(x, dim1=0, dim2=2).sum()
        (grad,) = torch.autograd.grad(picked, copies, create_graph=create_graph)
    return grad.reshape(outputs, n, d).transpose(0, 1)


def decoder_jacobian(
    decoder: Decoder,
    z: Tensor,
    *,
    mode: str = "auto",
    chunk_size: int = 2048,
    create_graph: bool = False,
    show_progress_bars: bool = False,
) -> Tensor:
    """The decoder Jacobian at each latent, ``J[k] = dg/dz (z[k])``.

    Arguments:
        decoder: Latents ``(n, d)`` -> outputs ``(n, D)``; rows must be decoded independently.
        z: Latents, shape ``(n, d)``.
        mode: ``"fwd"`` (``vmap(jacfwd)``), ``"rev"`` (``vmap(jacrev)``), ``"autograd"``
            (replicated batch, no ``vmap``) or ``"auto"``: forward mode when d < D, else
            backward mode, falling back to ``"autograd"`` when the decoder cannot be vmapped.
        chunk_size: Latents per vectorised chunk (bounds the memory).
        create_graph: Keep the graph (for a training loss on the Jacobian); implies
            ``"autograd"`` or ``"rev"``/``"fwd"`` with gradients flowing through.
        show_progress_bars: Show a tqdm bar over the chunks (stderr).

    Returns:
        Jacobians, shape ``(n, D, d)``, in the decoder's dtype.
    """
    if mode not in JACOBIAN_MODES:
        raise ValueError(f"mode must be one of {JACOBIAN_MODES}, got {mode!r}")
    if not isinstance(z, Tensor) or z.ndim != 2 or len(z) == 0:
        shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
        raise ValueError(f"z must be a tensor of latents with shape (n, d), n >= 1; got {shape}")
    with torch.no_grad():
        probe = decoder(z[:1].detach())
    if probe.ndim != 2 or probe.shape[0] != 1:
        raise ValueError(
            f"the decoder must map latents (n, d) to outputs (n, D); for (1, {z.shape[1]}) it "
            f"returned shape {tuple(probe.shape)}"
        )
    outputs, inputs = probe.shape[1], z.shape[1]
    if mode == "auto":
        mode = "fwd" if inputs < outputs else "rev"
        fallback = True
    else:
        fallback = False

    from tqdm.auto import tqdm

    chunks = list(torch.split(z, chunk_size))
    results: list[Tensor] = []
    vmapped = _vmapped(decoder, mode) if mode != "autograd" else None
    for chunk in tqdm(chunks, desc="Jacobians", disable=not show_progress_bars or len(chunks) < 2):
        if vmapped is not None:
            try:
                context = torch.enable_grad() if create_graph else torch.no_grad()
                with context:
                    results.append(vmapped(chunk))
                continue
            except (RuntimeError, NotImplementedError, ValueError, IndexError):
                if not fallback or results:
                    raise
                vmapped = None  # this decoder cannot be vmapped: autograd from here on
        results.append(replicated_jacobian(decoder, chunk, outputs, create_graph))
    jacobian = torch.cat(results)
    return jacobian if create_graph else jacobian.detach()
