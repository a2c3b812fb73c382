"""Send MedView's results back to the study's source: DICOM SEG from an annotation label map or
from an AI segmentation, stored with STOW-RS or C-STORE (no Qt).

The SEG is written by ``medview.annotation.dicom_seg`` (highdicom, Manufacturer "MedView",
SeriesDescription starting with "MedView"), which is how the worklist recognises it afterwards
(``SeriesResult.is_medview_result``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

from medview.pacs.source import StudySource
from medview.progress import ProgressFn


def annotation_seg(labelmap, out_path: str | Path) -> Path:
    """The reviewed annotation as a DICOM SEG referencing the series it was drawn on."""
    from medview.annotation.dicom_seg import export_dicom_seg

    return export_dicom_seg(labelmap, out_path, series_description="MedView annotation")


def prediction_seg(prediction, image, out_path: str | Path) -> Path:
    """An AI segmentation (``Prediction.labels`` on ``image``'s grid) as a DICOM SEG whose
    segments name the model (AlgorithmIdentification) and are marked semi-automatic."""
    from medview.annotation.dicom_seg import SegError, export_dicom_seg
    from medview.annotation.labelmap import Label, LabelMap, default_color

    if prediction.labels is None:
        raise SegError(f"{prediction.model_id}: the result has no segmentation to send")
    labels = [Label(int(d["value"]), str(d.get("name") or f"label {d['value']}"),
                    tuple(d.get("color") or default_color(int(d["value"]))))
              for d in prediction.label_info if int(d.get("value", 0)) > 0]
    lm = LabelMap.from_array(image, prediction.labels.array, labels, source="model",
                             model_id=prediction.model_id, model_version=prediction.model_version)
    return export_dicom_seg(lm, out_path, series_description=f"MedView AI {prediction.model_id}"[:64],
                            series_number=901)


def send_labelmap(source: StudySource, labelmap, progress: Optional[ProgressFn] = None) -> Path:
    """Export ``labelmap`` as SEG into a temporary file and store it on ``source``; returns the
    SOP instance's file name that was sent (the temporary file itself is removed)."""
    with tempfile.TemporaryDirectory(prefix="medview-send-") as tmp:
        seg = annotation_seg(labelmap, Path(tmp) / "seg.dcm")
        source.store([seg], progress)
        return Path(seg.name)
