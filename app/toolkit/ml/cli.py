"""`deja embedder ...` and `deja verifier ...`: rebuild the shipped models from the repository."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from app.cache.onnx_models import DEFAULT_EMBEDDER_DIR, DEFAULT_OVER_TEXT_DIR, DEFAULT_VERIFIER_DIR

# The models come from installed packages; a hub lookup would only fail or stall offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

console = Console()
# A retrained verifier lands here; it replaces the shipped one only once it measures better.
CANDIDATE_DIR = Path(".ml-work/verifier/candidate")
# A distilled first pass lands here; none is shipped (docs/quality.md says why).
FIRST_PASS_DIR = Path(".ml-work/first-pass/candidate")
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
    from app.toolkit.ml.export import export_embedder

    with console.status("Exporting, fusing and quantising all-MiniLM-L6-v2 ..."):
        info = export_embedder(output_dir)
    cosine = info["cosine_to_pytorch_fp32"]
    console.print(
        f"[green]Wrote[/green] {output_dir}: dimension {info['dimension']}, "
        f"cosine to PyTorch mean {cosine['mean']}, min {cosine['min']}"
    )


@embedder_app.command("train")
def train_embedder_command(
    output_dir: Annotated[
        Path,
        typer.Option(
            help="Where model.onnx, tokenizer.json, info.json go: a candidate, compared with the shipped "
            "embedder by `deja verifier report --embedder-dir` before it replaces it."
        ),
    ] = Path(".ml-work/embedder/candidate"),
    data_dir: Annotated[Path, typer.Option(help="Directory of the shared labelled pairs files.")] = Path(
        "../shared/data"
    ),
    work_dir: Annotated[
        Path, typer.Option(help="Checkpoints (the same command resumes from them) and the PyTorch model.")
    ] = Path(".ml-work/embedder"),
    epochs: Annotated[int, typer.Option(min=1, max=20, help="Passes over the true pairs.")] = 1,
    batch_size: Annotated[
        int, typer.Option(min=2, max=512, help="True pairs per step; the others in a step are its negatives.")
    ] = 48,
    learning_rate: Annotated[float, typer.Option(min=1e-7, max=1e-3, help="Peak learning rate.")] = 3e-5,
    seed: Annotated[int, typer.Option(help="The verifier's seed: it fixes the validation slices.")] = 13,
    precision: Annotated[
        str, typer.Option(help="bf16, fp32 or auto (bfloat16 where the CPU computes it natively).")
    ] = "auto",
) -> None:
    """Fine-tune all-MiniLM-L6-v2 on the verifier's training rows (never its validation slices) so a
    request reworded lands nearer its original, then export it fused and int8 (needs the `train`
    extra; seeded, resumable)."""
    from app.toolkit.ml.embedder_train import EmbedderTrainConfig, train_embedder, write_training
    from app.toolkit.ml.export import default_source_dir, export_embedder

    if precision not in ("auto", "bf16", "fp32"):
        raise typer.BadParameter("precision must be auto, bf16 or fp32")
    config = EmbedderTrainConfig(
        data_dir=data_dir,
        output_dir=output_dir,
        work_dir=work_dir,
        seed=seed,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        precision=precision,
    )
    training = train_embedder(config, default_source_dir())
    with console.status("Exporting, fusing and quantising ..."):
        info = export_embedder(
            output_dir,
            work_dir / "hf",
            name=config.name,
            source_model="sentence-transformers/all-MiniLM-L6-v2, fine-tuned by `deja embedder train`",
        )
    write_training(output_dir, training)
    console.print(
        f"[green]Wrote[/green] {output_dir} ({info['name']}): {training['steps']} steps, "
        f"loss {training['final_loss']}, cosine to PyTorch mean {info['cosine_to_pytorch_fp32']['mean']}"
    )


@verifier_app.command("train")
def train_verifier_command(
    output_dir: Annotated[
        Path,
        typer.Option(
            help="Where model.onnx, tokenizer.json, metrics.json go: a candidate, compared with the shipped "
            "verifier by scripts/quality.sh before it replaces it."
        ),
    ] = CANDIDATE_DIR,
    data_dir: Annotated[Path, typer.Option(help="Directory of the shared labelled pairs files.")] = Path(
        "../shared/data"
    ),
    work_dir: Annotated[Path, typer.Option(help="Scratch space for checkpoints and fp32 graphs.")] = Path(
        ".ml-work/verifier"
    ),
    seed: Annotated[int, typer.Option(help="Seeds data generation, initialisation and order.")] = 13,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over every training pair.")] = 3,
    generated_pairs: Annotated[int, typer.Option(min=100, help="Generated training pairs.")] = 5000,
    mined_pairs: Annotated[
        int,
        typer.Option(
            min=0, help="Nearest-neighbour look-alikes mined with the embedder, labelled different (0: none)."
        ),
    ] = 2000,
    mined_skip_labelled: Annotated[
        bool,
        typer.Option(
            help="Never mine a pair a training source already labels (the shipped model was trained "
            "without this: some of its mined pairs are labelled paraphrases in their source)."
        ),
    ] = False,
    written_repeats: Annotated[
        int,
        typer.Option(
            min=0,
            help="Times each training row of the written work prompts (work_prompts_train.csv) is read "
            "per epoch (0: not trained on, their validation slice then only reported).",
        ),
    ] = 2,
    counter_repeats: Annotated[
        int,
        typer.Option(
            min=0,
            help="The same for the pairs written to break the shortcut a model learnt from those "
            "(work_prompts_train_counter.csv: topical look-alikes worded apart, near-identical "
            "paraphrases).",
        ),
    ] = 6,
    short_repeats: Annotated[
        int,
        typer.Option(
            min=0,
            help="The same for the short workplace requests in every common form and other requests "
            "alike in words (work_prompts_train_short.csv).",
        ),
    ] = 0,
    over_text_repeats: Annotated[
        int,
        typer.Option(
            min=0,
            help="The same for the requests over one pasted text, reworded or another request "
            "(work_prompts_train_over_text.csv).",
        ),
    ] = 0,
    rewording_pairs: Annotated[
        int,
        typer.Option(
            min=0,
            help="Pairs of light rewordings that keep the answer (a contraction, a place's preposition, "
            "a compound's spelling, a question's opener): half a training sentence beside itself "
            "reworded, half those edits laid over the order and role swaps, label kept (0: none).",
        ),
    ] = 0,
    instruction_pairs: Annotated[
        int,
        typer.Option(
            min=0,
            help="Generated pairs of short instructions, alone and over one pasted text: the same "
            "request reworded, or another request (0: none).",
        ),
    ] = 3000,
    instructions_across: Annotated[
        bool,
        typer.Option(
            help='Place a third of those on different sides of one pasted text ("Summarise this: '
            'TEXT" / "TEXT Give me a summary."), and read such training pairs as the service does: '
            "as their two requests.",
        ),
    ] = False,
    more_instruction_tasks: Annotated[
        bool,
        typer.Option(
            help="Draw those from the eighty tasks of instruction_tasks_more.txt too (summaries for an "
            "audience or a length, replies, rewrites, conversions, checks, code, data ...).",
        ),
    ] = False,
    read_as_served: Annotated[
        bool,
        typer.Option(
            help="Read a training pair longer than the model reads where its prompts differ, as the "
            "service does, instead of cutting it at that length.",
        ),
    ] = True,
    paws_pairs: Annotated[
        int | None,
        typer.Option(min=0, help="Training rows drawn from PAWS dev's training part (default: every one)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    learning_rate: Annotated[float, typer.Option(help="Peak rate of the encoder layers.")] = 6e-5,
    threads: Annotated[int, typer.Option(min=1, help="Torch and ONNX Runtime threads.")] = 2,
    precision: Annotated[
        str,
        typer.Option(
            help="bf16 (matrix products in bfloat16: faster on some CPUs, slower on others; the step "
            "log tells), fp32, or auto: bf16 when the CPU has AVX-512 BF16, as the shipped model was trained."
        ),
    ] = "auto",
) -> None:
    """Fine-tune the cross-encoder, export it fused + int8, and write its validation figures."""
    from app.toolkit.ml.train import TrainConfig, run

    file_pairs = TrainConfig().file_pairs
    if paws_pairs is not None:
        file_pairs = tuple((tag, paws_pairs if tag == "paws_dev" else rows) for tag, rows in file_pairs)
    config = TrainConfig(
        output_dir=output_dir,
        data_dir=data_dir,
        work_dir=work_dir,
        seed=seed,
        epochs=epochs,
        generated_pairs=generated_pairs,
        mined_pairs=mined_pairs,
        mined_skip_labelled=mined_skip_labelled,
        written_repeats=written_repeats,
        counter_repeats=counter_repeats,
        short_repeats=short_repeats,
        over_text_repeats=over_text_repeats,
        rewording_pairs=rewording_pairs,
        instruction_pairs=instruction_pairs,
        instructions_across=instructions_across,
        more_instruction_tasks=more_instruction_tasks,
        read_as_served=read_as_served,
        file_pairs=file_pairs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        threads=threads,
        precision=precision,
    )
    metrics = run(config)
    _print_summary(output_dir, metrics)


@verifier_app.command("distil")
def distil_verifier_command(
    output_dir: Annotated[
        Path,
        typer.Option(
            help="Where model.onnx, tokenizer.json and band.json go: the directory "
            "DEJA_CACHE__VERIFIER_FIRST_PASS_DIR names."
        ),
    ] = FIRST_PASS_DIR,
    teacher_dir: Annotated[
        Path, typer.Option(help="The cross-encoder to distil (the first pass is used only beside it).")
    ] = DEFAULT_VERIFIER_DIR,
    data_dir: Annotated[Path, typer.Option(help="Directory of the shared labelled pairs files.")] = Path(
        "../shared/data"
    ),
    work_dir: Annotated[Path, typer.Option(help="Scratch space for checkpoints and graphs.")] = Path(
        ".ml-work/first-pass"
    ),
    layers: Annotated[int, typer.Option(min=1, max=6, help="Encoder layers the student keeps.")] = 2,
    seed: Annotated[int, typer.Option(help="Seeds data generation, initialisation and order.")] = 13,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over every training pair.")] = 3,
    threads: Annotated[int, typer.Option(min=1, help="Torch and ONNX Runtime threads.")] = 2,
) -> None:
    """Distil the cross-encoder into a smaller first pass and choose the band where its word is final."""
    from app.toolkit.ml.distil import DistilConfig, distil
    from app.toolkit.ml.train import TrainConfig

    train = TrainConfig(data_dir=data_dir, work_dir=work_dir, seed=seed, epochs=epochs, threads=threads)
    result = distil(DistilConfig(train, teacher_dir=teacher_dir, output_dir=output_dir, layers=layers))
    console.print(
        f"[green]Wrote[/green] {output_dir}: refuses below {result['reject_below']}, serves from "
        f"{result['serve_above']}; decides alone {result['decided_on_validation']:.1%} of the validation pairs "
        "the cross-encoder would read"
    )
    cost = result["ms_per_pair"]
    console.print(
        f"a pair costs the cross-encoder {cost['cross_encoder']} ms, the first pass {cost['first_pass']} ms: it "
        f"pays from {result['pays_from_decided']:.1%} decided alone, and "
        + ("does" if result["decided_on_validation"] > result["pays_from_decided"] else "[red]does not[/red]")
    )
    for name, figures in result["validation"].items():
        alone, both = figures["cross_encoder"], figures["with_first_pass"]
        console.print(
            f"  {name:24s} cross-encoder P={alone['precision']:.3f} R={alone['recall']:.3f}  "
            f"with first pass P={both['precision']:.3f} R={both['recall']:.3f}  decided alone {figures['decided_alone']:.1%}"
        )


def _print_summary(output_dir: Path, metrics: dict[str, Any]) -> None:
    from app.toolkit.ml.train import TARGET_PRECISION

    defaults = metrics["recommended"]
    console.print(
        f"[green]Wrote[/green] {output_dir} ({metrics['quantisation']}); recommended cosine floor "
        f"{defaults['cosine_floor']}, probability threshold {defaults['probability_threshold']}"
    )
    for name, figures in metrics["verifier_at_recommended"].items():
        at = figures["at_defaults"]
        console.print(
            f"  {name}: precision {at['precision']:.3f} recall {at['recall']:.3f} at the defaults; "
            f"recall {figures[f'recall_at_precision_{TARGET_PRECISION}']:.3f} at precision >= {TARGET_PRECISION}"
        )


@verifier_app.command("soup")
def soup_verifier_command(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="Two or more work dirs of `deja verifier train` runs (each holds hf/, training.json)."
        ),
    ],
    output_dir: Annotated[
        Path, typer.Option(help="Where model.onnx, tokenizer.json, metrics.json go.")
    ] = CANDIDATE_DIR,
    data_dir: Annotated[Path, typer.Option(help="Directory of the shared labelled pairs files.")] = Path(
        "../shared/data"
    ),
    work_dir: Annotated[
        Path, typer.Option(help="Scratch space for the averaged checkpoint and its graphs.")
    ] = Path(".ml-work/verifier/soup"),
    seed: Annotated[int, typer.Option(help="The seed whose validation pairs to validate on.")] = 13,
    threads: Annotated[int, typer.Option(min=1, help="Torch and ONNX Runtime threads.")] = 2,
) -> None:
    """Average the weights of training runs of one recipe (seeds apart) into one model, export it
    fused + int8 and write its validation figures, as `train` does."""
    from app.toolkit.ml.train import TrainConfig, soup

    config = TrainConfig(
        output_dir=output_dir, data_dir=data_dir, work_dir=work_dir, seed=seed, threads=threads
    )
    try:
        metrics = soup(config, run_dirs)
    except ValueError as exc:  # fewer than two runs, or runs of other recipes
        raise typer.BadParameter(str(exc), param_hint="RUN_DIRS") from None
    _print_summary(output_dir, metrics)


@verifier_app.command("validate")
def validate_verifier_command(
    output_dir: Annotated[Path, typer.Option(help="Where the model and metrics.json go.")] = CANDIDATE_DIR,
    data_dir: Annotated[Path, typer.Option(help="Directory of the shared labelled pairs files.")] = Path(
        "../shared/data"
    ),
    work_dir: Annotated[Path, typer.Option(help="The training run's scratch space (fp32/, int8/).")] = Path(
        ".ml-work/verifier"
    ),
    seed: Annotated[int, typer.Option(help="The training run's seed (it fixes the validation pairs).")] = 13,
) -> None:
    """Validate the graphs of an earlier training run again, without training."""
    from app.toolkit.ml.train import TrainConfig, validate

    metrics = validate(TrainConfig(output_dir=output_dir, data_dir=data_dir, work_dir=work_dir, seed=seed))
    _print_summary(output_dir, metrics)


@verifier_app.command("score")
def score_pairs_command(
    first: Annotated[str, typer.Argument(help="The stored prompt.")],
    second: Annotated[str, typer.Argument(help="The prompt looked up.")],
    verifier_dir: Annotated[Path, typer.Option(help="The verifier to score with.")] = DEFAULT_VERIFIER_DIR,
    previous_dir: Annotated[
        Path | None, typer.Option(help="An earlier verifier to score the pair with too.")
    ] = None,
    over_text_dir: Annotated[
        Path,
        typer.Option(
            help="The cross-encoder for pairs whose prompts paste one text, as the service reads them."
        ),
    ] = DEFAULT_OVER_TEXT_DIR,
) -> None:
    """One pair as a lookup reads it, FIRST stored and SECOND looked up: their cosine, the verdict
    at the default settings (served, or the stage and reason that refuse it) and each verifier's
    probability that one answer serves both, read on the texts the models read (two long prompts
    cut to where they differ). Two prompts that paste one text are read by the cross-encoder of
    their own (`--over-text-dir`), as by the service; the previous verifier reads them alone."""
    import uuid

    from app.cache.onnx_models import OnnxCrossEncoder, OnnxEmbedder, OverTextCrossEncoders, shares_text
    from app.cache.scope import indentation, normalise_and_spell, normalise_prompt, read_text
    from app.cache.verifier import VerifierPolicy, build_verifier
    from app.cache.verifier.texts import model_text, read_candidates

    normalised, spellings = normalise_and_spell(second)
    new, stored = read_text(normalised), read_text(normalise_prompt(first))
    vectors = OnnxEmbedder(DEFAULT_EMBEDDER_DIR, threads=1).embed([new, stored])
    cosine = float(vectors[0] @ vectors[1])
    console.print(f"cosine {cosine:.3f}")
    candidates = read_candidates(
        new, [(uuid.uuid4(), first, cosine)], 1, layout=indentation(normalised), spellings=spellings
    )
    if not candidates:
        console.print(
            "not read: the prompts are laid out otherwise, spell a word with look-alike letters "
            "otherwise, or are too long to be compared (a miss)"
        )
        return
    [candidate] = candidates
    general = OnnxCrossEncoder(verifier_dir, threads=1)
    model: OnnxCrossEncoder | OverTextCrossEncoders = general
    pair = (candidate.beside(model_text(new)), candidate.prompt)
    if shares_text(*pair) and (over_text_dir / "model.onnx").exists():
        model = OverTextCrossEncoders(general, OnnxCrossEncoder(over_text_dir, threads=1))
        console.print(f"the prompts paste one text: read by {model.over_text.name}")
    verdict = build_verifier(model).decide(model_text(new), candidates, VerifierPolicy())
    [report] = verdict.reports
    if report.accepted:
        console.print(f"at the default settings: served (deciding score {verdict.score:.3f})")
    else:
        console.print(f"at the default settings: refused by {report.rejected_by}: {report.rejection}")
    if candidate.query is not None:
        console.print(
            f"read cut to where the prompts differ: {len(candidate.query):,} and {len(candidate.prompt):,} "
            f"of their {len(new):,} and {len(stored):,} characters"
        )
    console.print(f"verifier: {float(model.score([pair])[0]):.3f}")
    if previous_dir is not None:
        console.print(f"previous: {float(OnnxCrossEncoder(previous_dir, threads=1).score([pair])[0]):.3f}")


@verifier_app.command("report")
def report_verifier_command(
    data_dir: Annotated[Path, typer.Option(help="Directory of the shared labelled pairs files.")] = Path(
        "../shared/data"
    ),
    verifier_dir: Annotated[Path, typer.Option(help="The verifier to report on.")] = DEFAULT_VERIFIER_DIR,
    previous_dir: Annotated[
        Path | None,
        typer.Option(help="An earlier verifier to set beside it, at the defaults it shipped with."),
    ] = None,
    embedder_dir: Annotated[
        Path, typer.Option(help="The embedder whose cosine the floor and the bands read.")
    ] = DEFAULT_EMBEDDER_DIR,
    json_out: Annotated[Path | None, typer.Option(help="Also write the whole report as JSON here.")] = None,
    seed: Annotated[int, typer.Option(help="The training run's seed (it fixes the validation slices).")] = 13,
    min_score: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="Cross-encoder threshold to decide with (default: the tenant default)."
        ),
    ] = None,
    strict_min_score: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="Threshold below the strict cosine (default: the tenant default)."
        ),
    ] = None,
    far_min_score: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Threshold below the far cosine (default: the tenant default)."),
    ] = None,
    min_similarity: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Cosine floor to decide with (default: the tenant default)."),
    ] = None,
    disable_rule: Annotated[
        list[str] | None,
        typer.Option(help="A rule to decide without (repeatable), as a tenant's disabled_rules."),
    ] = None,
    first_pass_dir: Annotated[
        Path | None,
        typer.Option(
            help="A first pass to report with the verifier (`deja verifier distil`), distilled from it."
        ),
    ] = None,
    over_text_dir: Annotated[
        Path | None,
        typer.Option(
            help="The cross-encoder that reads the pairs whose prompts paste one text, beside the "
            "verifier (default: the shipped one, as the service does)."
        ),
    ] = None,
    over_text: Annotated[
        bool,
        typer.Option(
            help="Read those pairs with a cross-encoder of their own (--no-over-text: the verifier reads them)."
        ),
    ] = True,
) -> None:
    """Every validation slice and report-only set, decided by plain cosine, the previous and the
    shipped verifier at the default settings (or at the thresholds given: a candidate at those
    its own training run chose), and with its first pass when it has one; each rule alone;
    look-alikes served by kind. The verifier reads the pairs whose prompts paste one text with the
    cross-encoder of their own, as the service does; the previous verifier reads every pair alone."""
    import json
    from dataclasses import replace

    from app.cache.verifier import RULES, VerifierPolicy, read_band
    from app.toolkit.ml.report import report
    from app.toolkit.ml.train import TrainConfig, with_recipe

    policy = VerifierPolicy()
    if min_score is not None:
        policy = replace(policy, cross_encoder_min_score=min_score)
    if strict_min_score is not None:
        policy = replace(policy, cross_encoder_strict_min_score=strict_min_score)
    if far_min_score is not None:
        policy = replace(policy, cross_encoder_far_min_score=far_min_score)
    if min_similarity is not None:
        policy = replace(policy, min_similarity=min_similarity)
    if disable_rule:
        unknown = sorted(set(disable_rule) - set(RULES))
        if unknown:
            raise typer.BadParameter(f"no rule named {', '.join(unknown)}; the rules: {', '.join(RULES)}")
        policy = replace(policy, disabled_rules=frozenset(disable_rule))
    # The whole PAWS test split (8,000 rows), not the sample the training run reports.
    config = TrainConfig(data_dir=data_dir, seed=seed, paws_test_pairs=8000)
    # The written work prompts the verifier was trained on (its metrics.json records the recipe)
    # are validation slices and choose the thresholds; the others are only reported.
    metrics_path = verifier_dir / "metrics.json"
    if metrics_path.exists():
        recipe = json.loads(metrics_path.read_text(encoding="utf-8")).get("training", {}).get("config", {})
        config = with_recipe(config, recipe)
    first_pass = None
    if first_pass_dir is not None:
        first_pass_band = read_band(first_pass_dir, verifier_dir / "model.onnx")
        if first_pass_band is None:
            raise typer.BadParameter(f"{first_pass_dir} holds no first pass distilled from {verifier_dir}")
        first_pass = (first_pass_dir, first_pass_band)
    if over_text:
        over_text_dir = over_text_dir or DEFAULT_OVER_TEXT_DIR
        if not (over_text_dir / "model.onnx").exists():
            if over_text_dir != DEFAULT_OVER_TEXT_DIR:
                raise typer.BadParameter(f"{over_text_dir} holds no model.onnx")
            over_text_dir = None
    else:
        over_text_dir = None
    result = report(config, verifier_dir, previous_dir, policy, first_pass, embedder_dir, over_text_dir)
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name, figures in result["sets"].items():
        console.print(f"[bold]{name}[/bold] ({figures['pairs']} pairs, {figures['same_answer']} same answer)")
        for decision, at in figures["decisions"].items():
            console.print(
                f"  {decision:34s} P={at['precision']:.3f} R={at['recall']:.3f} "
                f"false-hit={at['false_hit_rate']:.3f} hits={at['hits']} wrong={at['wrong_hits']}"
            )
    chosen = result["chosen_on_validation"]
    console.print(
        f"chosen on the validation slices for precision >= {chosen['target_precision']}: cosine floor "
        f"{chosen['min_similarity']}, cross-encoder >= {chosen['cross_encoder_min_score']}"
    )
    default = result["default_on_validation"]
    band = (
        f">= {default['cross_encoder_strict_min_score']} below cosine {default['cross_encoder_strict_below']}"
        if default["cross_encoder_strict_below"] is not None
        else "no strict band (no threshold below it keeps the precision)"
    )
    far = (
        f">= {default['cross_encoder_far_min_score']} below cosine {default['cross_encoder_far_below']}"
        if default["cross_encoder_far_below"] is not None
        else "no far band (no floor below it adds a right hit at the precision)"
    )
    console.print(
        f"default ({default['rule']}): cosine floor {default['min_similarity']}, "
        f"cross-encoder >= {default['cross_encoder_min_score']}, {band}, {far}"
    )
    figures_of_first_pass = result["first_pass"]
    if figures_of_first_pass:
        decided = ", ".join(
            f"{name} {share:.0%}" for name, share in figures_of_first_pass["decided_alone"].items()
        )
        console.print(
            f"first pass: refuses below {figures_of_first_pass['reject_below']}, serves from "
            f"{figures_of_first_pass['serve_above']}; "
            f"of the pairs the models read it decides alone {decided}"
        )


# Standalone entry point (`python -m app.toolkit.ml.cli ...`) for machines without the `deja` command.
ml_app = typer.Typer(no_args_is_help=True)
ml_app.add_typer(embedder_app, name="embedder")
ml_app.add_typer(verifier_app, name="verifier")

if __name__ == "__main__":
    ml_app()
