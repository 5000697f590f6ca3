"""Paper-style ablation reports of sasa-lab studies.

Stand-Alone Self-Attention (Ramachandran et al., NeurIPS 2019) argues through ablation tables: one factor
varied (window size, positional encoding, stem, which layer groups use attention), everything else fixed.
``python -m dashboards STUDY`` turns a study into such a table — mean ± std and 95 % CI over seeds, cost, and a
paired, Holm-corrected comparison with a reference level — plus figures, CSV/Markdown, a self-contained HTML
page, and the same numbers on the study's parent MLflow run.

The package works on plain data (:mod:`.data`); reading the stores is the platform's part
(``platform/reports/``), so nothing here but the command (``__main__``, :mod:`.browse`, :mod:`.lab`) imports the
platform. This ``__init__`` imports nothing, so a submodule's ``from . import stats`` never runs the rest of the
package: import what you use from its module (:mod:`.report`, :mod:`.publish`, :mod:`.data`).
"""
