"""Decoding media into the pictures Vigil scores and shows. Plain Python and Pillow: nothing here
imports Django, torch or onnxruntime, so the web process and the worker can both use it."""
