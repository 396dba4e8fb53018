"""The layer table of a backbone, computed from the conv / pool / parameter formulas.

Pure PyTorch, never imports Django. A dry run with forward hooks only tells us the order in
which leaf modules run and the input each one receives (residual adds, concatenations and
flattens between modules are functional); every output shape and parameter count comes from
the formulas below. `table_check` then holds the formulas against what torch produced.

Shapes are per sample, without the batch dimension: (C, H, W) after a conv, (F,) after a
linear layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from efficientnet_lite_pytorch.utils import (
    Conv2dDynamicSamePadding,
    MemoryEfficientSwish,
    Swish,
)
from torch import nn
from torchvision.ops import StochasticDepth

from training.ml.backbones import Backbone, trainable_map

Shape = tuple[int, ...]

# Leaves that keep their input shape and hold no parameters.
_SHAPE_KEEPING: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.Tanh,
    nn.Sigmoid,
    nn.SiLU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.GELU,
    nn.Dropout,
    nn.Dropout2d,
    nn.LocalResponseNorm,
    StochasticDepth,
    Swish,
    MemoryEfficientSwish,
)


@dataclass(frozen=True)
class LayerRow:
    """One call of a leaf module: its name in the net, shapes per sample, parameters."""

    index: int
    name: str
    kind: str
    input_shape: Shape
    output_shape: Shape
    params: int
    trainable: bool


@dataclass(frozen=True)
class _Call:
    name: str
    module: nn.Module
    input_shape: Shape  # with the batch dimension
    output_shape: Shape  # as torch produced it, with the batch dimension


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return value[0], value[-1]


def _window_len(w: int, k: int, s: int, p: int, d: int = 1, ceil_mode: bool = False) -> int:
    """floor((W - K_eff + 2P) / S) + 1 with K_eff = D(K - 1) + 1; in ceil mode the last
    window must still start inside the input or its left padding (PyTorch's rule)."""
    span = w + 2 * p - (d * (k - 1) + 1)
    if not ceil_mode:
        return span // s + 1
    out = math.ceil(span / s) + 1
    if (out - 1) * s >= w + p:
        out -= 1
    return out


def _conv(m: nn.Conv2d, shape: Shape) -> tuple[Shape, int]:
    (kh, kw), (sh, sw), (dh, dw) = m.kernel_size, _pair(m.stride), m.dilation
    n, c_in, h, w = shape
    if isinstance(m, Conv2dDynamicSamePadding):
        # TF "SAME": pad (in total, split in forward) so that out = ceil(W / S).
        pad_h = max((math.ceil(h / sh) - 1) * sh + dh * (kh - 1) + 1 - h, 0)
        pad_w = max((math.ceil(w / sw) - 1) * sw + dw * (kw - 1) + 1 - w, 0)
        h_out = (h + pad_h - dh * (kh - 1) - 1) // sh + 1
        w_out = (w + pad_w - dw * (kw - 1) - 1) // sw + 1
    else:
        if isinstance(m.padding, str):
            raise ValueError(f"padding={m.padding!r} has no formula here")
        ph, pw = m.padding
        h_out = _window_len(h, kh, sh, ph, dh)
        w_out = _window_len(w, kw, sw, pw, dw)
    bias = 1 if m.bias is not None else 0
    params = (kh * kw * c_in // m.groups + bias) * m.out_channels
    return (n, m.out_channels, h_out, w_out), params


def _pool(m: nn.MaxPool2d | nn.AvgPool2d, shape: Shape) -> tuple[Shape, int]:
    n, c, h, w = shape
    kh, kw = _pair(m.kernel_size)
    sh, sw = _pair(m.stride if m.stride else m.kernel_size)
    ph, pw = _pair(m.padding)
    dh, dw = _pair(m.dilation) if isinstance(m, nn.MaxPool2d) else (1, 1)
    h_out = _window_len(h, kh, sh, ph, dh, m.ceil_mode)
    w_out = _window_len(w, kw, sw, pw, dw, m.ceil_mode)
    return (n, c, h_out, w_out), 0


def _adaptive_pool(
    m: nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d, shape: Shape
) -> tuple[Shape, int]:
    n, c, h, w = shape
    size = m.output_size
    oh, ow = (size, size) if isinstance(size, int) or size is None else size
    return (n, c, h if oh is None else oh, w if ow is None else ow), 0


def _linear(m: nn.Linear, shape: Shape) -> tuple[Shape, int]:
    bias = m.out_features if m.bias is not None else 0
    return (*shape[:-1], m.out_features), m.in_features * m.out_features + bias


def _batchnorm(m: nn.modules.batchnorm._BatchNorm, shape: Shape) -> tuple[Shape, int]:
    return shape, 2 * m.num_features if m.affine else 0


def _flatten(m: nn.Flatten, shape: Shape) -> tuple[Shape, int]:
    start = m.start_dim % len(shape)
    end = m.end_dim % len(shape)
    return (*shape[:start], math.prod(shape[start : end + 1]), *shape[end + 1 :]), 0


def _zero_pad(m: nn.ZeroPad2d, shape: Shape) -> tuple[Shape, int]:
    left, right, top, bottom = m.padding
    n, c, h, w = shape
    return (n, c, h + top + bottom, w + left + right), 0


_FORMULAS: list[
    tuple[type[nn.Module] | tuple[type[nn.Module], ...], Callable[..., tuple[Shape, int]]]
] = [
    (nn.Conv2d, _conv),
    ((nn.MaxPool2d, nn.AvgPool2d), _pool),
    ((nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), _adaptive_pool),
    (nn.Linear, _linear),
    (nn.modules.batchnorm._BatchNorm, _batchnorm),
    (nn.Flatten, _flatten),
    (nn.ZeroPad2d, _zero_pad),
    (_SHAPE_KEEPING, lambda m, shape: (shape, 0)),
]


def _formula(name: str, module: nn.Module, shape: Shape) -> tuple[Shape, int]:
    """(output shape, parameter count) of one leaf from its input shape (batch included)."""
    for kinds, rule in _FORMULAS:
        if isinstance(module, kinds):
            return rule(module, shape)
    raise ValueError(f"no formula for layer {name} ({type(module).__name__})")


def _trace(backbone: Backbone, input_size: int) -> list[_Call]:
    """Leaf-module calls of one no-grad forward pass at batch 1, in the order they ran."""
    net = backbone.net
    calls: list[_Call] = []
    handles = []
    for name, module in net.named_modules():
        if next(module.children(), None) is not None or isinstance(module, nn.Identity):
            continue

        def hook(
            m: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor, name: str = name
        ) -> None:
            calls.append(_Call(name, m, tuple(args[0].shape), tuple(out.shape)))

        handles.append(module.register_forward_hook(hook))
    modes = {m: m.training for m in net.modules()}
    device = next(net.parameters()).device
    x = torch.zeros(1, backbone.in_channels, input_size, input_size, device=device)
    try:
        net.eval()
        with torch.no_grad():
            net(x)
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes.items():
            m.training = training
    return calls


def _rows(backbone: Backbone, mode: str, calls: list[_Call]) -> list[LayerRow]:
    trains = trainable_map(backbone, mode)
    rows: list[LayerRow] = []
    seen: set[int] = set()
    for index, call in enumerate(calls):
        out, params = _formula(call.name, call.module, call.input_shape)
        if id(call.module) in seen:
            params = 0  # a module called again (a shared ReLU) owns its parameters once
        seen.add(id(call.module))
        own = [f"{call.name}.{p}" for p, _ in call.module.named_parameters()]
        rows.append(
            LayerRow(
                index=index,
                name=call.name,
                kind=type(call.module).__name__,
                input_shape=call.input_shape[1:],
                output_shape=out[1:],
                params=params,
                trainable=params > 0 and all(trains[p] for p in own),
            )
        )
    return rows


def layer_table(backbone: Backbone, mode: str, input_size: int | None = None) -> list[LayerRow]:
    """One row per leaf-module call, input `input_size` px square (default: native size)."""
    calls = _trace(backbone, input_size or backbone.input_size)
    return _rows(backbone, mode, calls)


def table_check(backbone: Backbone, mode: str, input_size: int | None = None) -> None:
    """Raise ValueError naming the first layer whose formula shape or parameter count differs
    from torch, or when the rows' total differs from the net's parameter count."""
    calls = _trace(backbone, input_size or backbone.input_size)
    rows = _rows(backbone, mode, calls)
    seen: set[int] = set()
    for row, call in zip(rows, calls, strict=True):
        if row.output_shape != call.output_shape[1:]:
            raise ValueError(
                f"layer {row.index} {row.name} ({row.kind}): formula gives output "
                f"{row.output_shape}, torch gives {call.output_shape[1:]}"
            )
        actual = 0 if id(call.module) in seen else sum(p.numel() for p in call.module.parameters())
        seen.add(id(call.module))
        if row.params != actual:
            raise ValueError(
                f"layer {row.index} {row.name} ({row.kind}): formula gives {row.params} "
                f"parameters, torch has {actual}"
            )
    total = sum(row.params for row in rows)
    actual_total = sum(p.numel() for p in backbone.net.parameters())
    if total != actual_total:
        raise ValueError(
            f"the layers' parameters add up to {total:,}, the net has {actual_total:,}: "
            "some module with parameters never ran"
        )


def table_data(rows: list[LayerRow]) -> list[dict[str, object]]:
    """`rows` as JSON-ready dicts: name, kind, input, output (shapes as lists), params,
    trains (None for a layer without parameters)."""
    return [
        {
            "name": row.name,
            "kind": row.kind,
            "input": list(row.input_shape),
            "output": list(row.output_shape),
            "params": row.params,
            "trains": row.trainable if row.params else None,
        }
        for row in rows
    ]


def _shape_text(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def table_text(rows: list[LayerRow]) -> str:
    """A plain-text table of `rows` followed by totals: parameters, trainable, frozen."""
    header = ("#", "layer", "kind", "input", "output", "params", "trains")
    body = [
        (
            str(row.index),
            row.name,
            row.kind,
            _shape_text(row.input_shape),
            _shape_text(row.output_shape),
            f"{row.params:,}",
            ("yes" if row.trainable else "no") if row.params else "",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    right = {0, 5}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    total = sum(row.params for row in rows)
    trainable = sum(row.params for row in rows if row.trainable)
    lines = [line(header), line(tuple("-" * w for w in widths)), *map(line, body)]
    lines += [
        "",
        f"parameters: {total:,}",
        f"trainable:  {trainable:,}",
        f"frozen:     {total - trainable:,}",
    ]
    return "\n".join(lines) + "\n"
