"""The pipeline behind ``morphoscope run`` and ``morphoscope demo``, and its scoring.

``run_pipeline`` reads and validates the bands, detects and de-blends on the detection
band, measures every band on that segmentation, and writes the segmentation map,
catalogs and report. ``run_demo`` does the same on a simulated field and scores it
against the truth with :mod:`morphoscope.pipeline.evaluate`.
"""

from .config import STAGES, PipelineConfig, load_config, parse_band
from .demo import DemoResult, measurement_accuracy, run_demo
from .evaluate import detection_metrics, match_sources, segment_positions
from .pipeline import Pipeline, Result, weighted_stack
from .run import BandInput, PipelineResult, run_pipeline, write_outputs

__all__ = [
    "STAGES",
    "BandInput",
    "Pipeline",
    "PipelineConfig",
    "Result",
    "load_config",
    "parse_band",
    "weighted_stack",
    "DemoResult",
    "PipelineResult",
    "detection_metrics",
    "match_sources",
    "measurement_accuracy",
    "run_demo",
    "run_pipeline",
    "segment_positions",
    "write_outputs",
]
