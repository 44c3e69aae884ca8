"""ATOM (Danelljan et al., CVPR 2019) in pure PyTorch, and everything the annotator needs that is not Qt."""

__version__ = "0.1.0"
