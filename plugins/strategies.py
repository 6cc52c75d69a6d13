"""Built-in lifting strategies: slice-2D, flatten-3D/inflated-3D, ACS, PlaneCycle (PCm, PCg)."""

from liftbench import hookimpl
from liftbench.lifting.planes import DEFAULT_SCHEDULE, schedule_text

# A strategy whose defaults name a schedule takes --schedule; its pooling is recorded in result rows.
_PLANECYCLE = {"schedule": schedule_text(DEFAULT_SCHEDULE)}

_VIT = "liftbench.lifting"


@hookimpl
def liftbench_register_strategies(registrar):
    registrar.add(
        "2d",
        lifters={"vit": f"{_VIT}.vit_slice2d:Slice2DViT", "cnn": f"{_VIT}.cnn_slice2d:Slice2DCNN"},
        aliases=("slice2d", "slice-2d"),
        description="the 2D network on every axial slice independently; per-slice features",
    )
    registrar.add(
        "3d",
        lifters={"vit": f"{_VIT}.vit_flatten3d:Flatten3DViT", "cnn": f"{_VIT}.cnn_inflate:Inflated3DCNN"},
        aliases=("flatten3d", "flatten-3d", "inflate", "i3d"),
        description="one 3D sequence per volume (ViT, 3D RoPE) / I3D-inflated kernels (CNN); one vector per volume",
    )
    registrar.add(
        "acs",
        lifters={"cnn": f"{_VIT}.cnn_acs:ACSCNN"},
        description="ACS convolutions: output channels split over axial, coronal and sagittal kernels",
    )
    registrar.add(
        "pcm",
        lifters={"vit": f"{_VIT}.vit_planecycle:PlaneCycleViT", "cnn": f"{_VIT}.cnn_planecycle:PlaneCycleCNN"},
        aliases=("planecycle-mean",),
        description="PlaneCycle: blocks cycle HW, DW, DH planes; global tokens shared by their mean",
        defaults={**_PLANECYCLE, "pooling": "mean"},
        notes={"cnn": "a CNN has no global tokens: identical to pcg, run once as pcg"},
        same_as={"cnn": "pcg"},
    )
    registrar.add(
        "pcg",
        lifters={"vit": f"{_VIT}.vit_planecycle:PlaneCycleViT", "cnn": f"{_VIT}.cnn_planecycle:PlaneCycleCNN"},
        aliases=("planecycle", "planecycle-group"),
        description="PlaneCycle: blocks cycle HW, DW, DH planes; global tokens pooled by groups (adaptive)",
        defaults={**_PLANECYCLE, "pooling": "adaptive"},
    )
