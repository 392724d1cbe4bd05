"""The pipeline behind ``morphoscope run`` and ``morphoscope demo``, and its scoring.

``run_pipeline`` reads and validates the bands, detects and de-blends on the detection
band, measures every band on that segmentation, and writes the segmentation map,
catalogs and report. ``run_demo`` does the same on a simulated field and scores it
against the truth with :mod:`morphoscope.pipeline.evaluate`.
"""

from .config import (
    MEASURE_SETS,
    STAGES,
    PipelineConfig,
    load_config,
    measure_set_options,
    parse_band,
)
from .demo import DemoResult, measurement_accuracy, run_demo
from .evaluate import detection_metrics, match_sources, segment_positions
from .pipeline import Pipeline, Result, weighted_stack
from .run import BandInput, PipelineResult, run_pipeline, write_outputs

__all__ = [
    "MEASURE_SETS",
    "STAGES",
    "BandInput",
    "DemoResult",
    "Pipeline",
    "PipelineConfig",
    "PipelineResult",
    "Result",
    "detection_metrics",
    "load_config",
    "match_sources",
    "measure_set_options",
    "measurement_accuracy",
    "parse_band",
    "run_demo",
    "run_pipeline",
    "segment_positions",
    "weighted_stack",
    "write_outputs",
]
