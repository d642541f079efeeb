"""Plain PyTorch side of Vigil: image decoding, transforms and classifiers.

Nothing in this package imports Django, so it can be run and tested on its own. Heavy imports
(torch, timm, onnxruntime) happen inside the modules that need them, never at package import.
"""
