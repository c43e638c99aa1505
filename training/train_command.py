"""``orstream train workflow``, ``segmenter``, ``classifier``, ``videotext``, ``tokenizer``,
``patch``, ``slide`` and ``vlm``: train with LightningCLI.

The config file is a LightningCLI ``fit`` config (sections ``model``, ``data``, ``trainer``,
``checkpoint``, ``seed_everything``); ``training/configs/workflow_phantom.yaml`` and
``training/configs/segmenter_phantom.yaml`` are the defaults for phantom data. Overrides follow
it, as ``key=value`` (``data.root=/data/phantom``) or, after ``--``, in LightningCLI's own form
(``-- --trainer.max_epochs=3``). What the data must match in the model (the workflow model's
input size, sample rate and receptive field; the segmenter's input size, mask size and classes;
the tokenizer's input size and whether its stage needs narrations; the patch encoder's tile
size; the slide encoder's feature width) is linked into the data module, so it is set once, in
the ``model`` section. ``patch`` and ``slide`` are the two stages of the slide models: the slide
stage reads ``data.patch_checkpoint``, a patch stage's checkpoint, and tiles as it did. Models
trained in stages (``tokenizer``, ``vlm``) take ``--stage N``, the same as ``model.stage=N``;
a later stage starts from an earlier one's weights through ``model.init_weights``.

Outputs (in the CSVLogger's version folder, e.g. ``runs/workflow/version_0``): ``metrics.csv``,
``checkpoints/best-*.ckpt`` (highest validation score: ``val_step_score``, ``val_dice``,
``val_psnr``, ``val_tile_accuracy``, ``val_score``, ``val_token_accuracy``),
``checkpoints/last.ckpt`` (the final weights) and ``checkpoints/loss_curve.png``.

Under DDP (``trainer.strategy=ddp`` with several ``trainer.devices`` or ``trainer.num_nodes``)
every process runs this command; the outputs are written, and the summary printed, by global
rank 0 alone (Lightning's logger and checkpoints already write from rank 0 only), and each rank
draws its own augmentations (:class:`orstream.training.distributed.rank_seeds.RankSeeds`).
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LAST_CHECKPOINT = "last.ckpt"


@dataclass(frozen=True)
class TrainTask:
    """What differs between the trainable models: classes, links, monitor and curve labels."""

    model: str  # "module:Class" of the LightningModule
    data: str  # "module:Class" of the LightningDataModule
    links: tuple[str, ...]  # model attributes the data module takes over at instantiation
    monitor: str  # validation metric to maximise
    loss_label: str  # what the loss curve's loss axis shows
    score_label: str  # what the loss curve's score axis shows


TASKS = {
    "workflow": TrainTask(
        "orstream.training.modules.lit_workflow:LitWorkflow",
        "orstream.training.data.pitvis_datamodule:PitVisDataModule",
        ("input_size", "sample_fps", "receptive_field"),
        "val_step_score",
        "loss (step CE + instrument BCE, summed over stages)",
        "PitVis step score (online, held out)",
    ),
    "segmenter": TrainTask(
        "orstream.training.modules.lit_segmenter:LitSegmenter",
        "orstream.training.data.segmenter_datamodule:SegmenterDataModule",
        ("input_size", "mask_size", "classes"),
        "val_dice",
        "loss (20 focal + Dice + IoU MSE, mean over click rounds)",
        "Dice (box, click, text prompts; held out)",
    ),
    "classifier": TrainTask(
        "orstream.training.modules.lit_instrument_classifier:LitInstrumentClassifier",
        "orstream.training.data.instrument_crop_datamodule:InstrumentCropDataModule",
        (),
        "val_accuracy",
        "loss (cross-entropy over no instrument + 18 instruments)",
        "accuracy (tip crops of held-out phantom cases)",
    ),
    "videotext": TrainTask(
        "orstream.training.modules.lit_videotext:LitVideoText",
        "orstream.training.data.videotext_datamodule:VideoTextDataModule",
        ("input_size",),
        "val_t2v_r5",
        "loss (clip-narration + segment-text InfoNCE, silent clips by retrieval)",
        "text->video recall at 5 (held-out narrated clips)",
    ),
    "tokenizer": TrainTask(
        "orstream.training.modules.lit_tokenizer:LitTokenizer",
        "orstream.training.data.tokenizer_datamodule:TokenizerDataModule",
        ("input_size", "with_text"),
        "val_psnr",
        "loss (L1 + L2 + perceptual + VQ + alignment)",
        "PSNR in dB (reconstructions of held-out frames)",
    ),
    "patch": TrainTask(
        "orstream.training.modules.lit_patch_encoder:LitPatchEncoder",
        "orstream.training.data.patch_datamodule:PatchDataModule",
        ("tile",),
        "val_tile_accuracy",
        "loss (cross-entropy over the tissue classes of phantom tiles)",
        "tile accuracy (tiles of held-out slides)",
    ),
    "vlm": TrainTask(
        "orstream.training.modules.lit_vlm:LitVLM",
        "orstream.training.data.vlm_datamodule:VLMDataModule",
        ("stage", "vocab_size", "feature_widths"),
        "val_token_accuracy",
        "loss (next-token cross-entropy over the target text)",
        "next-token accuracy (targets of held-out cases and slides)",
    ),
    "slide": TrainTask(
        "orstream.training.modules.lit_slide_encoder:LitSlideEncoder",
        "orstream.training.data.slide_feature_datamodule:SlideFeatureDataModule",
        ("feature_dim",),
        "val_score",
        "loss (subtype CE + tumour fraction L1 + tile tumour BCE)",
        "mean of slide accuracy, tile accuracy, 1 - fraction MAE (held-out slides)",
    ),
}
"""``orstream train NAME`` -> its task (the CLI's ``train_command`` argument is NAME)."""

HELP_OVERRIDES = (
    "LightningCLI overrides: key=value (e.g. data.root=/data/phantom trainer.max_epochs=20), "
    "or after '--' in LightningCLI form (-- --trainer.max_epochs=20)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        required=True,
        type=Path,
        help="LightningCLI fit config (YAML), e.g. training/configs/workflow_phantom.yaml",
    )
    parser.add_argument(
        "--stage",
        type=int,
        help="the stage of a model trained in stages (vlm 1|2|3, tokenizer 1|2): model.stage=N",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="CKPT",
        help="continue the run saved in this checkpoint (its epoch, optimiser and learning-rate "
        "schedule), e.g. one that trainer.max_time stopped: give trainer.max_time=null too",
    )
    parser.add_argument("overrides", nargs="*", metavar="OVERRIDE", help=HELP_OVERRIDES)


def lightning_arguments(config: Path, overrides: list[str]) -> list[str]:
    """The LightningCLI argument list for ``config`` and the overrides."""
    from orstream.errors import OrstreamError

    arguments = ["--config", str(config)]
    for override in overrides:
        if override.startswith("--"):
            arguments.append(override)
        elif "=" in override:
            arguments.append(f"--{override}")
        else:
            raise OrstreamError(f"override {override!r} is not key=value (e.g. data.root=DIR)")
    return arguments


def run(args: argparse.Namespace) -> int:
    from orstream.errors import OrstreamError
    from orstream.training.loss_curve import CurveLabels, plot_loss_curve

    name: str = args.train_command
    task = TASKS[name]
    config: Path = args.config
    if not config.is_file():
        raise OrstreamError(f"{config}: config file not found")
    overrides: list[str] = list(args.overrides)
    if args.stage is not None:
        overrides.insert(0, f"model.stage={args.stage}")
    resume: Path | None = args.resume
    if resume is not None and not resume.is_file():
        raise OrstreamError(f"{resume}: checkpoint to resume not found")
    cli = build_cli(lightning_arguments(config, overrides), config, name)
    trainer = cli.trainer
    trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=resume)
    if trainer.interrupted:
        return 130
    checkpoint = trainer.checkpoint_callback
    if checkpoint is None or checkpoint.dirpath is None:
        raise OrstreamError("training wrote no checkpoint")
    folder = Path(checkpoint.dirpath).resolve()
    # ModelCheckpoint's own save_last only follows saves of the best; this is the final state.
    # Every rank calls it (it waits for all of them); rank 0 writes the file.
    last = folder / LAST_CHECKPOINT
    trainer.save_checkpoint(last)
    if not trainer.is_global_zero:
        return 0
    metrics_csv = Path(trainer.logger.experiment.metrics_file_path).resolve()
    if not metrics_csv.is_file():
        raise OrstreamError("training wrote no metrics")
    labels = CurveLabels(
        f"orstream {name} training", task.loss_label, task.monitor, task.score_label
    )
    curve = plot_loss_curve(metrics_csv, folder / "loss_curve.png", labels)
    if checkpoint.best_model_score is not None:
        # The monitor may be overridden (checkpoint.monitor=...): name the one that chose.
        print(f"best {checkpoint.monitor}: {float(checkpoint.best_model_score):.4f}")
    print(f"best checkpoint: {Path(checkpoint.best_model_path).resolve()}")
    print(f"last checkpoint: {last}")
    print(f"metrics: {metrics_csv}")
    print(f"loss curve: {curve}")
    return 0


