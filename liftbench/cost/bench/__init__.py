"""``liftbench bench``: what each lifting costs — time, memory, FLOPs and how well the device is used.

Accuracy says which lifting to use; this says whether it is affordable. :mod:`.flops` counts FLOPs
with PyTorch's counter (attention included on CPU too), :mod:`.measure` times calls and measures
memory and the matmul peak, :mod:`.sweep` runs the grid into Parquet rows (``kind="bench"``), and
:mod:`.report` renders the Markdown table and plots.
"""

from liftbench.cost.bench.flops import count_flops, register_cpu_attention_formulas
from liftbench.cost.bench.report import markdown, plot, write_report
from liftbench.cost.bench.sweep import BenchSettings, run_sweep

__all__ = ["BenchSettings", "count_flops", "markdown", "plot", "register_cpu_attention_formulas", "run_sweep", "write_report"]
