"""Fine-tune the embedder so that a request reworded lands nearer its original than other requests.

The semantic tier reads only candidates above a cosine floor, so a paraphrase the embedder puts
below it is never seen by the verifier. all-MiniLM-L6-v2 puts many reworded work requests there
(docs/quality.md, "where each kind is lost"). This fine-tunes it on the verifier's own training
rows, never on a validation slice or a report-only set: each true pair is pulled together against
the other prompts of its batch, and against a look-alike of its first prompt when a source labels
one (multiple-negatives ranking, both directions). Word-order pairs (PAWS, the order and role
transformations) are left out: a mean-pooled embedder cannot tell them apart, and telling them
apart is the cross-encoder's work.

Seeded and resumable (a checkpoint every `checkpoint_every` steps in `work_dir`); the result is
exported fused and int8 as the shipped embedder is (`app.toolkit.ml.export`).
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from app.toolkit.ml.train import (
    Splits,
    TrainConfig,
    _use_bf16,
    _written,
    load_splits,
    resume,
    save_checkpoint,
    warmup_then_linear_decay,
)

console = Console()

# Sources of the verifier's training rows that teach word order, not meaning.
ORDER_SOURCES = frozenset({"paws_dev", "swaps"})


@dataclass(frozen=True)
class EmbedderTrainConfig:
    data_dir: Path = Path("../shared/data")
    output_dir: Path = Path(".ml-work/embedder/candidate")
    work_dir: Path = Path(".ml-work/embedder")
    # The verifier's seed: it fixes the validation slices, which training never reads.
    seed: int = 13
    epochs: int = 1
    batch_size: int = 48
    learning_rate: float = 3e-5
    # Cosines are multiplied by this before the softmax over a batch.
    scale: float = 20.0
    # The ranking alone stops once a true pair outranks the rest of its batch, however far apart
    # its two prompts are; the floor reads absolute cosines. A true pair below `pull_above` and two
    # prompts of different pairs above `push_below` each add their squared distance to it.
    pull_above: float = 0.8
    push_below: float = 0.5
    max_tokens: int = 128
    warmup_fraction: float = 0.1
    threads: int = 2
    checkpoint_every: int = 20
    precision: str = "auto"
    name: str = "minilm-l6-v2-deja-int8"


@dataclass(frozen=True)
class EmbedderExamples:
    """True pairs, and for some first prompts the look-alikes a source labels."""

    pairs: list[tuple[str, str]]
    look_alikes: dict[str, list[str]]
    sources: dict[str, int]


def _bag(text: str) -> tuple[str, ...]:
    return tuple(sorted(text.lower().split()))


def embedder_examples(
    splits: Splits, extra: Mapping[str, Sequence[tuple[str, str, int]]] | None = None
) -> EmbedderExamples:
    """The true pairs and look-alikes of the verifier's training rows (`splits.train`, never its
    validation slices or report sets) and of `extra` rows by source, without the word-order sources."""
    rows: list[tuple[str, str, int]] = []
    sources: dict[str, int] = {}
    start = 0
    for source, count in splits.sources.items():
        chunk = splits.train[start : start + count]
        start += count
        if source in ORDER_SOURCES:
            continue
        unique = list(dict.fromkeys((a, b, int(label)) for a, b, label in chunk))
        rows += unique
        sources[source] = len(unique)
    for source, extra_rows in (extra or {}).items():
        rows += extra_rows
        sources[source] = len(extra_rows)
    rows = list(dict.fromkeys(rows))
    pairs = [(a, b) for a, b, label in rows if label == 1]
    look_alikes: dict[str, list[str]] = defaultdict(list)
    for a, b, label in rows:
        # The same words in another order: no mean of word vectors can tell those apart.
        if label == 0 and _bag(a) != _bag(b):
            look_alikes[a].append(b)
            look_alikes[b].append(a)
    return EmbedderExamples(pairs, dict(look_alikes), sources)


def training_examples(config: EmbedderTrainConfig) -> EmbedderExamples:
    """The verifier's training rows at its default recipe, plus the training part of the short
    workplace requests (the verifier is not trained on them; their validation slice stays out)."""
    splits = load_splits(TrainConfig(data_dir=config.data_dir, seed=config.seed))
    short_train, _ = _written("short")
    return embedder_examples(splits, {"short": [(a, b, label) for (a, b), label in short_train]})


def train_embedder(config: EmbedderTrainConfig, source_dir: Path) -> dict[str, Any]:
    """Fine-tune `source_dir` (all-MiniLM-L6-v2) and save it, as sentence-transformers lays a model
    out, in `work_dir/hf`; return what the run did."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)  # noqa: S311 - reproducible order, not secrets
    examples = training_examples(config)
    tokenizer = Tokenizer.from_file(str(source_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=config.max_tokens)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a vocabulary entry
    model = AutoModel.from_pretrained(str(source_dir))
    # The word embeddings are half the parameters: frozen, training is faster and keeps what the
    # model knows of words the training rows never show.
    for parameter in model.embeddings.parameters():
        parameter.requires_grad_(False)

    size = config.batch_size
    batches: list[list[tuple[str, str]]] = []
    for _ in range(config.epochs):
        order = examples.pairs[:]
        rng.shuffle(order)
        # Either prompt can be the stored one.
        order = [(a, b) if rng.random() < 0.5 else (b, a) for a, b in order]
        batches += [order[i : i + size] for i in range(0, len(order) - size + 1, size)]
    negatives = [
        [rng.choice(examples.look_alikes[a]) for a, _ in batch if a in examples.look_alikes]
        for batch in batches
    ]
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=0.01)
    scheduler = warmup_then_linear_decay(optimizer, len(batches), config.warmup_fraction)
    config.work_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = config.work_dir / "checkpoint.pt"
    first_step, running, spent = resume(checkpoint_path, len(batches), model, optimizer, scheduler)
    bf16 = _use_bf16(config.precision)

    def embed(texts: Sequence[str]) -> torch.Tensor:
        encodings = tokenizer.encode_batch(list(texts))
        inputs = {
            "input_ids": torch.tensor([e.ids for e in encodings]),
            "attention_mask": torch.tensor([e.attention_mask for e in encodings]),
            "token_type_ids": torch.tensor([e.type_ids for e in encodings]),
        }
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            hidden = model(**inputs).last_hidden_state
        mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled.float(), dim=-1)

    cross_entropy = torch.nn.CrossEntropyLoss()
    model.train()
    started = time.perf_counter() - spent
    for step in range(first_step, len(batches)):
        batch = batches[step]
        first = embed([a for a, _ in batch])
        second = embed([b for _, b in batch] + negatives[step])
        targets = torch.arange(len(batch))
        # Each first prompt against every second one and the look-alikes; each second prompt
        # against every first one.
        similarity = first @ second.T
        loss = cross_entropy(similarity * config.scale, targets)
        loss = loss + cross_entropy(second[: len(batch)] @ first.T * config.scale, targets)
        true = similarity.diagonal()
        loss = loss + torch.relu(config.pull_above - true).pow(2).mean()
        others = similarity[:, : len(batch)] - torch.eye(len(batch)) * 2.0
        loss = loss + torch.relu(others - config.push_below).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        scheduler.step()
        running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
        done = step + 1
        if done % config.checkpoint_every == 0 and done < len(batches):
            seconds = time.perf_counter() - started
            save_checkpoint(
                checkpoint_path, len(batches), (model, optimizer, scheduler), done, running, seconds
            )
            console.print(f"step {done}/{len(batches)} loss {running:.4f} {seconds / done:.2f} s/step")
    checkpoint_path.unlink(missing_ok=True)
    hf_dir = config.work_dir / "hf"
    hf_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(hf_dir)
    # The tokenizer, the pooling and the sentence-transformers settings, as the source lays them out.
    for entry in source_dir.iterdir():
        target = hf_dir / entry.name
        if entry.is_dir() and not target.exists():
            shutil.copytree(entry, target)
        elif entry.is_file() and not target.exists():
            shutil.copy(entry, target)
    return {
        "steps": len(batches),
        "final_loss": round(running, 4),
        "seconds": round(time.perf_counter() - started),
        "precision": "bf16" if bf16 else "fp32",
        "true_pairs": len(examples.pairs),
        "first_prompts_with_look_alikes": len(examples.look_alikes),
        "rows_by_source": examples.sources,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
    }


def write_training(out_dir: Path, training: dict[str, Any]) -> None:
    info_path = out_dir / "info.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info["training"] = training
    info_path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
