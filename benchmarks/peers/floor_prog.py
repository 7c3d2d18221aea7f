"""The plain-Python floor of W3, one whole program: ``python floor_prog.py w3 DIR SIZE``.

Makes the same SIZE-byte value as the pipelines' ``make_bytes``, writes it to a file in DIR,
reads it back and prints its length: what writing and then reading the artifact costs without
a framework (interpreter start included, as in every program here). Cold and warm alike.
"""

import json
import os
import sys

if __name__ == "__main__":
    workload, directory, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    assert workload == "w3", "the floor is for W3 only"
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "value.bin")
    with open(path, "wb") as f:
        f.write(bytes(range(256)) * (size // 256))
    with open(path, "rb") as f:
        data = f.read()
    print(json.dumps({"result": len(data)}))
