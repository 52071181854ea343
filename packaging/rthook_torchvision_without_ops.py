"""PyInstaller runtime hook, used only when the bundle's torchvision has no C++ ops it can load.

That happens when a CPU-only torch is bundled with PyPI's torchvision, which is built for CUDA torch:
its ops library cannot load, and `import torchvision` then fails registering shapes for ops that do
not exist ("operator torchvision::nms does not exist"). vitgallery uses none of those ops (detection
boxes, ROI pooling), only torchvision's model definitions (and timm imports torchvision), so those
registrations are skipped. The patch waits for the first `import torchvision`: importing torch here
would cost every start, the decoder worker processes included, seconds.
"""

import sys


def _skip_shapes_of_missing_torchvision_ops() -> None:
    import torch.library

    register_fake = torch.library.register_fake

    def register_fake_unless_missing(op, func=None, /, *args, **kwargs):
        def register(fn):
            try:
                return register_fake(op, fn, *args, **kwargs)
            except RuntimeError as error:
                if isinstance(op, str) and op.startswith("torchvision::") and "does not exist" in str(error):
                    return fn
                raise

        return register if func is None else register(func)

    torch.library.register_fake = register_fake_unless_missing


class _BeforeTorchvision:
    """A meta path finder that finds nothing: it only runs the patch when torchvision is first imported."""

    def find_spec(self, name, path=None, target=None):
        if name == "torchvision":
            sys.meta_path.remove(self)
            _skip_shapes_of_missing_torchvision_ops()
        return None


sys.meta_path.insert(0, _BeforeTorchvision())