def best_name(monitor: str) -> str:
    """The best checkpoint's file name template: its epoch and the monitor's value."""
    return f"best-{{epoch:03d}}-{{{monitor}:.4f}}"


def _load_class(path: str) -> type:
    module, name = path.split(":")
    loaded: type = getattr(importlib.import_module(module), name)
    return loaded


def build_cli(arguments: list[str], config: Path, name: str = "workflow") -> Any:
    """Parse ``arguments`` and instantiate the model, data and trainer of task ``name`` (see
    :data:`TASKS`) without fitting.

    Raises:
        OrstreamError: the config or an override is invalid (one line naming the config).
    """
    import warnings

    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

    from orstream.errors import OrstreamError
    from orstream.training.distributed.rank_seeds import RankSeeds

    task = TASKS[name]

    class TaskCLI(LightningCLI):
        def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
            parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
            parser.set_defaults(
                {
                    "checkpoint.monitor": task.monitor,
                    "checkpoint.mode": "max",
                    "checkpoint.filename": best_name(task.monitor),
                    "checkpoint.auto_insert_metric_name": False,
                    "trainer.logger": {
                        "class_path": "lightning.pytorch.loggers.CSVLogger",
                        "init_args": {"save_dir": "runs", "name": name},
                    },
                }
            )
            for attribute in task.links:
                parser.link_arguments(
                    f"model.{attribute}", f"data.{attribute}", apply_on="instantiate"
                )

        def before_instantiate_classes(self) -> None:
            # A monitor given on the command line names the best checkpoint too, unless the
            # file name was given as well.
            checkpoint = self.config["checkpoint"]
            if checkpoint["filename"] == best_name(task.monitor):
                checkpoint["filename"] = best_name(checkpoint["monitor"])

    try:
        with warnings.catch_warnings():
            # LightningCLI warns that orstream's own argv is not its args: intended here.
            warnings.filterwarnings("ignore", message=".*args parameter is intended.*")
            return TaskCLI(
                _load_class(task.model),
                _load_class(task.data),
                args=arguments,
                run=False,
                parser_kwargs={"exit_on_error": False},
                save_config_kwargs={"overwrite": True},
                trainer_defaults={"callbacks": [RankSeeds()]},
            )
    except OrstreamError:
        raise
    except Exception as error:  # parse and instantiation errors are the config's problems
        lines = str(error).strip().splitlines()
        first = lines[0] if lines else type(error).__name__
        raise OrstreamError(f"{config}: {first}") from None
