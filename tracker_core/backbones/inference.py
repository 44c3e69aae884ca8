"""A faster way to run a frozen backbone for tracking: traced and optimised per input shape.

On a CPU the traced graph is handed to oneDNN (``torch.jit.optimize_for_inference``): BatchNorm folded into the
convolutions, the weights prepacked in oneDNN's blocked layout, and the activations kept in that layout from layer
to layer (ReLU6 runs in place on them). On a GPU it is frozen (BatchNorm folded, the padding
arithmetic constant-folded). EfficientNet-Lite0's 288x288 forward on 2 threads: on the first reference CPU about 24
ms eagerly, 11.5 ms frozen, 8 ms frozen channels-last and 6.5-7 ms once its stride-2 convolutions stopped copying
their input into a padded buffer; on a 2-core AVX2 CPU 14.6 ms frozen channels-last and 11.4 ms as oneDNN's graph
(medians of alternating runs; docs/RESULTS.md, issue 12), each within about 2e-6 (relative) of a float64 forward.
Each distinct per-frame input shape gets its own graph (1 crop per frame, 5 for the multi-scale search), kept per
backbone module so that every tracker sharing the model reuses it; larger one-off batches run eagerly on a GPU and
one crop at a time through the one-crop graph on a CPU (the first-frame augmentation), and any failure falls back to
eager mode.
"""

from __future__ import annotations

import copy
import logging
import threading
import warnings
import weakref

import torch

from .base import Backbone

log = logging.getLogger(__name__)


class _GraphStore:
    """One network's traced graphs by input signature, and the lock that makes a thread needing a graph another
    thread is tracing wait for it (the app's warm-up and its tracking worker share the model)."""

    def __init__(self) -> None:
        self.graphs: dict[tuple, torch.jit.ScriptModule] = {}
        self.lock = threading.Lock()


# Kept beside the modules, not on them (a module attribute would be deep-copied with the network when tracing),
# so that every tracker sharing a model shares its graphs; they go when the network does.
_STORES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_STORES_LOCK = threading.Lock()


def traced_graphs(backbone: Backbone) -> dict:
    """The graphs traced so far for ``backbone`` (input signature -> graph); empty when none."""
    with _STORES_LOCK:
        store = _STORES.get(backbone)
    return {} if store is None else dict(store.graphs)


class InferenceBackbone:
    """Callable like the backbone: ``(N, 3, H, W) 0..255 -> (feat_s8, feat_s16)``, no gradients."""

    def __init__(self, backbone: Backbone, enabled: bool = True, max_graphs: int = 6, max_batch: int = 5):
        self.backbone = backbone
        self.enabled = enabled
        self.max_graphs = max_graphs
        self.max_batch = max_batch
        with _STORES_LOCK:
            store = _STORES.get(backbone)
            if store is None:
                store = _STORES[backbone] = _GraphStore()
        self._graphs, self._lock = store.graphs, store.lock

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            if not self.enabled:
                return self.backbone(images)
            if images.shape[0] > 1 and images.device.type == "cpu":
                # On CPU the one-crop graph runs crops faster one by one than a batched graph does (`atom bench
                # speed`, multi-scale search on Crossing: 5 crops in 200 ms batched, about 24 ms each alone), and
                # than eager mode on a batch: the first frame's 30 augmented crops took 700 ms eagerly in batches
                # of 8, about 400 ms one by one.
                feats = [self(images[i:i + 1]) for i in range(images.shape[0])]
                return torch.cat([f[0] for f in feats]), torch.cat([f[1] for f in feats])
            if images.shape[0] > self.max_batch:
                return self.backbone(images)
            key = (tuple(images.shape), images.device.type, images.device.index, images.dtype)
            graph = self._graphs.get(key)
            if graph is None:
                with self._lock:
                    graph = self._graphs.get(key)
                    if graph is None:
                        if len(self._graphs) >= self.max_graphs:
                            return self.backbone(images)
                        graph = self._trace(images)
                        if graph is None:
                            return self.backbone(images)
                        self._graphs[key] = graph
            # The heads read ordinary contiguous maps.
            return tuple(f.contiguous() for f in graph(images))

    def _trace(self, images: torch.Tensor):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if images.device.type == "cpu":
                    return self._trace_cpu(images)
                traced = torch.jit.trace(self.backbone, images, check_trace=False)
                return torch.jit.freeze(traced.eval())
        except Exception as exc:  # any tracing problem: eager mode is always correct
            log.warning("backbone tracing failed (%s); running eagerly", exc)
            self.enabled = False
            return None

    def _trace_cpu(self, images: torch.Tensor):
        """oneDNN's own graph: BatchNorm folded, weights prepacked in its blocked layout, and the activations kept
        in that layout from layer to layer.  Where oneDNN cannot take the graph, the frozen channels-last trace
        (the previous fastest).  Both are traced on a copy, so that the module others train or run eagerly keeps
        its layout."""
        if torch.backends.mkldnn.is_available():  # without oneDNN the call would only freeze the graph
            try:
                traced = torch.jit.trace(copy.deepcopy(self.backbone).eval(), images, check_trace=False)
                return torch.jit.optimize_for_inference(traced)
            except Exception as exc:
                log.warning("oneDNN could not take the backbone graph (%s); using the frozen channels-last one", exc)
        network = copy.deepcopy(self.backbone).to(memory_format=torch.channels_last)
        example = images.contiguous(memory_format=torch.channels_last)
        return torch.jit.freeze(torch.jit.trace(network, example, check_trace=False).eval())
