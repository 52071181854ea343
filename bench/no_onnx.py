"""Run a benchmark script as a user's install would: without onnx.

onnx comes with this project's `dev` extra only (for bench/cpu_runtimes.py), and NNCF imports it while
it quantises when it is there: loading its ml_dtypes extension held the interpreter 0.5-0.9 s, a stall
a user's install (`.[heif,openvino]`) does not have (docs/performance.md, issue 18 point 5).

    python bench/no_onnx.py bench/gui_responsiveness.py --photos 100 --folder F --library NEW ...
"""

import runpy
import sys

if __name__ == "__main__":
    sys.modules["onnx"] = None  # `import onnx` raises ImportError, as where it is not installed
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
