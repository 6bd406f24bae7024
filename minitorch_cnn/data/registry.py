"""What we know about each dataset: files, official checksums, mirrors, classes, statistics.

Normalisation statistics are the standard published values. They are the
per-channel mean/std of the *training* images scaled to [0, 1]. For MNIST and
Fashion-MNIST they refer to the original 28x28 images, not to our 32x32
zero-padded copies: we keep them so that results stay comparable with the
literature. The padding pixels are 0, the same value as the background, so
after normalisation they equal the background value ``-mean/std``; the
statistics of the padded image would be slightly lower (mean x 784/1024).
"""
from dataclasses import dataclass

from .download import Checksum


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    classes: tuple
    mean: tuple          # per channel, on pixels scaled to [0, 1]
    std: tuple
    subfolders: tuple    # folder names (inside a data dir) that may hold the files, most specific first
    mirrors: tuple       # base URLs, tried in order
    split_files: dict    # split -> file names (IDX: without .gz)
    checksums: dict      # file name -> Checksum


# ----------------------------------------------------------------------------- MNIST
_IDX_SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

MNIST = DatasetInfo(
    name="mnist",
    classes=tuple(str(d) for d in range(10)),
    mean=(0.1307,),
    std=(0.3081,),
    subfolders=("mnist", "MNIST/raw"),  # ours, then torchvision's layout
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/"),
    split_files=_IDX_SPLITS,
    checksums={  # file: sha256 of the official .gz; content: sha256 of the decompressed IDX
        "train-images-idx3-ubyte": Checksum(
            "sha256",
            file=("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",),
            content=("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",)),
        "train-labels-idx1-ubyte": Checksum(
            "sha256",
            file=("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",),
            content=("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",)),
        "t10k-images-idx3-ubyte": Checksum(
            "sha256",
            file=("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",),
            content=("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",)),
        "t10k-labels-idx1-ubyte": Checksum(
            "sha256",
            file=("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",),
            content=("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",)),
    },
)

# --------------------------------------------------------------------- Fashion-MNIST
# Debian's package re-gzipped the files (different .gz bytes, same content), so
# the decompressed digest is the one that identifies the data; the upstream .gz
# digest is what a download from the official mirror must match.
FASHION_MNIST = DatasetInfo(
    name="fashion-mnist",
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    mean=(0.2860,),
    std=(0.3530,),
    subfolders=("fashion-mnist", "FashionMNIST/raw"),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    split_files=_IDX_SPLITS,
    checksums={
        "train-images-idx3-ubyte": Checksum(
            "sha256",
            file=("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",),
            content=("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",)),
        "train-labels-idx1-ubyte": Checksum(
            "sha256",
            file=("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",),
            content=("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",)),
        "t10k-images-idx3-ubyte": Checksum(
            "sha256",
            file=("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",),
            content=("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",)),
        "t10k-labels-idx1-ubyte": Checksum(
            "sha256",
            file=("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",),
            content=("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",)),
    },
)

# -------------------------------------------------------------------------- CIFAR-10
# Two official layouts; both hold the same pixels. The binary one is preferred
# (no pickle involved, sha256 digests) when both are present, and downloaded first.
CIFAR_BIN_FOLDER = "cifar-10-batches-bin"
CIFAR_PY_FOLDER = "cifar-10-batches-py"

_CIFAR_BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}

CIFAR_BIN_CHECKSUMS = {name + ".bin": Checksum("sha256", file=(digest,)) for name, digest in {
    "data_batch_1": "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
    "data_batch_2": "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
    "data_batch_3": "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
    "data_batch_4": "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
    "data_batch_5": "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
    "test_batch": "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
}.items()}

CIFAR_PY_CHECKSUMS = {name: Checksum("md5", file=(digest,)) for name, digest in {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}.items()}


@dataclass(frozen=True)
class CifarArchive:
    name: str            # archive file name on the mirror
    checksum: Checksum   # of the archive
    folder: str          # top folder inside the archive (and on disk after extraction)
    suffix: str          # of the batch files: ".bin" or ""
    meta: str            # the class-names file that comes with the batches


CIFAR_ARCHIVES = (  # binary first: no pickle, sha256
    CifarArchive("cifar-10-binary.tar.gz",
                 Checksum("sha256", file=("c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",)),
                 CIFAR_BIN_FOLDER, ".bin", "batches.meta.txt"),
    CifarArchive("cifar-10-python.tar.gz", Checksum("md5", file=("c58f30108f718f92721af3b95e74349a",)),
                 CIFAR_PY_FOLDER, "", "batches.meta"),
)

CIFAR10 = DatasetInfo(
    name="cifar10",
    classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
    subfolders=("cifar10",),
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    split_files=_CIFAR_BATCHES,
    checksums={**CIFAR_BIN_CHECKSUMS, **CIFAR_PY_CHECKSUMS},
)

REGISTRY = {info.name: info for info in (MNIST, FASHION_MNIST, CIFAR10)}
DATASETS = tuple(REGISTRY)
ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist",
           "cifar-10": "cifar10", "cifar_10": "cifar10"}


def get_info(name):
    """The ``DatasetInfo`` of ``name``; unknown names raise ValueError listing the valid ones."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return REGISTRY[key]
