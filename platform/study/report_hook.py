"""The end-of-study report: the study runner calls :func:`build_report_after_study` once a study stops.

The report is read from the stores (:mod:`..reports`), built by :mod:`dashboards` and logged to the parent
MLflow run.
A report is a convenience: whatever goes wrong here is one warning line, never a failed study.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..reports.publish import report_study
from ..stores.redaction import redact


def build_report_after_study(spec_name: str, storage_url: str, tracking_uri: str, out_dir: Path) -> Path | None:
    """Write the study's report into ``out_dir`` and log it to the parent run; the HTML's path, or None.

    Never raises (a failure prints one warning line on stderr and returns None).
    """
    try:
        return report_study(spec_name, storage_url, tracking_uri, Path(out_dir)).html
    except Exception as exc:
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        print(f"warning: no report for study '{spec_name}' ({redact(message)}); retry with: python -m dashboards "
              f"{spec_name} --storage {redact(storage_url)} --tracking-uri {redact(tracking_uri)}", file=sys.stderr)
        return None
