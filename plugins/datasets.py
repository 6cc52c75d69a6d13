"""Built-in datasets: the six MedMNIST 3D sets (through the ``medmnist`` package) and a synthetic set."""

from liftbench import Option, hookimpl

SYNTHETIC = {
    "seed": Option(int, 0, "which generated set (volumes are a pure function of seed and size)"),
    "n_train": Option(int, None, "training volumes (default 120)"),
    "n_val": Option(int, None, "validation volumes (default 45)"),
    "n_test": Option(int, None, "test volumes (default 45)"),
}
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
        "liftbench_plugins.synthetic:load",
        aliases=("synth",),
        description="generated tubes and blobs whose class lies in their 3D course (no download), with lesion masks",
        sizes=(28, 32, 64),
        has_masks=True,
        parameters=SYNTHETIC,
    )
    for name, (flag, description) in MEDMNIST3D.items():
        registrar.add(
            name,
            "liftbench_plugins.medmnist3d:load",
            aliases=(flag,),
            description=description,
            sizes=(28, 64),
            options={"flag": flag},
            parameters=MEDMNIST,
        )
