"""``orstream train workflow``: train the PitVis workflow recognizer with LightningCLI.

The config file is a LightningCLI ``fit`` config (sections ``model``, ``data``, ``trainer``,
``checkpoint``, ``seed_everything``); ``training/configs/workflow_phantom.yaml`` is the default
for phantom data. Overrides follow it, as ``key=value`` (``data.root=/data/phantom``) or, after
``--``, in LightningCLI's own form (``-- --trainer.max_epochs=3``). The model's input size,
sample rate and receptive field are linked into the data module, so they are set once, in
``model.model_kwargs``.

Outputs (in the CSVLogger's version folder, e.g. ``runs/workflow/version_0``): ``metrics.csv``,
``checkpoints/best-*.ckpt`` (highest ``val_step_score``), ``checkpoints/last.ckpt`` (the
final weights) and ``checkpoints/loss_curve.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

LAST_CHECKPOINT = "last.ckpt"

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
    from orstream.training.loss_curve import plot_loss_curve

    config: Path = args.config
    if not config.is_file():
        raise OrstreamError(f"{config}: config file not found")
    cli = build_cli(lightning_arguments(config, args.overrides), config)
    trainer = cli.trainer
    trainer.fit(cli.model, datamodule=cli.datamodule)
    if trainer.interrupted:
        return 130
    checkpoint = trainer.checkpoint_callback
    metrics_csv = Path(trainer.logger.experiment.metrics_file_path).resolve()
    if checkpoint is None or checkpoint.dirpath is None or not metrics_csv.is_file():
        raise OrstreamError("training wrote no checkpoint or no metrics")
    folder = Path(checkpoint.dirpath).resolve()
    # ModelCheckpoint's own save_last only follows saves of the best; this is the final state.
    last = folder / LAST_CHECKPOINT
    trainer.save_checkpoint(last)
    curve = plot_loss_curve(metrics_csv, folder / "loss_curve.png")
    if checkpoint.best_model_score is not None:
        print(f"best val_step_score: {float(checkpoint.best_model_score):.4f}")
    print(f"best checkpoint: {Path(checkpoint.best_model_path).resolve()}")
    print(f"last checkpoint: {last}")
    print(f"metrics: {metrics_csv}")
    print(f"loss curve: {curve}")
    return 0


def build_cli(arguments: list[str], config: Path) -> Any:
    """Parse ``arguments`` and instantiate model, data and trainer (without fitting).

    Raises:
        OrstreamError: the config or an override is invalid (one line naming the config).
    """
    import warnings

    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

    from orstream.errors import OrstreamError
    from orstream.training.lit_workflow import LitWorkflow
    from orstream.training.pitvis_datamodule import PitVisDataModule

    class WorkflowCLI(LightningCLI):
        def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
            parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
            parser.set_defaults(
                {
                    "checkpoint.monitor": "val_step_score",
                    "checkpoint.mode": "max",
                    "checkpoint.filename": "best-{epoch:03d}-{val_step_score:.4f}",
                    "checkpoint.auto_insert_metric_name": False,
                    "trainer.logger": {
                        "class_path": "lightning.pytorch.loggers.CSVLogger",
                        "init_args": {"save_dir": "runs", "name": "workflow"},
                    },
                }
            )
            for attribute in ("input_size", "sample_fps", "receptive_field"):
                parser.link_arguments(
                    f"model.{attribute}", f"data.{attribute}", apply_on="instantiate"
                )

    try:
        with warnings.catch_warnings():
            # LightningCLI warns that orstream's own argv is not its args: intended here.
            warnings.filterwarnings("ignore", message=".*args parameter is intended.*")
            return WorkflowCLI(
                LitWorkflow,
                PitVisDataModule,
                args=arguments,
                run=False,
                parser_kwargs={"exit_on_error": False},
                save_config_kwargs={"overwrite": True},
            )
    except OrstreamError:
        raise
    except Exception as error:  # parse and instantiation errors are the config's problems
        lines = str(error).strip().splitlines()
        first = lines[0] if lines else type(error).__name__
        raise OrstreamError(f"{config}: {first}") from None
