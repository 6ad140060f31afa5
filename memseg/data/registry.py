"""The dataset registry: every data set kind the benchmark reads, in one table.

Each entry says which categories the data set has, which module reads one category, what MemSeg
does differently on it (its default settings), what is evaluated, its licence and where it comes
from. It is the one list of data set kinds and of each data set's categories, and holds their
validators (check_dataset_kind, check_categories: the one category check of the project), which
JobConfig, sweeps, the CLIs and validation all go through. Adding a data set is adding one entry
here and one reader.

This module imports only memseg.names (MVTec AD's names, check_names, check_path_name).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from memseg.names import CATEGORIES as MVTEC_CATEGORIES
from memseg.names import OBJECT_CATEGORIES, TEXTURE_CATEGORIES, check_names, check_path_name

VISA_CATEGORIES: tuple[str, ...] = (
    "candle", "capsules", "cashew", "chewinggum", "fryum", "macaroni1",
    "macaroni2", "pcb1", "pcb2", "pcb3", "pcb4", "pipe_fryum",
)  # fmt: skip
MVTEC_AD2_CATEGORIES: tuple[str, ...] = (
    "can", "fabric", "fruit_jelly", "rice", "sheet_metal", "vial", "wallplugs", "walnuts",
)  # fmt: skip
MPDD_CATEGORIES: tuple[str, ...] = (
    "bracket_black", "bracket_brown", "bracket_white", "connector", "metal_plate", "tubes",
)  # fmt: skip
BTAD_CATEGORIES: tuple[str, ...] = ("01", "02", "03")


@dataclass(frozen=True)
class MemSegSettings:
    """What a job does differently per data set. `category_table`: whether memseg.categories'
    per-category table (MVTec AD's memory sizes, scales and foreground masks) applies; data sets
    without it run with the official defaults and `foreground_mask` (the data set's default: no
    foreground mask, so anomalies are placed anywhere in the image). An explicit JobConfig value
    beats both (memseg.config.resolve). `masks`: how a mask file is binarised ("half_max":
    pixels > 0.5 of the mask's max, MVTec's 0/255 masks; "nonzero": every non-zero pixel is
    defect, for masks that store small or per-instance values). `test_set`: the folder or split
    evaluated; `unused`: what the data set holds that MemSeg does not read."""

    category_table: bool = False
    foreground_mask: bool = False
    masks: str = "half_max"
    test_set: str = "test"
    unused: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Scoring:
    """How a data set's authors score it: the metrics their tables print (`headline`, keys of
    memseg.result.METRICS, in the order the summary shows them), the false positive rates their
    AUPROs are integrated to (`aupro_fpr_limit` for pixel_aupro, `low_aupro_fpr_limit` for
    pixel_aupro_low) and where that comes from (`source`, docs/metrics.md says more). Every job
    computes every metric; the headline picks what the summary prints. The name is recorded on
    every result row (memseg.protocol), and rows scored by different protocols never pair."""

    name: str
    headline: tuple[str, ...]
    source: str
    aupro_fpr_limit: float = 0.3
    low_aupro_fpr_limit: float = 0.05


# The four numbers every data set was scored with before each got its own protocol.
MVTEC_AD_HEADLINE: tuple[str, ...] = ("image_auroc", "pixel_auroc", "pixel_f1", "pixel_aupro")
SCORINGS: dict[str, Scoring] = {
    s.name: s
    for s in (
        Scoring(
            "mvtec_ad",
            MVTEC_AD_HEADLINE,
            "MemSeg (Yang et al. 2022) tables: image and pixel AUROC; AUPRO up to FPR 0.3 and pixel F1-max "
            "as the official MVTec AD evaluation code (Bergmann et al. 2021) and anomalib compute them",
        ),
        Scoring(
            "mvtec_ad2",
            ("pixel_aupro_low", "pixel_aupro", "seg_f1"),
            "MVTec AD 2 (Heckler-Kram et al. 2025): AU-PRO up to FPR 0.05 and 0.30, and SegF1 at a threshold from validation/",
        ),
        Scoring(
            "visa",
            ("image_auroc", "image_aupr", "pixel_auroc", "pixel_aupro"),
            "VisA, SPot-the-Difference (Zou et al. 2022): image AUROC and AUPR, pixel AUROC and AUPRO up to FPR 0.3",
        ),
        Scoring(
            "mpdd",
            ("image_auroc", "pixel_auroc", "pixel_aupro"),
            "MPDD (Jezek et al. 2021): image AUROC, pixel AUROC and PRO",
        ),
        Scoring(
            "btad",
            ("pixel_auroc", "pixel_aupro"),
            "BTAD, VT-ADL (Mishra et al. 2021): a PRO score per product; pixel AUROC as later BTAD tables print it",
        ),
    )
}


def get_scoring(name: str) -> Scoring:
    """The scoring protocol called `name`, or an UnknownNameError listing the valid ones."""
    return SCORINGS[check_names("scoring protocols", [name], tuple(SCORINGS))[0]]


@dataclass(frozen=True)
class Dataset:
    """One data set kind. `categories` None: the data names its own (folder data); check names
    with check_categories(names, dataset=...). `reader`: "module:function" that
    lists one category's files (root, category) -> CategoryFiles; the module's LAYOUT says the
    expected layout in words. `download`: the key of memseg.data.download.SOURCES (None: bring
    your own data). `published`: whether published MemSeg numbers exist for it under our
    protocol (the report shows them only then)."""

    name: str
    title: str
    categories: tuple[str, ...] | None
    reader: str
    settings: MemSegSettings
    evaluated: str
    licence: str
    download: str | None
    published: bool = False
    # Normal training images per category when the data set's definition fixes the count (the
    # generated set), so a job that needs more is refused before the data exists; None: only
    # reading the data tells.
    train_images: int | None = None
    scoring: str = "mvtec_ad"  # how its authors score it: a key of SCORINGS
    # The categories in the order its paper's tables print them (None: `categories` are in that
    # order already); MVTec AD's paper puts the five textures first, then the ten objects.
    paper_categories: tuple[str, ...] | None = None

    @property
    def paper_order(self) -> tuple[str, ...]:
        return self.paper_categories or self.categories or ()

    @property
    def scoring_protocol(self) -> Scoring:
        return SCORINGS[self.scoring]


_MVTEC_SETTINGS = MemSegSettings(category_table=True)
# Normal training images per category of the generated set (memseg.data.synthetic's default).
SYNTHETIC_TRAIN_IMAGES = 60
_CC_BY_NC_SA = "CC BY-NC-SA 4.0"

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "mvtec",
            "MVTec AD",
            MVTEC_CATEGORIES,
            "memseg.data.mvtec:scan_mvtec_category",
            _MVTEC_SETTINGS,
            "test/ (good + every defect type), masks in ground_truth/",
            _CC_BY_NC_SA,
            "mvtec",
            published=True,
            paper_categories=TEXTURE_CATEGORIES + OBJECT_CATEGORIES,
        ),
        Dataset(
            "folder",
            "folder",
            None,
            "memseg.data.folder:scan_folder_category",
            MemSegSettings(test_set="every 5th normal + abnormal/"),
            "every 5th normal image (by name) + abnormal/, masks optional",
            "yours",
            None,
        ),
        Dataset(
            "synthetic",
            "generated (MVTec AD layout)",
            MVTEC_CATEGORIES,
            "memseg.data.mvtec:scan_mvtec_category",
            _MVTEC_SETTINGS,
            "test/ (good + every defect type), exact masks",
            "generated here",
            None,
            train_images=SYNTHETIC_TRAIN_IMAGES,
            paper_categories=TEXTURE_CATEGORIES + OBJECT_CATEGORIES,
        ),
        Dataset(
            "visa",
            "VisA",
            VISA_CATEGORIES,
            "memseg.data.visa:scan_visa_category",
            MemSegSettings(masks="nonzero", test_set="split_csv/1cls.csv test rows", unused="split_csv/2cls_*.csv"),
            "the test rows of split_csv/1cls.csv (normal + anomaly); masks: every non-zero pixel",
            "CC BY 4.0",
            "visa",
            scoring="visa",
        ),
        Dataset(
            "mvtec_ad2",
            "MVTec AD 2",
            MVTEC_AD2_CATEGORIES,
            "memseg.data.mvtec_ad2:scan_mvtec_ad2_category",
            MemSegSettings(
                test_set="test_public",
                unused="test_private*/ (no ground truth); validation/ only calibrates the thresholds (no checkpoint is selected)",
            ),
            "test_public/ (good + bad, masks in test_public/ground_truth/bad); the private test sets "
            "have no ground truth and are refused",
            _CC_BY_NC_SA,
            "mvtec_ad2",
            scoring="mvtec_ad2",
        ),
        Dataset(
            "mpdd",
            "MPDD",
            MPDD_CATEGORIES,
            "memseg.data.mvtec:scan_mvtec_category",
            MemSegSettings(),
            "test/ (good + every defect type), masks in ground_truth/ (MVTec AD layout)",
            _CC_BY_NC_SA,
            "mpdd",
            scoring="mpdd",
        ),
        Dataset(
            "btad",
            "BTAD",
            BTAD_CATEGORIES,
            "memseg.data.btad:scan_btad_category",
            MemSegSettings(test_set="test/ok + test/ko"),
            "test/ok + test/ko, masks in ground_truth/ko (.bmp or .png)",
            _CC_BY_NC_SA,
            "btad",
            scoring="btad",
        ),
    )
}
DATASET_KINDS: tuple[str, ...] = tuple(DATASETS)
assert all(d.scoring in SCORINGS for d in DATASETS.values()), "every data set names a scoring protocol of SCORINGS"
# The data sets `harness data download` knows (DTD is a texture source, not a benchmark).
DOWNLOADABLE: tuple[str, ...] = tuple(d.download for d in DATASETS.values() if d.download is not None)


def check_dataset_kind(kind: str) -> str:
    """`kind` if the registry has it (DATASET_KINDS, the one list of kinds), else an UnknownNameError."""
    return check_names("kinds", [kind], DATASET_KINDS)[0]


def get_dataset(name: str) -> Dataset:
    """The data set called `name`, or an UnknownNameError (memseg.names) listing the valid kinds."""
    return DATASETS[check_dataset_kind(name)]


def check_categories(names: Iterable[str], also_valid: Sequence[str] = (), dataset: str = "mvtec") -> tuple[str, ...]:
    """`names` if each is a category of `dataset` as the registry lists them (the one category
    check of the project); any names for a data set that names its own (folder data)."""
    valid = get_dataset(dataset).categories
    if valid is None:  # each becomes a folder name (job ids, artefacts, visuals): a name, never a path
        return tuple(check_path_name("category", n) for n in names)
    return check_names("categories", names, valid, also_valid, where=f"dataset {dataset}")


def check_category(name: str, dataset: str = "mvtec") -> str:
    return check_categories([name], dataset=dataset)[0]


def settings_of(name: str) -> MemSegSettings:
    return get_dataset(name).settings
