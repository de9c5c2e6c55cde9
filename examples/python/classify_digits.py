"""Classify handwritten digits with kiln: the onnxruntime way, then kiln's.

    python examples/python/classify_digits.py
"""
import os

import numpy as np

import kiln

here = os.path.dirname(os.path.abspath(__file__))
digits = os.path.join(here, "..", "..", "models", "digits")
images = np.load(os.path.join(digits, "samples", "digits10.npy"))  # float32 [10, 1, 8, 8]
labels = [int(x) for x in open(os.path.join(digits, "samples", "labels.txt")).read().split()]

session = kiln.InferenceSession(os.path.join(digits, "model.onnx"))
name = session.get_inputs()[0].name
(logits,) = session.run(None, {name: images})  # onnxruntime's call
predicted = logits.argmax(axis=1).tolist()
print("predicted", predicted)
print("labels   ", labels)
print(f"accuracy {np.mean(np.array(predicted) == labels):.2f}")
assert session({name: images})["logits"].argmax(axis=1).tolist() == predicted  # kiln's call: a dict
