"""Built-in protocols: cached linear probe, the paper's augmented probe, fine-tuning, zero-training FeatDice,
and the paper's Tables 1 and 2 as the authors' released code runs them (``table1-probe``, ``table2-finetune``).

Each protocol declares its options here, typed, with the defaults a run uses (the paper's values) and
its ``--quick`` preset; the command line, ``--opt KEY=VALUE`` and the Python API all take them from here.
"""

from dataclasses import replace

from liftbench import Option, hookimpl
from liftbench.protocols.adapters import REFUSED, check_targets

DTYPE = Option(str, "auto", "precision of backbone forwards: fp32, bf16 (autocast) or auto (bf16 where the device has it natively and the backbone passed the bf16 fidelity gate)", choices=("auto", "fp32", "bf16"))
PROBE = {
    "iterations": Option(int, 10000, "training steps", min=1),
    "warmup": Option(int, 500, "linear warm-up steps before the cosine decay", min=0, below="iterations"),
    "batch_size": Option(int, 32, "volumes per step", min=1),
    "lr": Option(float, 1e-3, "AdamW learning rate", min=0, min_open=True),
    "weight_decay": Option(float, 1e-5, "AdamW weight decay", min=0),
    "feature_batch": Option(int, 4, "volumes per backbone forward when extracting features", flag=False, min=1),
    "dtype": DTYPE,
}
# the cached probe scores validation on a fixed cadence (its cost then does not grow with epochs per run);
# the paper's and the released code's protocols keep one evaluation per epoch
EVAL_EVERY = Option(int, 50, "score validation after every N steps and the last (0: at the end of every epoch)", min=0)
FINETUNE = {
    **PROBE,
    "lr": Option(float, 5e-5, "AdamW learning rate", min=0, min_open=True),
    "weight_decay": Option(float, 0.05, "AdamW weight decay", min=0),
    "checkpoint": Option(bool, False, "activation checkpointing (saves memory, costs a recompute)", flag=False),
    "accumulate": Option(int, 1, "gradient accumulation: split each batch into this many chunks", flag=False, min=1),
    "augment": Option(bool, True, "augment training volumes (crop with padding 4, flips, rot90)", flag=False),
}
# Where the authors' released code (experiments/medmnist/train_eval.py) and liftbench differ (docs/protocols.md).
# liftbench's probe and fine-tuning keep the paper's text and their own choices by default; table1-probe and
# table2-finetune take the code's values (CODE) as their defaults.
FAITHFUL = {
    "lr_schedule": Option(str, "iterations", "iterations: the paper's text (iterations/warmup, per-step warm-up + cosine); "
                          "epochs: the released code (epochs/warmup_epochs, LinearLR + cosine stepped per epoch)",
                          choices=("iterations", "epochs")),  # fmt: skip
    "epochs": Option(int, 200, "passes over the training set with lr_schedule=epochs", min=1),
    "warmup_epochs": Option(int, 10, "warm-up epochs with lr_schedule=epochs", min=0, below="epochs"),
    "selection": Option(str, "first-best", "epochs tied on validation AUC: keep the first (>) or the last (>=, the released code)",
                        choices=("first-best", "last-best")),  # fmt: skip
    "padding": Option(str, "zeros", "random-crop padding: zeros, or reflect (the released code)", choices=("zeros", "reflect")),
    "rope_rescale": Option(float, 1.0, "DINOv3 RoPE coordinate rescaling in train mode: factor in [1/R, R] per RoPE "
                           "computation (1 = off; DINOv3 as the authors built it: 2)", min=1),  # fmt: skip
}
BACKBONE_MODE = Option(str, "eval", "mode of the frozen backbone on training batches: eval, or train (the released code: "
                       "DINOv3 RoPE rescaling with rope_rescale, BatchNorm batch statistics)", choices=("eval", "train"))  # fmt: skip
PROBE_AUG = {**PROBE, **FAITHFUL, "backbone_mode": BACKBONE_MODE}
FINETUNE_ALL = {**FINETUNE, **FAITHFUL, "epochs": Option(int, 100, "passes over the training set with lr_schedule=epochs", min=1)}
# LoRA (liftbench.protocols.lora): the fine-tune protocol's options, adapters' rank/alpha/dropout/targets, a LoRA
# learning rate (the paper has no LoRA recipe; adapters start at zero and take a larger step than full weights)
LORA = {
    **FINETUNE_ALL,
    "lr": Option(float, 5e-4, "AdamW learning rate of the adapters and the head", min=0, min_open=True),
    "lora_rank": Option(int, 8, "LoRA rank r", min=1),
    "lora_alpha": Option(float, 16.0, "LoRA alpha (the update is scaled by alpha / r)", min=0, min_open=True),
    "lora_dropout": Option(float, 0.0, "dropout on the adapters' input", min=0, max=1),
    "lora_targets": Option(str, "auto", "layers to adapt: auto (ViT: every Linear in the blocks; CNN: every Conv2d) or "
                           "a comma list of layer names (qkv,proj,fc1,fc2)", check=check_targets),
    "merge_eval": Option(bool, False, "evaluate with the adapters merged into the weights (peft merge_adapter)", flag=False),
}  # fmt: skip
CODE = {"lr_schedule": "epochs", "selection": "last-best", "padding": "reflect", "backbone_mode": "train", "rope_rescale": 2.0}


