"""What the tests share: one relative error (``numerics``), the dataset-format writers (``formats``), the PyTorch
twins of the zoo models (``torch_twins``), the CUDA kernel cases (``cuda_cases``). ``tests/`` is on ``sys.path``
(pyproject's ``pythonpath``), so a test imports ``from support.numerics import rel_err``."""
