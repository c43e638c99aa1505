"""ONNX operators as torch functions: the op table of the ONNX-to-torch interpreter.

Each entry of :data:`OPS` runs one ONNX node (default domain, opset 13 and later) on torch
tensors, following the ONNX operator specification's attributes and defaults. Float tensors are
all of one compute dtype (:attr:`OpContext.dtype`): an op that makes a float tensor (Cast to a
float type, ConstantOfShape, Range) makes it in that dtype; integer and bool tensors keep their
ONNX types.

Inputs an op reads as plain numbers on the host (a shape, axes, pads, split sizes) are listed
in :attr:`Op.host_inputs`: the interpreter requires them to be known at load (constants, or
folded from the static input shapes), so a per-frame call never waits on the device for a
number and can be captured in a CUDA graph. Shape and Size read only their input's shape
(:attr:`Op.shape_only`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from onnx import TensorProto, numpy_helper

from orstream.errors import OrstreamError

Tensor = torch.Tensor

TORCH_DTYPES: dict[int, torch.dtype] = {
    TensorProto.FLOAT: torch.float32,
    TensorProto.FLOAT16: torch.float16,
    TensorProto.BFLOAT16: torch.bfloat16,
    TensorProto.DOUBLE: torch.float64,
    TensorProto.INT64: torch.int64,
    TensorProto.INT32: torch.int32,
    TensorProto.INT16: torch.int16,
    TensorProto.INT8: torch.int8,
    TensorProto.UINT8: torch.uint8,
    TensorProto.BOOL: torch.bool,
}
"""ONNX element types the interpreter runs -> torch dtypes (floats become the compute dtype)."""
FLOAT_TYPES = frozenset(
    {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE}
)


@dataclass(frozen=True)
class OpContext:
    """Where ops run and the dtype every float tensor has."""

    device: torch.device
    dtype: torch.dtype


@dataclass(frozen=True)
class Node:
    """One ONNX node as an op sees it: its attributes (decoded) and how many outputs it has."""

    op_type: str
    name: str
    attrs: dict[str, Any]
    outputs: int


Inputs = Sequence[Tensor | None]
OpFunction = Callable[[OpContext, Inputs, Node], "Tensor | tuple[Tensor, ...]"]


@dataclass(frozen=True)
class Op:
    """How to run one ONNX operator."""

    run: OpFunction
    host_inputs: frozenset[int] = field(default_factory=frozenset)
    shape_only: bool = False


def tensor_from_proto(proto: TensorProto) -> Tensor:
    """An ONNX tensor (initializer or attribute) as a CPU tensor of its own dtype."""
    if proto.data_type not in TORCH_DTYPES:
        raise OrstreamError(
            f"tensor {proto.name!r} has ONNX element type "
            f"{TensorProto.DataType.Name(proto.data_type)}, which the torch backend does not run"
        )
    array = numpy_helper.to_array(proto)
    if proto.data_type == TensorProto.BFLOAT16:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.array(array, copy=True))


def _ints(tensor: Tensor | None) -> list[int]:
    return [] if tensor is None else [int(v) for v in tensor.reshape(-1).tolist()]


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _float(ctx: OpContext, value: Tensor) -> Tensor:
    return value.to(ctx.dtype) if value.is_floating_point() else value


# --- elementwise ---------------------------------------------------------------------------


def _unary(function: Callable[[Tensor], Tensor]) -> Op:
    return Op(lambda ctx, inputs, node: function(_required(inputs, 0)))


def _binary(function: Callable[[Tensor, Tensor], Tensor]) -> Op:
    return Op(lambda ctx, inputs, node: function(_required(inputs, 0), _required(inputs, 1)))


def _variadic(function: Callable[[Tensor, Tensor], Tensor]) -> Op:
    def run(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
        values = [value for value in inputs if value is not None]
        result = values[0]
        for value in values[1:]:
            result = function(result, value)
        return result

    return Op(run)


def _required(inputs: Inputs, index: int) -> Tensor:
    value = inputs[index] if index < len(inputs) else None
    if value is None:
        raise OrstreamError(f"input {index} is required")
    return value


def _div(a: Tensor, b: Tensor) -> Tensor:
    if a.is_floating_point():
        return a / b
    # ONNX integer division truncates toward zero, as C does.
    return torch.div(a, b, rounding_mode="trunc")


def _pow(a: Tensor, b: Tensor) -> Tensor:
    result = torch.pow(a, b)
    # The result has the base's type, whatever the exponent's.
    return result if result.dtype == a.dtype else result.to(a.dtype)


def _mod(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    a, b = _required(inputs, 0), _required(inputs, 1)
    if node.attrs.get("fmod", 0):
        return torch.fmod(a, b)
    if a.is_floating_point():
        raise OrstreamError("Mod of floats needs fmod=1")
    return torch.remainder(a, b)


def _where(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    return torch.where(_required(inputs, 0), _required(inputs, 1), _required(inputs, 2))


def _clip(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    x = _required(inputs, 0)
    low = inputs[1] if len(inputs) > 1 else None
    high = inputs[2] if len(inputs) > 2 else None
    if low is not None:
        x = torch.maximum(x, low)
    if high is not None:
        x = torch.minimum(x, high)
    return x


def _leaky_relu(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    return F.leaky_relu(_required(inputs, 0), node.attrs.get("alpha", 0.01))


def _elu(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    return F.elu(_required(inputs, 0), node.attrs.get("alpha", 1.0))


def _selu(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    alpha = node.attrs.get("alpha", 1.67326319217681884765625)
    gamma = node.attrs.get("gamma", 1.05070102214813232421875)
    x = _required(inputs, 0)
    return gamma * torch.where(x > 0, x, alpha * torch.expm1(x))


def _prelu(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    x, slope = _required(inputs, 0), _required(inputs, 1)
    return torch.where(x < 0, x * slope, x)


def _hard_sigmoid(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    alpha = node.attrs.get("alpha", 0.2)
    beta = node.attrs.get("beta", 0.5)
    return torch.clamp(_required(inputs, 0) * alpha + beta, 0.0, 1.0)


def _gelu(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    return F.gelu(_required(inputs, 0), approximate=node.attrs.get("approximate", "none"))


def _softplus(x: Tensor) -> Tensor:
    # log(1 + exp(x)) without torch's linear cut-off above 20, which ONNX does not have.
    return torch.logaddexp(x, torch.zeros((), dtype=x.dtype, device=x.device))


def _cast(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    to = node.attrs["to"]
    if to not in TORCH_DTYPES:
        raise OrstreamError(f"Cast to {TensorProto.DataType.Name(to)} is not supported")
    dtype = ctx.dtype if to in FLOAT_TYPES else TORCH_DTYPES[to]
    return _required(inputs, 0).to(dtype)


def _cast_like(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    return _required(inputs, 0).to(_required(inputs, 1).dtype)


def _identity(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    return _required(inputs, 0)


def _dropout(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor | tuple[Tensor, ...]:
    # Inference: the input passes unchanged and the mask keeps everything.
    x = _required(inputs, 0)
    if node.outputs < 2:
        return x
    return x, torch.ones(x.shape, dtype=torch.bool, device=x.device)


# --- linear algebra and neural network layers -----------------------------------------------


def _matmul(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    return torch.matmul(_required(inputs, 0), _required(inputs, 1))


def _gemm(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    a, b = _required(inputs, 0), _required(inputs, 1)
    c = inputs[2] if len(inputs) > 2 else None
    alpha = node.attrs.get("alpha", 1.0)
    beta = node.attrs.get("beta", 1.0)
    if node.attrs.get("transA", 0):
        a = a.t()
    trans_b = bool(node.attrs.get("transB", 0))
    if alpha == 1.0 and beta == 1.0 and trans_b and (c is None or c.shape == b.shape[:1]):
        return F.linear(a, b, c)
    y = a @ (b.t() if trans_b else b)
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c if beta == 1.0 else c * beta)
    return y


def _einsum(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    equation = node.attrs["equation"].replace(" ", "")
    return torch.einsum(equation, *[value for value in inputs if value is not None])


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _spatial(node: Node, kernel: Sequence[int]) -> tuple[list[int], list[int]]:
    dims = len(kernel)
    strides = list(node.attrs.get("strides", [1] * dims))
    dilations = list(node.attrs.get("dilations", [1] * dims))
    return strides, dilations


def _auto_pads(
    node: Node,
    sizes: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
) -> list[int]:
    """Begin pads then end pads, from ``pads`` or ``auto_pad`` (ONNX's convention)."""
    dims = len(kernel)
    auto_pad = node.attrs.get("auto_pad", "NOTSET")
    if auto_pad == "NOTSET":
        return list(node.attrs.get("pads", [0] * (2 * dims)))
    if auto_pad == "VALID":
        return [0] * (2 * dims)
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise OrstreamError(f"auto_pad {auto_pad!r} is not an ONNX value")
    begins, ends = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations, strict=True):
        out = -(-size // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small, large = total // 2, total - total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else large)
        ends.append(large if auto_pad == "SAME_UPPER" else small)
    return begins + ends


def _torch_pad(begins: Sequence[int], ends: Sequence[int]) -> list[int]:
    """ONNX begin/end pads of the trailing dims -> F.pad's order (last dim first)."""
    pad: list[int] = []
    for begin, end in zip(reversed(begins), reversed(ends), strict=True):
        pad += [begin, end]
    return pad


def _conv(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    x, w = _required(inputs, 0), _required(inputs, 1)
    b = inputs[2] if len(inputs) > 2 else None
    kernel = list(w.shape[2:])
    dims = len(kernel)
    if dims not in _CONV:
        raise OrstreamError(f"Conv over {dims} spatial dimensions is not supported")
    strides, dilations = _spatial(node, kernel)
    pads = _auto_pads(node, list(x.shape[2:]), kernel, strides, dilations)
    begins, ends = pads[:dims], pads[dims:]
    if begins != ends:
        x = F.pad(x, _torch_pad(begins, ends))
        begins = [0] * dims
    return _CONV[dims](
        x,
        w,
        b,
        stride=strides,
        padding=begins,
        dilation=dilations,
        groups=node.attrs.get("group", 1),
    )


def _conv_transpose(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    x, w = _required(inputs, 0), _required(inputs, 1)
    b = inputs[2] if len(inputs) > 2 else None
    kernel = list(w.shape[2:])
    dims = len(kernel)
    if dims not in _CONV_TRANSPOSE:
        raise OrstreamError(f"ConvTranspose over {dims} spatial dimensions is not supported")
    strides, dilations = _spatial(node, kernel)
    output_padding = list(node.attrs.get("output_padding", [0] * dims))
    sizes = list(x.shape[2:])
    # The output with no padding removed, and then the pads ONNX removes from each end.
    full = [
        s * (n - 1) + p + (k - 1) * d + 1
        for n, k, s, d, p in zip(sizes, kernel, strides, dilations, output_padding, strict=True)
    ]
    auto_pad = node.attrs.get("auto_pad", "NOTSET")
    output_shape = node.attrs.get("output_shape")
    if output_shape is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        output_shape = [n * s for n, s in zip(sizes, strides, strict=True)]
    if output_shape is not None:
        output_shape = list(output_shape)[-dims:]
        totals = [f - o for f, o in zip(full, output_shape, strict=True)]
        if min(totals) < 0:
            raise OrstreamError(f"ConvTranspose output_shape {output_shape} exceeds {full}")
        upper = auto_pad == "SAME_UPPER"
        begins = [t // 2 if upper else t - t // 2 for t in totals]
        ends = [t - bg for t, bg in zip(totals, begins, strict=True)]
    elif auto_pad in ("NOTSET", "VALID"):
        pads = list(node.attrs.get("pads", [0] * (2 * dims))) if auto_pad == "NOTSET" else []
        pads = pads or [0] * (2 * dims)
        begins, ends = pads[:dims], pads[dims:]
    else:
        raise OrstreamError(f"auto_pad {auto_pad!r} is not an ONNX value")
    y = _CONV_TRANSPOSE[dims](
        x,
        w,
        b,
        stride=strides,
        padding=0,
        output_padding=output_padding,
        groups=node.attrs.get("group", 1),
        dilation=dilations,
    )
    index = [slice(None), slice(None)] + [
        slice(begin, f - end) for begin, end, f in zip(begins, ends, full, strict=True)
    ]
    return y[tuple(index)]


def _batch_norm(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    if node.attrs.get("training_mode", 0):
        raise OrstreamError("BatchNormalization in training mode is not supported")
    x, scale, bias, mean, var = (_required(inputs, i) for i in range(5))
    return F.batch_norm(x, mean, var, scale, bias, False, 0.0, node.attrs.get("epsilon", 1e-5))


def _instance_norm(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    x, scale, bias = (_required(inputs, i) for i in range(3))
    return F.instance_norm(x, weight=scale, bias=bias, eps=node.attrs.get("epsilon", 1e-5))


def _layer_norm(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor | tuple[Tensor, ...]:
    x, scale = _required(inputs, 0), _required(inputs, 1)
    bias = inputs[2] if len(inputs) > 2 else None
    axis = _axis(node.attrs.get("axis", -1), x.dim())
    epsilon = node.attrs.get("epsilon", 1e-5)
    shape = tuple(x.shape[axis:])
    if node.outputs == 1:
        if tuple(scale.shape) != shape:
            scale = scale.expand(shape).contiguous()
        if bias is not None and tuple(bias.shape) != shape:
            bias = bias.expand(shape).contiguous()
        return F.layer_norm(x, shape, scale, bias, epsilon)
    dims = tuple(range(axis, x.dim()))
    wide = x.float()
    mean = wide.mean(dim=dims, keepdim=True)
    inv_std = torch.rsqrt(wide.var(dim=dims, unbiased=False, keepdim=True) + epsilon)
    y = ((wide - mean) * inv_std).to(x.dtype) * scale
    if bias is not None:
        y = y + bias
    return (y, mean.to(x.dtype), inv_std.to(x.dtype))[: node.outputs]


def _softmax(log: bool) -> Op:
    def run(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
        x = _required(inputs, 0)
        axis = node.attrs.get("axis", -1)
        return F.log_softmax(x, dim=axis) if log else F.softmax(x, dim=axis)

    return Op(run)


def _global_pool(reduce: Callable[..., Tensor]) -> Op:
    def run(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
        x = _required(inputs, 0)
        return reduce(x, dim=tuple(range(2, x.dim())), keepdim=True)

    return Op(run)


_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def _pool_geometry(node: Node, x: Tensor) -> tuple[list[int], list[int], list[int], list[int]]:
    kernel = list(node.attrs["kernel_shape"])
    dims = len(kernel)
    if dims not in _AVG_POOL:
        raise OrstreamError(f"{node.op_type} over {dims} spatial dimensions is not supported")
    strides, dilations = _spatial(node, kernel)
    pads = _auto_pads(node, list(x.shape[2:]), kernel, strides, dilations)
    return kernel, strides, dilations, pads


def _fits_torch_padding(kernel: Sequence[int], begins: Sequence[int], ends: Sequence[int]) -> bool:
    return list(begins) == list(ends) and all(
        p <= k // 2 for p, k in zip(begins, kernel, strict=True)
    )


def _average_pool(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    x = _required(inputs, 0)
    kernel, strides, dilations, pads = _pool_geometry(node, x)
    if any(d != 1 for d in dilations):
        raise OrstreamError("AveragePool with dilations is not supported")
    dims = len(kernel)
    begins, ends = pads[:dims], pads[dims:]
    ceil_mode = bool(node.attrs.get("ceil_mode", 0))
    include_pad = bool(node.attrs.get("count_include_pad", 0))
    pool = _AVG_POOL[dims]
    if _fits_torch_padding(kernel, begins, ends):
        return pool(x, kernel, strides, begins, ceil_mode, include_pad)
    if ceil_mode:
        raise OrstreamError("AveragePool with uneven pads and ceil_mode is not supported")
    padded = F.pad(x, _torch_pad(begins, ends))
    total = pool(padded, kernel, strides, 0, False, True)
    if include_pad:
        return total
    ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
    return total / pool(F.pad(ones, _torch_pad(begins, ends)), kernel, strides, 0, False, True)


def _max_pool(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    if node.outputs > 1:
        raise OrstreamError("MaxPool's Indices output is not supported")
    x = _required(inputs, 0)
    kernel, strides, dilations, pads = _pool_geometry(node, x)
    dims = len(kernel)
    begins, ends = pads[:dims], pads[dims:]
    ceil_mode = bool(node.attrs.get("ceil_mode", 0))
    if not _fits_torch_padding(kernel, begins, ends):
        x = F.pad(x, _torch_pad(begins, ends), value=-math.inf)
        begins = [0] * dims
    return _MAX_POOL[dims](x, kernel, strides, begins, dilations, ceil_mode)


# --- reductions ------------------------------------------------------------------------------


def _reduce_axes(inputs: Inputs, node: Node, rank: int) -> tuple[int, ...] | None:
    """The axes to reduce; None: reduce nothing (``noop_with_empty_axes``)."""
    axes = _ints(inputs[1]) if len(inputs) > 1 and inputs[1] is not None else None
    if axes is None:
        axes = list(node.attrs.get("axes", []))
    if not axes:
        return None if node.attrs.get("noop_with_empty_axes", 0) else tuple(range(rank))
    return tuple(sorted(_axis(a, rank) for a in axes))


def _reduce(function: Callable[[Tensor, tuple[int, ...], bool], Tensor]) -> Op:
    def run(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
        x = _required(inputs, 0)
        axes = _reduce_axes(inputs, node, x.dim())
        if axes is None:
            return x
        return function(x, axes, bool(node.attrs.get("keepdims", 1)))

    return Op(run, host_inputs=frozenset({1}))


def _prod(x: Tensor, axes: tuple[int, ...], keepdim: bool) -> Tensor:
    for axis in sorted(axes, reverse=True):
        x = torch.prod(x, dim=axis, keepdim=keepdim)
    return x


def _arg(function: Callable[..., Tensor]) -> Op:
    def run(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
        x = _required(inputs, 0)
        axis = _axis(node.attrs.get("axis", 0), x.dim())
        keepdim = bool(node.attrs.get("keepdims", 1))
        if not node.attrs.get("select_last_index", 0):
            return function(x, dim=axis, keepdim=keepdim)
        last = x.shape[axis] - 1
        return last - function(x.flip(axis), dim=axis, keepdim=keepdim)

    return Op(run)


# --- shapes and indexing ---------------------------------------------------------------------


def _shape(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    shape = list(_required(inputs, 0).shape)
    rank = len(shape)
    start = node.attrs.get("start", 0)
    end = node.attrs.get("end", rank)
    return torch.tensor(shape[start:end], dtype=torch.int64)


def _size(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    return torch.tensor(_required(inputs, 0).numel(), dtype=torch.int64)


def _reshape(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    x = _required(inputs, 0)
    shape = _ints(inputs[1])
    if not node.attrs.get("allowzero", 0):
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return x.reshape(shape)


def _flatten(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    x = _required(inputs, 0)
    axis = _axis(node.attrs.get("axis", 1), x.dim())
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


def _transpose(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    x = _required(inputs, 0)
    perm = node.attrs.get("perm", list(reversed(range(x.dim()))))
    return x.permute(*perm)


def _squeeze(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    x = _required(inputs, 0)
    axes = _ints(inputs[1]) if len(inputs) > 1 else list(node.attrs.get("axes", []))
    if not axes:
        return x.reshape([d for d in x.shape if d != 1])
    axes = [_axis(a, x.dim()) for a in axes]
    return x.reshape([d for i, d in enumerate(x.shape) if i not in axes])


def _unsqueeze(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    x = _required(inputs, 0)
    axes = _ints(inputs[1]) if len(inputs) > 1 else list(node.attrs.get("axes", []))
    rank = x.dim() + len(axes)
    shape = list(x.shape)
    for axis in sorted(_axis(a, rank) for a in axes):
        shape.insert(axis, 1)
    return x.reshape(shape)


def _concat(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    values = [value for value in inputs if value is not None]
    axis = _axis(node.attrs["axis"], values[0].dim())
    return torch.cat(values, dim=axis)


def _split(ctx: OpContext, inputs: Inputs, node: Node) -> tuple[Tensor, ...]:
    x = _required(inputs, 0)
    axis = _axis(node.attrs.get("axis", 0), x.dim())
    size = x.shape[axis]
    sizes = _ints(inputs[1]) if len(inputs) > 1 else list(node.attrs.get("split", []))
    if not sizes:
        parts = node.attrs.get("num_outputs", node.outputs)
        chunk = -(-size // parts)
        sizes = [chunk] * (parts - 1) + [size - chunk * (parts - 1)]
    return tuple(torch.split(x, sizes, dim=axis))


def _slice(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    x = _required(inputs, 0)
    starts, ends = _ints(inputs[1]), _ints(inputs[2])
    axes = _ints(inputs[3]) if len(inputs) > 3 and inputs[3] is not None else []
    axes = axes or list(range(len(starts)))
    steps = _ints(inputs[4]) if len(inputs) > 4 and inputs[4] is not None else []
    steps = steps or [1] * len(starts)
    index: list[slice] = [slice(None)] * x.dim()
    flips: list[int] = []
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis = _axis(axis, x.dim())
        size = x.shape[axis]
        start = start + size if start < 0 else start
        end = end + size if end < 0 else end
        if step > 0:
            index[axis] = slice(min(max(start, 0), size), min(max(end, 0), size), step)
            continue
        if step == 0:
            raise OrstreamError("Slice step 0")
        # A negative step walks the flipped axis forward: element i is size - 1 - i there.
        start = min(max(start, 0), size - 1)
        end = min(max(end, -1), size - 1)
        flips.append(axis)
        index[axis] = slice(size - 1 - start, max(size - 1 - end, size - 1 - start), -step)
    if flips:
        x = x.flip(flips)
    return x[tuple(index)]


def _normalised_indices(indices: Tensor, size: int) -> Tensor:
    indices = indices.long()
    return torch.where(indices < 0, indices + size, indices)


def _gather(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    x, indices = _required(inputs, 0), _required(inputs, 1)
    axis = _axis(node.attrs.get("axis", 0), x.dim())
    flat = _normalised_indices(indices, x.shape[axis]).reshape(-1)
    picked = x.index_select(axis, flat)
    # a tuple, so that a scalar index into a vector gives a scalar (reshape of no sizes fails)
    return picked.reshape((*x.shape[:axis], *indices.shape, *x.shape[axis + 1 :]))


def _gather_elements(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    x, indices = _required(inputs, 0), _required(inputs, 1)
    axis = _axis(node.attrs.get("axis", 0), x.dim())
    return torch.gather(x, axis, _normalised_indices(indices, x.shape[axis]))


def _expand(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    x = _required(inputs, 0)
    shape = torch.broadcast_shapes(tuple(x.shape), tuple(_ints(inputs[1])))
    return x.expand(shape)


def _tile(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    return _required(inputs, 0).repeat(_ints(inputs[1]))


def _constant_of_shape(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    value = node.attrs.get("value")
    fill = torch.zeros((), dtype=torch.float32) if value is None else value.reshape(())
    dtype = ctx.dtype if fill.is_floating_point() else fill.dtype
    return torch.full(_ints(inputs[0]), fill.item(), dtype=dtype, device=ctx.device)


def _constant(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    attrs = node.attrs
    if "value" in attrs:
        return _float(ctx, attrs["value"]).to(ctx.device)
    for name, dtype in (
        ("value_float", torch.float32),
        ("value_floats", torch.float32),
        ("value_int", torch.int64),
        ("value_ints", torch.int64),
    ):
        if name in attrs:
            return _float(ctx, torch.tensor(attrs[name], dtype=dtype, device=ctx.device))
    raise OrstreamError(f"Constant with {sorted(attrs)} is not supported")


def _range(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    start, limit, delta = (_required(inputs, i) for i in range(3))
    dtype = ctx.dtype if start.is_floating_point() else start.dtype
    return torch.arange(start.item(), limit.item(), delta.item(), dtype=dtype, device=ctx.device)


def _pad(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    x = _required(inputs, 0)
    pads = _ints(inputs[1]) if len(inputs) > 1 else list(node.attrs.get("pads", []))
    value = inputs[2] if len(inputs) > 2 else None
    axes = _ints(inputs[3]) if len(inputs) > 3 and inputs[3] is not None else []
    axes = [_axis(a, x.dim()) for a in axes] or list(range(x.dim()))
    count = len(axes)
    begins = [0] * x.dim()
    ends = [0] * x.dim()
    for i, axis in enumerate(axes):
        begins[axis], ends[axis] = pads[i], pads[count + i]
    mode = node.attrs.get("mode", "constant")
    padded = [i for i in range(x.dim()) if begins[i] or ends[i]]
    first = padded[0] if padded else x.dim()
    if mode == "constant":
        fill = 0.0 if value is None or value.numel() == 0 else value.reshape(()).item()
        return F.pad(x, _torch_pad(begins[first:], ends[first:]), value=fill)
    modes = {"reflect": "reflect", "edge": "replicate", "wrap": "circular"}
    if mode not in modes:
        raise OrstreamError(f"Pad mode {mode!r} is not supported")
    # torch pads the last 1-3 dims of a batched input in these modes.
    trailing = x.dim() - first
    if trailing > 3 or first < 1:
        raise OrstreamError(f"Pad mode {mode!r} of dims {padded} of a rank-{x.dim()} tensor")
    lead = x.shape[:first]
    batched = x.reshape(1, -1, *x.shape[first:]) if first != 1 else x.reshape(1, *x.shape)
    out = F.pad(batched, _torch_pad(begins[first:], ends[first:]), mode=modes[mode])
    return out.reshape((*lead, *out.shape[2:]))


def _resize(ctx: OpContext, inputs: Inputs, node: Node) -> Tensor:
    x = _required(inputs, 0)
    scales = inputs[2] if len(inputs) > 2 else None
    sizes = _ints(inputs[3]) if len(inputs) > 3 and inputs[3] is not None else []
    attrs = node.attrs
    mode = attrs.get("mode", "nearest")
    transform = attrs.get("coordinate_transformation_mode", "half_pixel")
    nearest = attrs.get("nearest_mode", "round_prefer_floor")
    if (
        attrs.get("antialias", 0)
        or attrs.get("axes")
        or attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch"
    ):
        raise OrstreamError("Resize with antialias, axes or a keep_aspect_ratio_policy")
    spatial = x.dim() - 2
    if sizes:
        if sizes[:2] != list(x.shape[:2]):
            raise OrstreamError("Resize of the batch or channel dimension")
        kwargs: dict[str, Any] = {"size": sizes[2:]}
    else:
        factors = [float(v) for v in (scales.reshape(-1).tolist() if scales is not None else [])]
        if factors[:2] != [1.0, 1.0]:
            raise OrstreamError("Resize of the batch or channel dimension")
        kwargs = {"scale_factor": factors[2:], "recompute_scale_factor": False}
    if mode == "nearest" and transform == "asymmetric" and nearest == "floor":
        return F.interpolate(x, mode="nearest", **kwargs)
    if (
        mode == "nearest"
        and transform in ("half_pixel", "pytorch_half_pixel")
        and (nearest == "round_prefer_ceil")
    ):
        return F.interpolate(x, mode="nearest-exact", **kwargs)
    linear = {1: "linear", 2: "bilinear", 3: "trilinear"}.get(spatial)
    if (
        mode == "linear"
        and linear is not None
        and transform in ("half_pixel", "pytorch_half_pixel", "align_corners")
    ):
        return F.interpolate(x, mode=linear, align_corners=transform == "align_corners", **kwargs)
    if (
        mode == "cubic"
        and spatial == 2
        and transform in ("half_pixel", "align_corners")
        and (attrs.get("cubic_coeff_a", -0.75) == -0.75)
    ):
        return F.interpolate(
            x, mode="bicubic", align_corners=transform == "align_corners", **kwargs
        )
    raise OrstreamError(
        f"Resize mode={mode} coordinate_transformation_mode={transform} nearest_mode={nearest}"
        " is not supported"
    )


OPS: dict[str, Op] = {
    # elementwise arithmetic and logic
    "Add": _binary(torch.add),
    "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul),
    "Div": _binary(_div),
    "Pow": _binary(_pow),
    "Mod": Op(_mod),
    "Max": _variadic(torch.maximum),
    "Min": _variadic(torch.minimum),
    "Sum": _variadic(torch.add),
    "Equal": _binary(torch.eq),
    "Less": _binary(torch.lt),
    "LessOrEqual": _binary(torch.le),
    "Greater": _binary(torch.gt),
    "GreaterOrEqual": _binary(torch.ge),
    "And": _binary(torch.logical_and),
    "Or": _binary(torch.logical_or),
    "Xor": _binary(torch.logical_xor),
    "Not": _unary(torch.logical_not),
    "Where": Op(_where),
    "Clip": Op(_clip),
    "Neg": _unary(torch.neg),
    "Abs": _unary(torch.abs),
    "Sign": _unary(torch.sign),
    "Reciprocal": _unary(torch.reciprocal),
    "Sqrt": _unary(torch.sqrt),
    "Exp": _unary(torch.exp),
    "Log": _unary(torch.log),
    "Erf": _unary(torch.erf),
    "Sin": _unary(torch.sin),
    "Cos": _unary(torch.cos),
    "Tanh": _unary(torch.tanh),
    "Floor": _unary(torch.floor),
    "Ceil": _unary(torch.ceil),
    "Round": _unary(torch.round),
    "IsNaN": _unary(torch.isnan),
    # activations
    "Relu": _unary(F.relu),
    "Sigmoid": _unary(torch.sigmoid),
    "HardSigmoid": Op(_hard_sigmoid),
    "HardSwish": _unary(F.hardswish),
    "LeakyRelu": Op(_leaky_relu),
    "Elu": Op(_elu),
    "Selu": Op(_selu),
    "PRelu": Op(_prelu),
    "Gelu": Op(_gelu),
    "Softplus": _unary(_softplus),
    "Softsign": _unary(F.softsign),
    "Mish": _unary(F.mish),
    "Softmax": _softmax(log=False),
    "LogSoftmax": _softmax(log=True),
    # types and plumbing
    "Cast": Op(_cast),
    "CastLike": Op(_cast_like),
    "Identity": Op(_identity),
    "Dropout": Op(_dropout),
    "Constant": Op(_constant),
    "ConstantOfShape": Op(_constant_of_shape, host_inputs=frozenset({0})),
    "Range": Op(_range, host_inputs=frozenset({0, 1, 2})),
    # linear algebra and layers
    "MatMul": Op(_matmul),
    "Gemm": Op(_gemm),
    "Einsum": Op(_einsum),
    "Conv": Op(_conv),
    "ConvTranspose": Op(_conv_transpose),
    "BatchNormalization": Op(_batch_norm),
    "InstanceNormalization": Op(_instance_norm),
    "LayerNormalization": Op(_layer_norm),
    "GlobalAveragePool": _global_pool(torch.mean),
    "GlobalMaxPool": _global_pool(torch.amax),
    "AveragePool": Op(_average_pool),
    "MaxPool": Op(_max_pool),
    "Resize": Op(_resize, host_inputs=frozenset({1, 2, 3})),
    # reductions
    "ReduceMean": _reduce(lambda x, axes, keep: torch.mean(x, dim=axes, keepdim=keep)),
    "ReduceSum": _reduce(lambda x, axes, keep: torch.sum(x, dim=axes, keepdim=keep)),
    "ReduceMax": _reduce(lambda x, axes, keep: torch.amax(x, dim=axes, keepdim=keep)),
    "ReduceMin": _reduce(lambda x, axes, keep: torch.amin(x, dim=axes, keepdim=keep)),
    "ReduceProd": _reduce(_prod),
    "ReduceL2": _reduce(lambda x, axes, keep: torch.sqrt(torch.sum(x * x, dim=axes, keepdim=keep))),
    "ReduceSumSquare": _reduce(lambda x, axes, keep: torch.sum(x * x, dim=axes, keepdim=keep)),
    "ArgMax": _arg(torch.argmax),
    "ArgMin": _arg(torch.argmin),
    # shapes and indexing
    "Shape": Op(_shape, shape_only=True),
    "Size": Op(_size, shape_only=True),
    "Reshape": Op(_reshape, host_inputs=frozenset({1})),
    "Flatten": Op(_flatten),
    "Transpose": Op(_transpose),
    "Squeeze": Op(_squeeze, host_inputs=frozenset({1})),
    "Unsqueeze": Op(_unsqueeze, host_inputs=frozenset({1})),
    "Concat": Op(_concat),
    "Split": Op(_split, host_inputs=frozenset({1})),
    "Slice": Op(_slice, host_inputs=frozenset({1, 2, 3, 4})),
    "Gather": Op(_gather),
    "GatherElements": Op(_gather_elements),
    "Expand": Op(_expand, host_inputs=frozenset({1})),
    "Tile": Op(_tile, host_inputs=frozenset({1})),
    "Pad": Op(_pad, host_inputs=frozenset({1, 2, 3})),
}
"""ONNX operator type (default domain) -> how to run it."""
