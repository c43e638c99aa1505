"""A vision-language package's language model on torch: the model rebuilt from the card's sizes
and the package's ``weights.npz``, run through the same left-padded forward the graphs were
exported from (:class:`~orstream.vlm.model.padded_batch.PaddedDecoder`).

The package, not the Lightning checkpoint, is what this loads: both runtimes then serve the same
files, checked by the same sha256s and golden reference. The model is the plain ``nn.Module``s
of :mod:`orstream.vlm.model`, which training builds too; this runtime needs torch where the ONNX
one needs only ONNX Runtime, and no training code. The server and the export commands choose a
runtime with :func:`open_language`.

On CUDA the cache still comes back as numpy between steps
(:mod:`orstream.vlm.answering.language_runtime`), a copy each way per step; on the CPU, torch views
the arrays without copying.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from orstream.errors import OrstreamError
from orstream.package.loading import ModelPackage
from orstream.vlm.answering.language_runtime import Cache, LanguageRuntime, check_reference
from orstream.vlm.answering.onnx_language import open_vlm_package, vlm_section


class TorchLanguage:
    """Args:
    package: a vision-language package (or its folder).
    device: ``cpu`` or ``cuda[:N]``.
    threads: torch intra-op threads (None: leave torch's setting).

    Raises:
        OrstreamError: not a vlm package, a file that is not the card's, or a model that does
            not reproduce the golden reference.
    """

    name = "torch"

    def __init__(
        self,
        package: Path | ModelPackage,
        device: str = "cpu",
        threads: int | None = None,
        check: bool = True,
    ) -> None:
        import torch

        from orstream.vlm.model import VisionLanguageModel
        from orstream.vlm.model.padded_batch import PaddedDecoder

        if threads is not None:
            torch.set_num_threads(threads)
        self.package = open_vlm_package(package)
        spec = vlm_section(self.package)
        language = spec.language
        model = VisionLanguageModel(
            language.vocab_size,
            language.image_id,
            {source: spec.feature_width(source) for source in spec.projectors},
            width=language.width,
            layers=language.layers,
            heads=language.heads,
            kv_heads=language.kv_heads,
            mlp_hidden=language.mlp_hidden,
            rope_base=language.rope_base,
        )
        with np.load(self.package.root / spec.weights_file, allow_pickle=False) as weights:
            state = {name: torch.from_numpy(weights[name].copy()) for name in weights.files}
        model.load_state_dict(state)
        self._torch = torch
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.decoder = PaddedDecoder(self.model.language).eval()
        if check:
            check_reference(self, self.package)

    def _tensor(self, array: np.ndarray) -> object:
        return self._torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def embed(self, ids: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            embedded = self.model.language.embedding(self._tensor(ids.astype(np.int64)))
            return embedded.float().cpu().numpy()

    def project(self, source: str, features: np.ndarray) -> np.ndarray:
        from orstream.errors import OrstreamError

        if source not in self.model.projectors:
            raise OrstreamError(f"this model has no {source} projector")
        with self._torch.inference_mode():
            projected = self.model.projectors[source](self._tensor(features.astype(np.float32)))
            return projected.float().cpu().numpy()

    def prefill(self, embeds: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, Cache]:
        empty = self.decoder.empty_cache(embeds.shape[0])
        return self._run(embeds, mask, (empty[0].numpy(), empty[1].numpy()))

    def decode(self, embed: np.ndarray, mask: np.ndarray, cache: Cache) -> tuple[np.ndarray, Cache]:
        logits, grown = self._run(embed, mask, cache)
        return logits[:, -1], grown

    def _run(self, embeds: np.ndarray, mask: np.ndarray, cache: Cache) -> tuple[np.ndarray, Cache]:
        with self._torch.inference_mode():
            logits, keys, values = self.decoder(
                self._tensor(embeds.astype(np.float32)),
                self._tensor(mask.astype(np.int64)),
                self._tensor(cache[0]),
                self._tensor(cache[1]),
            )
            return logits.cpu().numpy(), (keys.cpu().numpy(), values.cpu().numpy())


Runtime = Literal["onnx", "torch"]


def open_language(
    package: Path | ModelPackage, runtime: Runtime, device: str = "cpu", threads: int = 1
) -> LanguageRuntime:
    """A vision-language package's language model on ``runtime``: ``onnx`` (ONNX Runtime on
    the CPU) or ``torch`` (on ``device``).

    Raises:
        OrstreamError: an unknown runtime, or as the runtimes' loading.
    """
    if runtime == "onnx":
        from orstream.vlm.answering.onnx_language import OnnxLanguage

        return OnnxLanguage(open_vlm_package(package), threads)
    if runtime == "torch":
        return TorchLanguage(package, device, threads)
    raise OrstreamError(f"unknown runtime {runtime!r} (onnx or torch)")
