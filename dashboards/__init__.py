"""Paper-style ablation reports of sasa-lab studies, read from the Optuna storage and MLflow.

Stand-Alone Self-Attention (Ramachandran et al., NeurIPS 2019) argues through ablation tables: one factor
varied (window size, positional encoding, stem, which layer groups use attention), everything else fixed.
``python -m dashboards STUDY`` turns a study into such a table — mean ± std and 95 % CI over seeds, cost, and a
paired, Holm-corrected comparison with a reference level — plus figures, CSV/Markdown, a self-contained HTML
page, and the same numbers on the study's parent MLflow run.
"""

from .collect import ReportError
from .publish import Outcome, report_study, write_report
from .report import Report, build_report

__all__ = ["Outcome", "Report", "ReportError", "build_report", "report_study", "write_report"]