def with_defaults(options: dict, defaults: dict) -> dict:
    """``options`` with the defaults in ``defaults`` (for the options it declares)."""
    return {name: replace(opt, default=defaults[name]) if name in defaults else opt for name, opt in options.items()}


SELECTION = {
    "selection": Option(str, "val", "where the checkpoint and the binary threshold are chosen: val (the dataset's validation "
                        "split, else one carved from train) or test (the authors)", choices=("val", "test")),
    "val_fraction": Option(float, 0.2, "share of the training volumes carved out for selection when the dataset has no validation split", min=0, max=1, min_open=True),
    "split_seed": Option(int, 0, "seed of the carved validation split (recorded in the row)", min=0, max=2**31 - 1),
}  # fmt: skip
FEATDICE = {
    "threshold": Option(float, 0.9, "lesion procedure: similarity threshold (s > t; the authors' 0.9)", min=0, max=1),
    "select_threshold": Option(bool, False, "lesion procedure: choose the threshold on a validation split instead", flag=False),
    "procedure": Option(str, "auto", "lesion (binary masks: reference token, min-max, threshold; LIDC) or prototype "
                        "(multi-class: per-class masked-mean prototypes, argmax; MMWHS); auto picks by mask classes",
                        choices=("auto", "lesion", "prototype")),
    "reference": Option(str, "auto", "lesion reference token: centre of the patch (the authors, lesion-centred data), "
                        "centroid of the mask, or auto (centre where the dataset says its patches are lesion-centred)",
                        choices=("auto", "centre", "centroid")),
    "val_fraction": SELECTION["val_fraction"],
    "split_seed": SELECTION["split_seed"],
    "feature_batch": Option(int, 2, "volumes per backbone forward", flag=False, min=1),
    # fp32 by default: the bf16 gate was passed on classification probes, and a map thresholded at 0.9 after
    # min-max is sensitive to the last digits
    "dtype": replace(DTYPE, default="fp32"),
}  # fmt: skip
SEG_LINEAR = {
    "iterations": Option(int, 20000, "optimizer updates (the authors' and the paper's 20k)", min=1),
    "warmup": Option(int, 1000, "warm-up updates of the authors' warm-up + cosine schedule", min=0, below="iterations"),
    "batch_size": Option(int, 0, "volumes per update (0: the authors' per dataset: LIDC 12 frozen / 4 fine-tuned, MMWHS 8; 8 / 4 elsewhere)", min=0),
    "lr": Option(float, 1e-4, "AdamW learning rate of the decoder", min=0, min_open=True),
    "weight_decay": Option(float, 1e-3, "AdamW weight decay (every parameter, norms and biases included, as the authors)", min=0),
    "layers": Option(str, "last", "blocks whose normed patch maps feed the decoder", choices=("last", "four_last", "four_even")),
    "hidden": Option(int, 512, "decoder width (the authors' 512)", flag=False, min=1),
    "dropout": Option(float, 0.0, "Dropout3d on the decoder's input features", min=0, max=1),
    "grad_clip": Option(float, 0.0, "clip the global gradient norm to this (0: no clipping)", min=0),
    "augment": Option(str, "fixed", "training augmentation: fixed (image and mask together), authors (the released code's, "
                      "bugs included: LIDC mask not rotated/flipped, MMWHS all-or-nothing) or none",
                      choices=("fixed", "authors", "none")),
    **SELECTION,
    "eval_every": Option(int, 250, "score the selection split after updates 1, 1+N, ... and the last", min=1),
    "eval_batch": Option(int, 2, "volumes per forward when scoring", flag=False, min=1),
    "backbone_mode": Option(str, "eval", "mode of the frozen backbone while training: eval, or train (the authors' code; "
                            "with rope_rescale=2 DINOv3 jitters RoPE coordinates)", choices=("eval", "train")),
    "rope_rescale": FAITHFUL["rope_rescale"],
    "checkpoint": Option(bool, False, "activation checkpointing of the transformer blocks", flag=False),
    "dtype": DTYPE,
}  # fmt: skip
SEG_FINETUNE = {
    **SEG_LINEAR,
    "iterations": Option(int, 30000, "optimizer updates (the released configs' 30k; the paper says 20k)", min=1),
    "warmup": Option(int, 1500, "warm-up updates (the released configs' 1.5k; the paper says 1k)", min=0, below="iterations"),
    "dropout": Option(float, 0.2, "Dropout3d on the decoder's input features", min=0, max=1),
    "grad_clip": Option(float, 0.8, "clip the global gradient norm to this (0: no clipping)", min=0),
    "backbone_lr_scale": Option(float, 0.1, "backbone learning rate as a multiple of the decoder's", min=0),
}  # fmt: skip
SEG_QUICK = {"iterations": 4, "warmup": 1, "eval_every": 2, "hidden": 64}
PROBE_AUG_QUICK = {"iterations": 20, "warmup": 2, "epochs": 2, "warmup_epochs": 1}
FINETUNE_QUICK = {"iterations": 6, "warmup": 1, "epochs": 2, "warmup_epochs": 1}
# the segmentation protocols: name -> (target, description, options); all need masks, none needs labels
SEGMENTATION = {
    "seg-linear": ("liftbench.protocols.segment:run_linear",
                   "frozen lifted backbone + the authors' 3D up-sampling decoder (20k updates), Dice (Table 3 linear)",
                   SEG_LINEAR),
    "seg-linear-cached": ("liftbench.protocols.segment:run_cached",
                          "seg-linear on frozen dense features cached on disk: no augmentation, backbone in eval mode, "
                          "seeds reuse the features", {**SEG_LINEAR, "augment": replace(SEG_LINEAR["augment"], default="none")}),
    "seg-finetune": ("liftbench.protocols.segment:run_finetune",
                     "lifted backbone + decoder all trained (backbone lr 0.1x, clip 0.8, dropout 0.2; 30k updates as "
                     "released), Dice (Table 3 fine-tune)", SEG_FINETUNE),
}  # fmt: skip


