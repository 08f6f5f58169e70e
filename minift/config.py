r"""The shape of the autoregressive Transformer of §3.1, as one frozen dataclass.

Article §3.1 (Mô hình Xác Suất Tự Hồi Quy / autoregressive probability model) needs a network
that turns a prefix $x_{<t}$ into $P_\theta(x_t \mid x_{<t})$; this module only says how big
that network is. `minift.model` builds and runs it.

`ModelConfig` is frozen (hence hashable), so it can be passed to `jax.jit` as a static
argument: two calls with equal configs share one compiled program. The presets say why each
value was chosen; `get_config("course", vocab_size=tok.vocab_size)` adapts one to a tokenizer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

ATTENTION_IMPLEMENTATIONS = ("reference", "fast")
COMPUTE_DTYPES = (None, "float32", "bfloat16")
# How the model runs, not what it is: a checkpoint written before one of these existed loads with
# its default (every other field must be present, so a model never loads with a wrong shape).
EXECUTION_FIELDS = ("attention", "compute_dtype", "remat")
# Added after the first checkpoints were written; their default reproduces those models exactly.
LATER_FIELDS = EXECUTION_FIELDS + ("rope_scaling",)


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of a decoder-only Llama-style Transformer (§3.1).

    Shape letters used across minift: V vocab, D model width, L layers, H query heads,
    G key/value heads (grouped-query attention when G < H), K = D // H head dim, F MLP hidden.
    """

    vocab_size: int  # V: must equal the tokenizer's vocabulary size
    d_model: int  # D: width of the residual stream
    n_layers: int  # L: number of stacked blocks (run with lax.scan)
    n_heads: int  # H: query heads
    n_kv_heads: int  # G: key/value heads; G == H is classic multi-head attention
    d_ff: int  # F: SwiGLU hidden width (Llama uses about 8/3 * D, rounded)
    max_seq_len: int  # longest sequence the model is meant to see (RoPE itself has no hard limit)
    rope_theta: float = 10000.0  # RoPE base: frequencies theta^(-2i/K), as in Llama-2
    norm_eps: float = 1e-5  # RMSNorm epsilon, as in Llama-2 / TinyLlama
    tie_embeddings: bool = True  # LM head = embed.T: saves V*D params, which dominate small models
    # Llama-3's RoPE scaling, (factor, low_freq_factor, high_freq_factor, original_max_position_embeddings),
    # e.g. (8.0, 1.0, 4.0, 8192) for Llama-3.1/3.2; None is plain RoPE (Llama-2, TinyLlama, SmolLM).
    rope_scaling: tuple[float, float, float, int] | None = None
    attention: str = "reference"  # "reference": written-out softmax; "fast": jax.nn.dot_product_attention
    # Mixed precision: None runs in the parameters' own dtype; "bfloat16" runs the matmuls on a
    # bf16 copy of float32 master weights (RMSNorm, softmax, logits and loss stay float32).
    compute_dtype: str | None = None
    remat: bool = False  # recompute each block's activations in the backward pass (jax.checkpoint)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff", "max_seq_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"ModelConfig.{name} must be a positive int, got {value!r}")
        if self.d_model % self.n_heads != 0:
            raise ValueError(
                f"ModelConfig: d_model={self.d_model} is not divisible by n_heads={self.n_heads}; "
                "each head gets d_model // n_heads dims, so pick n_heads dividing d_model"
            )
        if self.n_heads % self.n_kv_heads != 0:
            raise ValueError(
                f"ModelConfig: n_heads={self.n_heads} is not a multiple of n_kv_heads={self.n_kv_heads}; "
                "in grouped-query attention each key/value head serves n_heads // n_kv_heads query heads"
            )
        if self.head_dim % 2 != 0:
            raise ValueError(
                f"ModelConfig: head_dim = d_model // n_heads = {self.head_dim} is odd; RoPE rotates "
                "pairs of dims, so choose d_model and n_heads giving an even head_dim"
            )
        if self.attention not in ATTENTION_IMPLEMENTATIONS:
            raise ValueError(
                f"ModelConfig.attention must be one of {ATTENTION_IMPLEMENTATIONS}, got {self.attention!r}"
            )
        if self.rope_scaling is not None and (len(self.rope_scaling) != 4 or not all(
                v > 0 for v in self.rope_scaling) or self.rope_scaling[2] <= self.rope_scaling[1]):
            raise ValueError(
                "ModelConfig.rope_scaling must be None or (factor, low_freq_factor, high_freq_factor, "
                f"original_max_position_embeddings), all > 0 with high > low, got {self.rope_scaling!r}"
            )
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"ModelConfig.compute_dtype must be one of {COMPUTE_DTYPES}, got {self.compute_dtype!r}")
        if not isinstance(self.remat, bool):
            raise ValueError(f"ModelConfig.remat must be True or False, got {self.remat!r}")
        if not (self.rope_theta > 0 and self.norm_eps > 0):
            raise ValueError(
                f"ModelConfig: rope_theta ({self.rope_theta}) and norm_eps ({self.norm_eps}) must be > 0"
            )

    @property
    def head_dim(self) -> int:
        """K = D // H: width of one attention head."""
        return self.d_model // self.n_heads

    @property
    def n_params(self) -> int:
        """Parameter count from the shapes alone (equals `model.count_params(init_params(...))`)."""
        D, F, V, L, K = self.d_model, self.d_ff, self.vocab_size, self.n_layers, self.head_dim
        H, G = self.n_heads, self.n_kv_heads
        per_layer = 2 * D + D * H * K + 2 * D * G * K + H * K * D + 3 * D * F  # norms, q, k+v, o, MLP
        head = 0 if self.tie_embeddings else D * V
        return V * D + L * per_layer + D + head

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (for checkpoint metadata)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        """Inverse of `to_dict`; strict, so a checkpoint never loads with a silently wrong shape.

        Only the LATER_FIELDS may be absent: a checkpoint written before they existed gets their
        defaults, which reproduce it exactly. JSON lists come back as the tuples they were.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        missing = [n for n in names if n not in d and n not in LATER_FIELDS]
        if unknown or missing:
            raise ValueError(
                "ModelConfig.from_dict: "
                + (f"unknown field(s) {unknown}; " if unknown else "")
                + (f"missing field(s) {missing}; " if missing else "")
                + f"expected exactly {names} (as written by ModelConfig.to_dict)"
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


PRESETS: dict[str, ModelConfig] = {
    # For tests: ~125k params, compiles and runs in well under a second on a CPU core.
    # V=512 is enough for random-token tests; G=2 < H=4 so grouped-query attention is always exercised.
    "tiny": ModelConfig(
        vocab_size=512, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=176, max_seq_len=128
    ),
    # The CPU demo: ~1M params, pretrained and instruction-tuned on the bundled data in minutes on
    # 2 cores. Sized by the clock, not by the data: the budget buys ~1M tokens of pretraining, and
    # there a smaller model learns faster per second *and* per step (same data and steps: 36%
    # held-out exact match for D=128 vs 29% for D=192, after 400 SFT steps), while one D=128 step
    # costs under half a D=256 one (3.5M params, the first course preset). V=2000 matches the
    # bundled tokenizer (override with vocab_size=tok.vocab_size); d_ff=352 = 8/3 * 128 rounded up
    # to a multiple of 32, Llama's SwiGLU ratio; tied head: the V x D embedding is a quarter of it.
    "course": ModelConfig(
        vocab_size=2000, d_model=128, n_layers=4, n_heads=4, n_kv_heads=2, d_ff=352, max_seq_len=256
    ),
    # The benchmark's middle size (issue 12's "SMALL"): 15.7M params, where a CPU's matmuls, not
    # its per-op overheads, should dominate a train step; not trained by the course.
    "small": ModelConfig(
        vocab_size=8192, d_model=384, n_layers=6, n_heads=6, n_kv_heads=2, d_ff=1024, max_seq_len=512,
        tie_embeddings=False,
    ),
    # The GPU benchmark's model (scripts/gpu_bench.sh): GPT-2-small's width and depth in the Llama
    # layout, 124.7M params with an untied head and the Llama-2 vocabulary; context 1024.
    "llama-124m": ModelConfig(
        vocab_size=32000, d_model=768, n_layers=12, n_heads=12, n_kv_heads=4, d_ff=2048, max_seq_len=1024,
        tie_embeddings=False,
    ),
    # The real shapes of TinyLlama-1.1B (HF config.json), so its checkpoint maps onto our tree:
    # 32 query heads sharing 4 key/value heads, untied LM head, Llama-2 tokenizer (V=32000).
    "tinyllama-1.1b": ModelConfig(
        vocab_size=32000, d_model=2048, n_layers=22, n_heads=32, n_kv_heads=4, d_ff=5632,
        max_seq_len=2048, rope_theta=10000.0, norm_eps=1e-5, tie_embeddings=False,
    ),
}


def get_config(name: str, **overrides: Any) -> ModelConfig:
    """A preset by name, with fields overridden, e.g. `get_config("course", vocab_size=2048)`."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    names = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"get_config({name!r}): unknown override(s) {unknown}; ModelConfig fields are {sorted(names)}")
    return dataclasses.replace(PRESETS[name], **overrides)
