"""Group datasets and the cached feature pool.

The backbone is frozen, so its features of a crop never change during training.  On a CPU the backbone costs far
more than an IoU-Net step (measured on the 2-core development machine: ~0.24 s per 288 crop for Lite0 vs ~0.07 s
per pair for a training step), so the cheap way to train there is to draw a *pool* of groups once, store their
backbone features (float16), and train many epochs on it with the proposals redrawn every epoch
(:class:`FeaturePool`).  With a GPU and real datasets, drawing fresh pairs every epoch in DataLoader workers
(:class:`GroupDataset`) gives more variety; both feed the same training step.

Group ``k`` is drawn from ``numpy.random.default_rng([seed, stream, k])``, so a pool or an epoch is a pure function
of its seed whatever the number of workers, processes or interruptions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..atomic_files import atomic_path, atomic_write_text
from .processing import PairProcessor, ProcessedGroup
from .sampler import GroupSampler

__all__ = ["FeaturePool", "GroupDataset", "build_pool", "collate_groups", "extract_features"]

POOL_FORMAT = 1


class GroupDataset(torch.utils.data.Dataset):
    """Item ``k``: the :class:`ProcessedGroup` of group ``k`` of stream ``stream`` (e.g. the epoch number).

    Reading frames and composing synthetic scenes happen here, i.e. in DataLoader workers when there are some.
    """

    def __init__(self, sampler: GroupSampler, processor: PairProcessor, length: int, seed: int, stream: int = 0,
                 tests_per_group: int = 1):
        self.sampler = sampler
        self.processor = processor
        self.length = int(length)
        self.seed = int(seed)
        self.stream = int(stream)
        self.tests_per_group = int(tests_per_group)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> ProcessedGroup:
        rng = np.random.default_rng([self.seed, self.stream, int(index)])
        group = self.sampler.sample(rng, self.tests_per_group)
        return self.processor(group, rng)


def collate_groups(items: list[ProcessedGroup]) -> dict[str, torch.Tensor]:
    """Stack groups: ref_crops (G, 3, S, S), ref_boxes (G, 4), test_crops (G*K, 3, S, S), test_boxes (G*K, 4),
    test_ref (G*K,) index of each test crop's reference within the batch."""
    k = items[0].test_crops.shape[0]
    return {
        "ref_crops": torch.stack([g.ref_crop for g in items]),
        "ref_boxes": torch.stack([g.ref_box for g in items]),
        "test_crops": torch.cat([g.test_crops for g in items]),
        "test_boxes": torch.cat([g.test_boxes for g in items]),
        "test_ref": torch.arange(len(items)).repeat_interleave(k),
    }


