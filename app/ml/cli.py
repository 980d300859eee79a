"""`deja embedder ...` and `deja verifier ...`: rebuild the shipped models from the repository."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from app.cache.onnx_models import DEFAULT_EMBEDDER_DIR

# The models come from installed packages; a hub lookup would only fail or stall offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

console = Console()
embedder_app = typer.Typer(help="Build the ONNX embedder that the cache serves.", no_args_is_help=True)
verifier_app = typer.Typer(help="Train and export the cross-encoder verifier.", no_args_is_help=True)


@embedder_app.callback()
def _embedder_group() -> None:
    """Build the ONNX embedder that the cache serves."""


@verifier_app.callback()
def _verifier_group() -> None:
    """Train and export the cross-encoder verifier."""


@embedder_app.command("export")
def export_embedder_command(
    output_dir: Annotated[Path, typer.Option(help="Where model.onnx, tokenizer.json, info.json go.")] = (
        DEFAULT_EMBEDDER_DIR
    ),
) -> None:
    """Export all-MiniLM-L6-v2 to ONNX, fuse it and quantise it to int8."""
    from app.ml.export import export_embedder

    with console.status("Exporting, fusing and quantising all-MiniLM-L6-v2 ..."):
        info = export_embedder(output_dir)
    cosine = info["cosine_to_pytorch_fp32"]
    console.print(
        f"[green]Wrote[/green] {output_dir}: dimension {info['dimension']}, "
        f"cosine to PyTorch mean {cosine['mean']}, min {cosine['min']}"
    )


# Standalone entry point (`python -m app.ml.cli ...`) for machines without the `deja` command.
ml_app = typer.Typer(no_args_is_help=True)
ml_app.add_typer(embedder_app, name="embedder")
ml_app.add_typer(verifier_app, name="verifier")

if __name__ == "__main__":
    ml_app()
