"""Writes mixed.safetensors and mixed.json with the oracle's pure-Python
safetensors writer (/work/shared/tools/oracle/safetensors_io.py), so the Go
reader is checked against an independent implementation.

Run: /usr/bin/python3 make_mixed.py /work/shared/tools/oracle
"""
import json
import sys

import numpy as np

sys.path.insert(0, sys.argv[1])
import safetensors_io as st  # noqa: E402

special = [0.0, -0.0, 1.0, -2.5, 65504.0, 6.1035156e-05, 5.9604645e-08,
           3.0e-07, 1e-3, np.inf, -np.inf, 3.14159265, 1e5]
f16 = np.array(special, dtype=np.float32).astype(np.float16)
bf = np.array(special + [1e-40, 3.4e38], dtype=np.float32)
f64 = np.array([0.1, 1.0 / 3.0, -1e-300, 1e300, 2.0 ** -149], dtype=np.float64)
i32 = np.array([[-2147483648, 0], [7, 2147483647]], dtype=np.int32)
u8 = np.array([0, 1, 255], dtype=np.uint8)
f32 = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
tensors = {"half": f16, "brain": bf, "double": f64, "int32": i32,
           "bytes": u8, "float": f32, "scalar": np.array(1.5, np.float32)}
st.save_file(tensors, "mixed.safetensors", metadata={"made_by": "make_mixed.py"},
             dtype={"brain": "BF16"})
back, dts, meta = st.load_file("mixed.safetensors", with_dtypes=True)
out = {}
for k, v in back.items():
    v32 = v.astype(np.float32) if v.dtype.kind == "f" else v
    out[k] = {"dtype": dts[k], "shape": list(v.shape),
              "values": [repr(float(x)) if v.dtype.kind == "f" else int(x)
                         for x in np.ravel(v32)]}
json.dump(out, open("mixed.json", "w"), indent=1)