@hookimpl
def liftbench_register_protocols(registrar):
    registrar.add(
        "linear",
        "liftbench.protocols.linear:run",
        aliases=("linear-probe", "probe"),
        description="fast linear probe on cached frozen features, no augmentation (not Table 1): slice pooling + linear head, AUC/ACC",
        options={**PROBE, "eval_every": EVAL_EVERY},
        quick={"iterations": 300, "warmup": 30},
    )
    registrar.add(
        "linear-aug",
        "liftbench.protocols.linear_aug:run",
        aliases=("paper-probe",),
        description="the paper's probe: frozen backbone forward every step on augmented volumes (no cache), AUC/ACC",
        options=PROBE_AUG,
        quick=PROBE_AUG_QUICK,
    )
    registrar.add(
        "table1-probe",
        "liftbench.protocols.linear_aug:run",
        description="Table 1's probe as the authors' released code runs it: linear-aug with 200 epochs (10 warm-up) "
        "stepped per epoch, >= selection, reflect padding, backbone in train mode with DINOv3 RoPE rescaling",
        options=with_defaults(PROBE_AUG, CODE),
        quick=PROBE_AUG_QUICK,
    )
    registrar.add(
        "finetune",
        "liftbench.protocols.finetune:run",
        aliases=("ft",),
        description="full fine-tuning of backbone + head (lr 5e-5, wd 0.05; bf16, checkpointing, accumulation), AUC/ACC",
        options=FINETUNE_ALL,
        quick=FINETUNE_QUICK,
    )
    registrar.add(
        "table2-finetune",
        "liftbench.protocols.finetune:run",
        description="Table 2's fine-tuning as the authors' released code runs it: finetune with 100 epochs (10 warm-up) "
        "stepped per epoch, >= selection, reflect padding, DINOv3 RoPE rescaling while training",
        options=with_defaults(FINETUNE_ALL, CODE),
        quick=FINETUNE_QUICK,
    )
    registrar.add(
        "lora",
        "liftbench.protocols.lora:run",
        description="finetune with the lifted backbone frozen and LoRA adapters (peft) on its attention/MLP "
        "projections or convolutions, plus the head; rows record rank, targets and peft's trainable count",
        options=LORA,
        quick=FINETUNE_QUICK,
        refuses=REFUSED,
    )
    registrar.add(
        "table2-lora",
        "liftbench.protocols.lora:run",
        description="lora with Table 2's released recipe (as table2-finetune): 100 epochs (10 warm-up) stepped per "
        "epoch, >= selection, reflect padding, DINOv3 RoPE rescaling while training",
        options=with_defaults(LORA, CODE),
        quick=FINETUNE_QUICK,
        refuses=REFUSED,
    )
    registrar.add(
        "featdice",
        "liftbench.protocols.featdice:run",
        description="zero-training FeatDice as the authors compute it: lesion (reference token, threshold) or "
        "multi-class prototypes (argmax), Dice against the masks",
        options=FEATDICE,
        needs_masks=True,
        needs_labels=False,
    )
    for name, (target, description, options) in SEGMENTATION.items():
        registrar.add(name, target, description=description, options=options, quick=SEG_QUICK, needs_masks=True,
                      needs_labels=False)  # fmt: skip
