"""Built-in studies: the PlaneCycle paper's tables, the demo and the committed synthetic comparisons.

Each is a study file shipped with liftbench (``liftbench/studies/*.toml``, the format of ``docs/studies.md``)
and registered by name, so ``liftbench run --study paper-table1`` runs it and ``liftbench list studies`` shows
it. Registration reads nothing: the file is read when the study is listed or run, and its names are checked
only when it runs (``paper-table3`` names segmentation datasets and protocols other plugins provide).
"""

from liftbench import hookimpl

STUDIES = {
    "paper-table1": "the PlaneCycle paper's Table 1 (table1-probe) on the six MedMNIST sets, 5 seeds",
    "paper-table2": "the PlaneCycle paper's Table 2 (table2-finetune) on the six MedMNIST sets, 5 seeds",
    "paper-table3": "the PlaneCycle paper's Table 3 (segmentation: featdice, seg-linear, seg-finetune), seed 42",
    "demo": "what `liftbench` with no arguments runs: built-in shape-pretrained backbones, synthetic 32^3, 3 seeds",
    "synthetic-comparison": "the committed synthetic comparison (results/demo): the demo's grid written there",
    "diagnostic": "the committed diagnostic comparison (results/diagnostic): helix handedness, which no single slice "
    "shows, with the built-in ViT and ResNet, every strategy, cached linear probe, 3 seeds",
    "synthetic-segmentation": "the committed synthetic segmentation comparison (results/synthetic-seg): featdice and "
    "seg-linear-cached with the built-in ViT, every strategy",
    "dinov3-cnn-vs-vit": "DINOv3 ConvNeXt-T/B vs ViT-S/B, every strategy each family takes, table1-probe on the six "
    "MedMNIST sets, 5 seeds",
    "dinov3-cnn-vs-vit-finetune": "the same grids with table2-finetune (every parameter trained)",
    "cnn-vs-vit-shapes": "the reduced, offline dinov3-cnn-vs-vit (results/cnn-vs-vit-shapes): the built-in "
    "shape-pretrained ViT, ResNet and ConvNeXt, every strategy each takes, synthetic and diagnostic 32^3, 3 seeds",
}


@hookimpl
def liftbench_register_studies(registrar):
    for name, description in STUDIES.items():
        registrar.add(name, f"liftbench:studies/{name}.toml", description=description)
