"""Step 3: generate the benchmark dataset (300 arrays, fixed seed) and verify its checksum."""

import hashlib
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
rng = random.Random(20240917)
lines = []
for _ in range(300):
    length = rng.randint(4, 64)
    lines.append(" ".join(str(rng.randint(0, 999)) for _ in range(length)))
data = ("\n".join(lines) + "\n").encode()
(HERE / "arrays.txt").write_bytes(data)
digest = hashlib.sha256(data).hexdigest()
expected = (HERE / "arrays.sha256").read_text().split()[0]
if digest != expected:
    sys.exit(f"checksum mismatch: got {digest}, expected {expected}")
print(f"data/arrays.txt: 300 arrays, sha256 {digest} (verified)")
