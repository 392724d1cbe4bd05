import numpy as np
from astropy.table import Table

from morphoscope.pipeline.evaluate import detection_metrics, match_sources, segment_positions


def test_match_is_one_to_one_and_nearest_first():
    d, t = match_sources([0.0, 0.5, 30.0], [0.0, 0.0, 0.0], [0.4, 29.0], [0.0, 0.0], 1.5)
    assert sorted(zip(d.tolist(), t.tolist(), strict=True)) == [(1, 0), (2, 1)]
    # Per-truth radius: a large galaxy accepts a distant centroid, a small one does not.
    d, t = match_sources([5.0, 45.0], [0.0, 0.0], [0.0, 40.0], [0.0, 0.0], [6.0, 2.0])
    assert d.tolist() == [0] and t.tolist() == [0]


def test_metrics_on_a_known_segmentation():
    truth = Table(
        {
            "id": [1, 2, 3],
            "x": [10.0, 30.0, 50.0],
            "y": [10.0, 10.0, 10.0],
            "r_e": [6.0, 6.0, 6.0],
            "snr": [100.0, 50.0, 5.0],
        }
    )
    truth_seg = np.zeros((20, 60), int)
    for i, x in enumerate([10, 30, 50], start=1):
        truth_seg[6:15, x - 4 : x + 5] = i
    seg = np.zeros((20, 60), int)
    seg[8:13, 8:13] = 1  # finds source 1
    seg[8:13, 26:30] = 2  # source 2 split in two halves: one matches, one is a fragment
    seg[8:13, 31:35] = 3
    seg[0:3, 55:58] = 4  # spurious, on empty sky
    m = detection_metrics(seg, truth, truth_segmap=truth_seg, snr_min=20)
    assert m["n_truth_bright"] == 2 and m["n_matched_bright"] == 2
    assert m["completeness"] == 1.0
    assert m["n_detected"] == 4 and m["n_spurious"] == 2 and m["n_fragments"] == 1
    assert m["purity"] == 0.5
    assert m["over_split_rate"] == 0.5


def test_segment_positions_flux_weighted():
    seg = np.zeros((10, 10), int)
    seg[2:5, 2:5] = 1
    img = np.zeros((10, 10))
    img[4, 4] = 1.0
    labels, x, y = segment_positions(seg, img)
    assert labels.tolist() == [1] and (x[0], y[0]) == (4.0, 4.0)
    _, xg, yg = segment_positions(seg)
    assert (xg[0], yg[0]) == (3.0, 3.0)


def test_either_centroid_matches_a_clumpy_galaxy_by_its_centre_of_light():
    # One segment: a bright knot at x=20 and diffuse light to its right; centre of light x=26.7.
    img = np.zeros((40, 60))
    img[18:23, 18:23] = 10.0
    img[15:26, 24:45] = 1.0
    seg = (img > 0).astype(int)
    truth = Table({"x": [26.5], "y": [20.0], "r_e": [3.0], "snr": [100.0]})
    window = detection_metrics(seg, truth, image=img, centroid="window")
    either = detection_metrics(seg, truth, image=img, centroid="either")
    assert window["completeness"] == 0.0  # the windowed centroid sits on the knot
    assert either["completeness"] == 1.0 and either["n_spurious"] == 0
