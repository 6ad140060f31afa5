"""Reader for BTAD (beanTech Anomaly Detection): MVTec AD's tree with BTAD's names.

    <root>/<category>/train/ok/0000.bmp              normal training images (.bmp or .png)
    <root>/<category>/test/ok/0000.bmp               normal test images (all-zero masks)
    <root>/<category>/test/ko/0000.bmp               anomalous test images
    <root>/<category>/ground_truth/ko/0000.png       their masks, paired by file stem (.png or .bmp)

Categories 01, 02 and 03. Categories differ in file suffixes (01 and 03 store .bmp images, 02
.png), so images and masks are paired by stem whatever their suffix; a mask may also be named
`<stem>_mask.<ext>`. The archive unpacks to BTech_Dataset_transformed/; point --data-root there.
"""

from __future__ import annotations

from pathlib import Path

from memseg.data.files import CategoryFiles
from memseg.data.mvtec import TreeLayout, scan_mvtec_category

LAYOUT = (
    "expected BTAD layout: <root>/<category>/train/ok/*.bmp|png, <root>/<category>/test/ok/*.bmp|png, "
    "<root>/<category>/test/ko/*.bmp|png and <root>/<category>/ground_truth/ko/<stem>.png|bmp "
    "(categories 01, 02, 03)"
)
BTAD = TreeLayout(layout=LAYOUT, normal="ok", mask_suffix="")


def scan_btad_category(root: Path, category: str) -> CategoryFiles:
    """List and pair one BTAD category's files; every layout problem is listed, not raised."""
    return scan_mvtec_category(root, category, BTAD)
