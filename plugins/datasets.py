"""Built-in datasets: the six MedMNIST 3D sets (through the ``medmnist`` package), a synthetic set, a diagnostic set, and the
segmentation sets of the PlaneCycle paper's Table 3 (LIDC, MMWHS CT and MRI), read from hand-downloaded releases."""

from liftbench import Option, hookimpl

SYNTHETIC = {
    "seed": Option(int, 0, "which generated set (volumes are a pure function of seed and size)", min=0, max=2**31 - 1),
    "n_train": Option(int, None, "training volumes (default 120)", min=1),
    "n_val": Option(int, None, "validation volumes (default 45)", min=1),
    "n_test": Option(int, None, "test volumes (default 45)", min=1),
}
DIAGNOSTIC = {
    "seed": Option(int, 0, "which generated set (volumes are a pure function of seed and size)", min=0, max=2**31 - 1),
    "n_train": Option(int, None, "training volumes (default 96)", min=2),
    "n_val": Option(int, None, "validation volumes (default 32)", min=2),
    "n_test": Option(int, None, "test volumes (default 80)", min=2),
}
LIDC = {"featdice_size": Option(int, 640, "in-plane size FeatDice resizes slices to (the authors' 640)", min=1)}
MMWHS = {
    "slice_axis": Option(int, 0, "NIfTI array axis that becomes the slice axis D (0: the authors', sagittal in RAS)",
                         choices=(0, 1, 2)),
    "root": Option(str, None, "folder holding training_set/ and testing_set/ (default <data root>/mmwhs/CT or MRI)"),
}  # fmt: skip
MEDMNIST = {"download": Option(bool, None, "let medmnist download a missing file (needs network)")}

# name -> (medmnist flag, description)
MEDMNIST3D = {
    "organ": ("organmnist3d", "OrganMNIST3D: 11 abdominal organs from CT"),
    "nodule": ("nodulemnist3d", "NoduleMNIST3D: benign vs malignant lung nodules from CT"),
    "fracture": ("fracturemnist3d", "FractureMNIST3D: 3 rib fracture types from CT"),
    "adrenal": ("adrenalmnist3d", "AdrenalMNIST3D: normal vs mass adrenal glands from CT"),
    "vessel": ("vesselmnist3d", "VesselMNIST3D: healthy vessel vs aneurysm from MRA"),
    "synapse": ("synapsemnist3d", "SynapseMNIST3D: excitatory vs inhibitory synapses from EM"),
}


@hookimpl
def liftbench_register_datasets(registrar):
    registrar.add(
        "synthetic",
        "liftbench.datasets.synthetic:load",
        aliases=("synth",),
        description="generated tubes and blobs whose class lies in their 3D course (no download), with lesion masks",
        sizes=(28, 32, 64),
        has_masks=True,
        parameters=SYNTHETIC,
    )
    registrar.add(
        "diagnostic",
        "liftbench.datasets.diagnostic:load",
        aliases=("helix",),
        description="generated helices whose handedness no single slice shows, at any depth (no download), with tube "
        "masks: slice-2D with an order-blind head is at chance by construction",
        sizes=(28, 32, 64),
        default_size=32,
        has_masks=True,
        parameters=DIAGNOSTIC,
    )
    for name, (flag, description) in MEDMNIST3D.items():
        registrar.add(
            name,
            "liftbench.datasets.medmnist3d:load",
            aliases=(flag,),
            description=description,
            sizes=(28, 64),
            options={"flag": flag},
            parameters=MEDMNIST,
        )
    registrar.add(
        "lidc",
        "liftbench.datasets.lidc:load",
        aliases=("lidc-idri",),
        description="LIDC-IDRI lung nodules, binary masks (half the readers), PlaneCycle Table 3; the ACSConv release "
        "(github.com/M3DV/ACSConv experiments/lidc, Google Drive zip) in <data root>/lidc/; size = in-plane size",
        has_masks=True,
        has_labels=False,
        default_size=160,
        parameters=LIDC,
    )
    for modality in ("CT", "MRI"):
        registrar.add(
            f"mmwhs-{modality.lower()}",
            "liftbench.datasets.mmwhs:load",
            description=f"MM-WHS 2017 whole heart {modality}, 5 structures, PlaneCycle Table 3; a third-party "
            f"preprocessed 0..5-label NIfTI release (not named upstream) in <data root>/mmwhs/{modality}/",
            has_masks=True,
            has_labels=False,
            default_size=64,
            options={"modality": modality},
            parameters=MMWHS,
        )
