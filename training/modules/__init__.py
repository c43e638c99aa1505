"""The LightningModules that ``orstream train`` runs, one ``lit_*`` per task, and what only they
use: the checkpoint-recording base class, the losses, GRPO for the vision-language model's
stage 3, warm starts from an earlier checkpoint and the tokenizer's frozen teacher. They hold a
registered model (:mod:`orstream.training.models`), take their batches from
:mod:`orstream.training.data` and gather over DDP ranks through
:mod:`orstream.training.distributed`; nothing below them imports them, so the training step of
a task is read in one folder."""
