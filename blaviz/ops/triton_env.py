"""Whether Triton's interpreter is on (``TRITON_INTERPRET`` set to anything but ``0``).

Kept outside :mod:`blaviz.ops.bla.triton`, whose import turns the interpreter on where there is no
GPU, so that :mod:`blaviz.bench.regs` can ask before the kernels are imported."""
import os


def interpreting() -> bool:
    """True when Triton runs kernels in its interpreter instead of compiling them."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
