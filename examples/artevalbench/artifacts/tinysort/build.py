"""Step 2: build the single-file executable bin/tinysort.pyz from src/."""

import zipapp
from pathlib import Path

Path("bin").mkdir(exist_ok=True)
zipapp.create_archive(
    "src", target="bin/tinysort.pyz", interpreter="/usr/bin/env python3", main="tinysort.__main__:cli"
)
print("built bin/tinysort.pyz")
