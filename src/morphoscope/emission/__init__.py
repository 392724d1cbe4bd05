"""Extended emission-line search: medium-band pixel clusters against the continuum's.

Following the JADES medium-band search for outflow candidates (Zhu et al. 2025,
ApJ 986, 162), every source is thresholded and clustered (DBSCAN on pixels with
their scaled flux) in a medium band holding a line and in one or more reference
(continuum) bands; a source whose medium-band cluster is more extended, larger or
differently shaped than its continuum cluster is a candidate.

:func:`search`
    the catalog-level search (astropy Table with ``candidate`` and ``reason``).
:func:`grid_dbscan`
    DBSCAN of pixels on a grid, labels identical to scikit-learn's, much faster.
:func:`match_psfs`, :func:`matching_kernel`
    PSF matching to the broadest PSF.
:func:`candidate_figure`, :func:`inspection_page`
    the three-panel diagnostic figure and the self-contained HTML page for accepting
    or rejecting candidates by eye.
"""

from .clusters import cluster_stats, compare_clusters, main_cluster, pixel_clusters
from .core import DEFAULTS, SourceCutouts, search
from .dbscan import grid_dbscan, grid_offsets
from .figures import candidate_figure
from .inspect import inspection_page
from .psf import match_psfs, matching_kernel

__all__ = [
    "DEFAULTS",
    "SourceCutouts",
    "candidate_figure",
    "cluster_stats",
    "compare_clusters",
    "grid_dbscan",
    "grid_offsets",
    "inspection_page",
    "main_cluster",
    "match_psfs",
    "matching_kernel",
    "pixel_clusters",
    "search",
]