@torch.no_grad()
def extract_features(backbone: torch.nn.Module, crops: torch.Tensor, chunk: int = 16
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Backbone features of (N, 3, S, S) crops in chunks: (f8 (N, C8, S/8, S/8), f16 (N, C16, S/16, S/16)).

    On the CPU the crops go one by one through the traced, BatchNorm-folded graph that tracking runs
    (:class:`InferenceBackbone`): the features the IoU-Net learns from are the ones it sees when tracking, and on
    this project's 2-core CPU that is several times faster than eager batches (0.05 vs 0.33 s per 288 crop).
    """
    from ..backbones.inference import InferenceBackbone

    device = next(backbone.parameters()).device
    if device.type == "cpu":
        runner, chunk = InferenceBackbone(backbone), 1
    else:
        runner = backbone
    f8s, f16s = [], []
    for i in range(0, crops.shape[0], chunk):
        f8, f16 = runner(crops[i:i + chunk].to(device))
        f8s.append(f8)
        f16s.append(f16)
    return torch.cat(f8s), torch.cat(f16s)


@dataclass
class FeaturePool:
    """Backbone features of groups, float16 on the CPU.

    ref_f8 (R, C8, H8, W8), ref_f16 (R, C16, H16, W16), ref_boxes (R, 4) crop px;
    test_f8 (T, C8, H8, W8), test_f16 (T, C16, H16, W16), test_boxes (T, 4) crop px;
    test_ref (T,) int64: the reference of each test crop.  A training pair is a test crop, so ``len`` is T.
    proposals (T, P, 4) / proposal_iou (T, P): optional fixed proposals (validation pools).
    """

    ref_f8: torch.Tensor
    ref_f16: torch.Tensor
    ref_boxes: torch.Tensor
    test_f8: torch.Tensor
    test_f16: torch.Tensor
    test_boxes: torch.Tensor
    test_ref: torch.Tensor
    proposals: torch.Tensor | None = None
    proposal_iou: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.test_boxes.shape[0])

    @property
    def num_groups(self) -> int:
        return int(self.ref_boxes.shape[0])

    def pairs(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """The pairs ``index`` (B,): ref_f8, ref_f16, test_f8, test_f16 as float32, ref_boxes (B, 4),
        test_boxes (B, 4), plus proposals / proposal_iou when the pool has fixed ones."""
        index = torch.as_tensor(index, dtype=torch.long)
        ref = self.test_ref[index]
        out = {
            "ref_f8": self.ref_f8[ref].float(), "ref_f16": self.ref_f16[ref].float(),
            "test_f8": self.test_f8[index].float(), "test_f16": self.test_f16[index].float(),
            "ref_boxes": self.ref_boxes[ref], "test_boxes": self.test_boxes[index],
        }
        if self.proposals is not None:
            out["proposals"] = self.proposals[index]
            out["proposal_iou"] = self.proposal_iou[index]
        return out

    def tensors(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.__dict__.items() if isinstance(v, torch.Tensor)}

    @classmethod
    def concat(cls, parts: list[FeaturePool]) -> FeaturePool:
        """One pool of ``parts`` in order, copied into preallocated tensors part by part: with memory-mapped parts
        (``load(..., mmap=True)``) the peak memory is the result plus one part, not twice the result."""
        names = [n for n in parts[0].tensors()
                 if all(getattr(p, n) is not None for p in parts)]  # fixed proposals only when every part has them
        fields = {}
        for name in names:
            t = getattr(parts[0], name)
            rows = sum(getattr(p, name).shape[0] for p in parts)
            fields[name] = t.new_empty((rows, *t.shape[1:]))
        starts = {name: 0 for name in names}
        refs = 0
        for part in parts:
            for name in names:
                tensor, lo = getattr(part, name), starts[name]
                fields[name][lo:lo + tensor.shape[0]] = tensor + refs if name == "test_ref" else tensor
                starts[name] = lo + tensor.shape[0]
            refs += part.num_groups
        return cls(**fields)

    @classmethod
    def from_batch(cls, batch: dict[str, torch.Tensor], backbone: torch.nn.Module) -> FeaturePool:
        """Features of a :func:`collate_groups` batch."""
        rf8, rf16 = extract_features(backbone, batch["ref_crops"])
        tf8, tf16 = extract_features(backbone, batch["test_crops"])
        return cls(rf8.half().cpu(), rf16.half().cpu(), batch["ref_boxes"].float(), tf8.half().cpu(),
                   tf16.half().cpu(), batch["test_boxes"].float(), batch["test_ref"].long())

    def save(self, path: str | Path) -> None:
        """Atomic ``torch.save`` of the tensors (read back with ``weights_only=True``)."""
        with atomic_path(path) as tmp:
            torch.save(self.tensors(), tmp)

    @classmethod
    def load(cls, path: str | Path, mmap: bool = False) -> FeaturePool:
        """Read a pool written by :meth:`save`.  ``mmap``: map the file instead of reading it, so the tensors live
        in the page cache, shared by every process that maps the same file (two runs on one pool)."""
        return cls(**torch.load(path, map_location="cpu", weights_only=True, mmap=mmap))


def build_pool(folder: str | Path, dataset: GroupDataset, backbone: torch.nn.Module, manifest: dict,
               groups_per_shard: int = 32, workers: int = 0,
               progress: Callable[[int, int], None] | None = None) -> FeaturePool:
    """Build (or finish building) the pool of ``dataset``'s groups in ``folder`` and return it.

    Shards ``shard_NNNNN.pt`` hold ``groups_per_shard`` consecutive groups; complete shards are kept, so an
    interrupted build resumes where it stopped, and a pool can grow later (a larger ``dataset`` of the same seed
    reuses every complete shard: group ``k`` does not depend on the pool size).  ``manifest`` (JSON-able: sources,
    seed, backbone...) is written to ``pool.json``; a folder built with other settings is refused rather than
    silently mixed.  ``progress(done_groups, total_groups)`` is called after each shard.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = dict(manifest, format=POOL_FORMAT, groups_per_shard=groups_per_shard,
                    tests_per_group=dataset.tests_per_group, seed=dataset.seed, stream=dataset.stream)
    manifest_path = folder / "pool.json"
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text())
        old.pop("groups", None)
        if old != json.loads(json.dumps(manifest)):
            raise ValueError(f"{folder} holds a pool built with other settings; delete it or use another --out")
    atomic_write_text(manifest_path, json.dumps(dict(manifest, groups=len(dataset)), indent=2) + "\n")
    num_shards = -(-len(dataset) // groups_per_shard)
    paths = [folder / f"shard_{s:05d}.pt" for s in range(num_shards)]
    complete: dict[int, int] = {}  # shard -> groups; shards are read again only at the end (concat)
    for s, path in enumerate(paths):
        expected = min((s + 1) * groups_per_shard, len(dataset)) - s * groups_per_shard
        if path.is_file():
            groups = FeaturePool.load(path, mmap=True).num_groups
            if groups == expected:  # a short last shard of a smaller pool is rebuilt
                complete[s] = groups
    missing = [s for s in range(num_shards) if s not in complete]
    done = sum(complete.values())
    if progress is not None and done:
        progress(done, len(dataset))
    if missing:
        # One loader over every missing group, one batch per shard: workers prepare the next shards' crops while
        # the backbone runs on this one.  Only the last shard can be short, and it comes last, so batches align.
        indices = [i for s in missing for i in range(s * groups_per_shard,
                                                     min((s + 1) * groups_per_shard, len(dataset)))]
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=groups_per_shard,
                                             num_workers=workers, collate_fn=collate_groups)
        for s, batch in zip(missing, loader):
            part = FeaturePool.from_batch(batch, backbone)
            part.save(paths[s])
            done += part.num_groups
            if progress is not None:
                progress(done, len(dataset))
    # One file for the whole pool, mapped rather than read: runs training on the same pool (or on hard-linked
    # copies of it) share one copy in the page cache instead of each holding the pool in its own memory.
    whole = folder / f"pool_{len(dataset)}_groups.pt"
    if not whole.is_file():
        FeaturePool.concat([FeaturePool.load(p, mmap=True) for p in paths]).save(whole)
        for stale in folder.glob("pool_*_groups.pt"):  # a smaller pool's, before it grew
            if stale != whole:
                stale.unlink()
    return FeaturePool.load(whole, mmap=True)
