"""Generate the HumanEval-V example: 12 visual coding tasks in HumanEval-V's exact format, a diagram
per task, and model predictions (n = 1 and n = 6) that cover correct, wrong, unparseable, timing-out,
crashing and hostile answers.

    python examples/humanevalv/make_example.py        # rewrites data/ and the manifests

The real HumanEval-V tasks are not redistributable here; these are written by the Proctor authors in
the same shape (qid, diagram, function_signature, test_script, ground_truth_solution, task_type,
capability_aspects). The manifests hold the records in ConfigMaps so that `kubectl apply -f` works.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import math
from pathlib import Path

import yaml
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
W, H = 360, 240
INK, BLUE, RED, GREEN, ORANGE, GREY = (
    (20, 20, 20),
    (40, 90, 200),
    (200, 40, 40),
    (40, 150, 60),
    (240, 140, 0),
    (170, 170, 170),
)


def canvas() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGB", (W, H), "white")
    return img, ImageDraw.Draw(img)


def grid(d: ImageDraw.ImageDraw, cells: list[list[int]], x0=20, y0=20, size=28, fills=None) -> None:
    for r, row in enumerate(cells):
        for c, v in enumerate(row):
            box = [x0 + c * size, y0 + r * size, x0 + (c + 1) * size, y0 + (r + 1) * size]
            fill = (fills or {}).get(v, "white")
            d.rectangle(box, outline=INK, fill=fill)
            d.text((box[0] + 9, box[1] + 8), str(v), fill=INK)


def arrow(d, a, b, color=INK) -> None:
    d.line([a, b], fill=color, width=3)
    ang = math.atan2(b[1] - a[1], b[0] - a[0])
    for s in (-0.5, 0.5):
        d.line([b, (b[0] - 10 * math.cos(ang + s), b[1] - 10 * math.sin(ang + s))], fill=color, width=3)


def draw_staircase():
    img, d = canvas()
    for i in range(1, 5):
        for j in range(i):
            x, y = 20 + (i - 1) * 40, 200 - (j + 1) * 30
            d.rectangle([x, y, x + 36, y + 28], outline=INK, fill=BLUE)
        d.text((30 + (i - 1) * 40, 210), f"n={i}", fill=INK)
    d.text((200, 40), "total blocks for n=4: 10", fill=INK)
    return img


def draw_rotate():
    img, d = canvas()
    grid(d, [[1, 2, 3], [4, 5, 6], [7, 8, 9]], x0=20, y0=60, size=34)
    arrow(d, (140, 110), (200, 110))
    d.text((150, 90), "90° cw", fill=INK)
    grid(d, [[7, 4, 1], [8, 5, 2], [9, 6, 3]], x0=220, y0=60, size=34)
    return img


def draw_regions():
    img, d = canvas()
    cells = [[1, 1, 0, 0, 1], [1, 0, 0, 1, 1], [0, 0, 1, 0, 0], [1, 0, 1, 1, 0]]
    grid(d, cells, x0=20, y0=30, size=34, fills={1: (150, 190, 250)})
    d.text((210, 60), "4-connected groups of 1", fill=INK)
    d.text((210, 80), "here: 4 groups", fill=INK)
    return img


def draw_spiral():
    img, d = canvas()
    grid(d, [[1, 2, 3], [4, 5, 6], [7, 8, 9]], x0=40, y0=40, size=46)
    path = [(63, 63), (155, 63), (155, 155), (63, 155), (63, 109), (109, 109)]
    for a, b in itertools.pairwise(path):
        arrow(d, a, b, RED)
    d.text((210, 100), "1 2 3 6 9 8 7 4 5", fill=INK)
    return img


def draw_pascal():
    img, d = canvas()
    rows = [[1], [1, 1], [1, 2, 1], [1, 3, 3, 1], [1, 4, 6, 4, 1]]
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            d.ellipse(
                [160 - r * 22 + c * 44 - 14, 20 + r * 42 - 14, 160 - r * 22 + c * 44 + 14, 20 + r * 42 + 14],
                outline=INK,
            )
            d.text((156 - r * 22 + c * 44, 14 + r * 42), str(v), fill=INK)
        d.text((10, 14 + r * 42), f"row {r}", fill=GREY)
    return img


def draw_clock():
    img, d = canvas()
    cx, cy, rad = 120, 120, 90
    d.ellipse([cx - rad, cy - rad, cx + rad, cy + rad], outline=INK, width=3)
    for h in range(12):
        a = math.radians(h * 30 - 90)
        d.line(
            [(cx + 80 * math.cos(a), cy + 80 * math.sin(a)), (cx + 90 * math.cos(a), cy + 90 * math.sin(a))],
            fill=INK,
            width=2,
        )
    arrow(
        d,
        (cx, cy),
        (cx + 45 * math.cos(math.radians(3 * 30 + 15 - 90)), cy + 45 * math.sin(math.radians(105 - 90))),
        BLUE,
    )
    arrow(d, (cx, cy), (cx, cy + 75), RED)
    d.text((230, 100), "3:30 -> 75 degrees", fill=INK)
    return img


def draw_moves():
    img, d = canvas()
    for i in range(9):
        d.line([(20 + i * 30, 20), (20 + i * 30, 220)], fill=GREY)
        d.line([(20, 20 + i * 25), (260, 20 + i * 25)], fill=GREY)
    pts = [(140, 120), (140, 95), (170, 95), (170, 70), (140, 70)]
    for a, b in itertools.pairwise(pts):
        arrow(d, a, b, GREEN)
    d.text((270, 100), "U R U L", fill=INK)
    d.text((270, 120), "-> (0, 2)", fill=INK)
    return img


def draw_peaks():
    img, d = canvas()
    heights = [2, 5, 3, 7, 7, 4, 6, 1]
    for i, h in enumerate(heights):
        peak = 0 < i < len(heights) - 1 and heights[i - 1] < h > heights[i + 1]
        d.rectangle([20 + i * 40, 220 - h * 25, 50 + i * 40, 220], fill=RED if peak else BLUE, outline=INK)
    d.text((20, 10), "red: taller than both neighbours", fill=INK)
    return img


def draw_diagonals():
    img, d = canvas()
    cells = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    fills = {1: ORANGE, 5: ORANGE, 9: ORANGE, 3: ORANGE, 7: ORANGE}
    grid(d, cells, x0=40, y0=40, size=46, fills=fills)
    d.text((210, 100), "1+5+9+3+7 = 25", fill=INK)
    return img


def draw_nesting():
    img, d = canvas()
    d.text((20, 20), "( ( ) ( ( ) ) )", fill=INK)
    for depth, (x0, x1) in enumerate([(20, 340), (60, 140), (160, 320), (200, 280)]):
        level = {0: 0, 1: 1, 2: 1, 3: 2}[depth]
        d.rectangle([x0, 60 + level * 40, x1, 90 + level * 40], outline=(BLUE, GREEN, RED)[level], width=3)
    d.text((20, 200), "max depth = 3", fill=INK)
    return img


def draw_zigzag():
    img, d = canvas()
    text, rows = "PAYPALISHIRING", 3
    r, step = 0, 1
    for i, ch in enumerate(text):
        d.text((20 + i * 22, 40 + r * 50), ch, fill=INK)
        if rows > 1:
            if r == 0:
                step = 1
            elif r == rows - 1:
                step = -1
            r += step
    d.text((20, 200), "read rows: PAHNAPLSIIGYIR", fill=INK)
    return img


def draw_histogram_water():
    img, d = canvas()
    heights = [0, 1, 0, 2, 1, 0, 1, 3, 2, 1, 2, 1]
    water = [0, 0, 1, 0, 1, 2, 1, 0, 0, 1, 0, 0]
    for i, (h, w) in enumerate(zip(heights, water, strict=False)):
        d.rectangle([20 + i * 26, 220 - h * 40, 44 + i * 26, 220], fill=INK)
        if w:
            d.rectangle([20 + i * 26, 220 - (h + w) * 40, 44 + i * 26, 220 - h * 40], fill=(120, 180, 255))
    d.text((20, 10), "trapped water (blue) = 6", fill=INK)
    return img


def sig(name_args: str, ret: str, doc: str) -> str:
    return f'def solution({name_args}) -> {ret}:\n    """\n    {doc}\n    """\n'


def tests(cases: list[tuple[str, str]]) -> str:
    lines = ["def check(candidate):"]
    for call, expected in cases:
        message = repr(f"solution({call}) should be {expected}")
        lines.append(f"    assert candidate({call}) == {expected}, {message}")
    return "\n".join(lines) + "\n\ncheck(solution)\n"


TASKS = [
    dict(
        qid="hv01",
        draw=draw_staircase,
        task_type="counting",
        signature=sig("n: int", "int", "Count the blocks in the staircase of height n shown in the figure."),
        solution="def solution(n: int) -> int:\n    return n * (n + 1) // 2\n",
        cases=[("1", "1"), ("4", "10"), ("10", "55"), ("0", "0")],
    ),
    dict(
        qid="hv02",
        draw=draw_rotate,
        task_type="transformation",
        signature=sig("grid: list", "list", "Return the grid transformed as the figure shows."),
        solution="def solution(grid: list) -> list:\n    return [list(row) for row in zip(*grid[::-1])]\n",
        cases=[
            ("[[1,2,3],[4,5,6],[7,8,9]]", "[[7,4,1],[8,5,2],[9,6,3]]"),
            ("[[1,2],[3,4]]", "[[3,1],[4,2]]"),
            ("[[5]]", "[[5]]"),
        ],
    ),
    dict(
        qid="hv03",
        draw=draw_regions,
        task_type="topology",
        signature=sig("grid: list", "int", "Count the groups of 1-cells as the figure illustrates."),
        solution=(
            "def solution(grid: list) -> int:\n"
            "    seen = set()\n"
            "    count = 0\n"
            "    for r in range(len(grid)):\n"
            "        for c in range(len(grid[0])):\n"
            "            if grid[r][c] == 1 and (r, c) not in seen:\n"
            "                count += 1\n"
            "                stack = [(r, c)]\n"
            "                while stack:\n"
            "                    y, x = stack.pop()\n"
            "                    if (y, x) in seen or not (0 <= y < len(grid) and 0 <= x < len(grid[0])):\n"
            "                        continue\n"
            "                    if grid[y][x] != 1:\n"
            "                        continue\n"
            "                    seen.add((y, x))\n"
            "                    stack += [(y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)]\n"
            "    return count\n"
        ),
        cases=[
            ("[[1,1,0,0,1],[1,0,0,1,1],[0,0,1,0,0],[1,0,1,1,0]]", "4"),
            ("[[0,0],[0,0]]", "0"),
            ("[[1,0,1],[0,1,0],[1,0,1]]", "5"),
        ],
    ),
    dict(
        qid="hv04",
        draw=draw_spiral,
        task_type="traversal",
        signature=sig(
            "matrix: list", "list", "Return the elements in the order of the arrows in the figure."
        ),
        solution=(
            "def solution(matrix: list) -> list:\n"
            "    out = []\n"
            "    m = [list(r) for r in matrix]\n"
            "    while m:\n"
            "        out += m.pop(0)\n"
            "        m = [list(r) for r in zip(*m)][::-1]\n"
            "    return out\n"
        ),
        cases=[
            ("[[1,2,3],[4,5,6],[7,8,9]]", "[1,2,3,6,9,8,7,4,5]"),
            ("[[1,2],[3,4]]", "[1,2,4,3]"),
            ("[[1,2,3,4]]", "[1,2,3,4]"),
        ],
    ),
    dict(
        qid="hv05",
        draw=draw_pascal,
        task_type="pattern",
        signature=sig("n: int", "list", "Return row n of the triangle in the figure."),
        solution=(
            "def solution(n: int) -> list:\n"
            "    row = [1]\n"
            "    for _ in range(n):\n"
            "        row = [a + b for a, b in zip([0] + row, row + [0])]\n"
            "    return row\n"
        ),
        cases=[("0", "[1]"), ("4", "[1,4,6,4,1]"), ("6", "[1,6,15,20,15,6,1]")],
    ),
    dict(
        qid="hv06",
        draw=draw_clock,
        task_type="geometry",
        signature=sig(
            "hour: int, minute: int", "float", "Return the smaller angle between the hands, as in the figure."
        ),
        solution=(
            "def solution(hour: int, minute: int) -> float:\n"
            "    angle = abs(30 * (hour % 12) + 0.5 * minute - 6 * minute)\n"
            "    return min(angle, 360 - angle)\n"
        ),
        cases=[("3, 30", "75.0"), ("12, 0", "0.0"), ("9, 0", "90.0"), ("6, 0", "180.0")],
    ),
    dict(
        qid="hv07",
        draw=draw_moves,
        task_type="simulation",
        signature=sig(
            "moves: str", "tuple", "Return the final (x, y) after the moves shown, starting at (0, 0)."
        ),
        solution=(
            "def solution(moves: str) -> tuple:\n"
            "    x = y = 0\n"
            "    for m in moves:\n"
            "        dx, dy = {'U': (0, 1), 'D': (0, -1), 'L': (-1, 0), 'R': (1, 0)}[m]\n"
            "        x, y = x + dx, y + dy\n"
            "    return (x, y)\n"
        ),
        cases=[("'URUL'", "(0, 2)"), ("''", "(0, 0)"), ("'DDLL'", "(-2, -2)")],
    ),
    dict(
        qid="hv08",
        draw=draw_peaks,
        task_type="comparison",
        signature=sig("heights: list", "list", "Return the indices of the bars coloured red in the figure."),
        solution=(
            "def solution(heights: list) -> list:\n"
            "    return [i for i in range(1, len(heights) - 1)\n"
            "            if heights[i - 1] < heights[i] > heights[i + 1]]\n"
        ),
        cases=[("[2,5,3,7,7,4,6,1]", "[1,6]"), ("[1,2,3]", "[]"), ("[1,3,1,3,1]", "[1,3]")],
    ),
    dict(
        qid="hv09",
        draw=draw_diagonals,
        task_type="aggregation",
        signature=sig("matrix: list", "int", "Sum the highlighted cells, as in the figure."),
        solution=(
            "def solution(matrix: list) -> int:\n"
            "    n = len(matrix)\n"
            "    total = sum(matrix[i][i] + matrix[i][n - 1 - i] for i in range(n))\n"
            "    return total - (matrix[n // 2][n // 2] if n % 2 else 0)\n"
        ),
        cases=[("[[1,2,3],[4,5,6],[7,8,9]]", "25"), ("[[1,2],[3,4]]", "10"), ("[[7]]", "7")],
    ),
    dict(
        qid="hv10",
        draw=draw_nesting,
        task_type="structure",
        signature=sig("s: str", "int", "Return the depth the figure measures for a string of brackets."),
        solution=(
            "def solution(s: str) -> int:\n"
            "    depth = best = 0\n"
            "    for ch in s:\n"
            "        depth += 1 if ch == '(' else -1 if ch == ')' else 0\n"
            "        best = max(best, depth)\n"
            "    return best\n"
        ),
        cases=[("'(()(()))'", "3"), ("''", "0"), ("'()()'", "1")],
    ),
    dict(
        qid="hv11",
        draw=draw_zigzag,
        task_type="transformation",
        signature=sig(
            "text: str, rows: int", "str", "Write the text as the figure shows and read it row by row."
        ),
        solution=(
            "def solution(text: str, rows: int) -> str:\n"
            "    if rows == 1:\n"
            "        return text\n"
            "    lines = [''] * rows\n"
            "    r, step = 0, 1\n"
            "    for ch in text:\n"
            "        lines[r] += ch\n"
            "        if r == 0:\n"
            "            step = 1\n"
            "        elif r == rows - 1:\n"
            "            step = -1\n"
            "        r += step\n"
            "    return ''.join(lines)\n"
        ),
        cases=[("'PAYPALISHIRING', 3", "'PAHNAPLSIIGYIR'"), ("'AB', 1", "'AB'"), ("'ABCD', 2", "'ACBD'")],
    ),
    dict(
        qid="hv12",
        draw=draw_histogram_water,
        task_type="simulation",
        signature=sig(
            "heights: list", "int", "Return the amount of blue in the figure for the given bar heights."
        ),
        solution=(
            "def solution(heights: list) -> int:\n"
            "    total = 0\n"
            "    for i, h in enumerate(heights):\n"
            "        left = max(heights[: i + 1])\n"
            "        right = max(heights[i:])\n"
            "        total += min(left, right) - h\n"
            "    return total\n"
        ),
        cases=[("[0,1,0,2,1,0,1,3,2,1,2,1]", "6"), ("[3,0,3]", "3"), ("[]", "0"), ("[1,2,3]", "0")],
    ),
]

# What a model might answer, by kind. `{sig}` is the task's signature line, `{body}` the reference body.
HOSTILE = {
    "fork_bomb": "import os\ndef solution(*args):\n    while True:\n        os.fork()\n",
    "write_outside": (
        "def solution(*args):\n"
        "    with open('/tmp/proctor-escaped-the-sandbox', 'w') as f:\n"
        "        f.write('pwned')\n"
        "    return None\n"
    ),
    "phone_home": (
        "import socket\n"
        "def solution(*args):\n"
        "    s = socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
        "    s.sendall(b'secret')\n"
        "    return None\n"
    ),
    "memory_bomb": "def solution(*args):\n    blob = bytearray(10 * 1024 ** 3)\n    return len(blob)\n",
    "fake_exit": "import os\ndef solution(*args):\n    os._exit(0)\n",
}


def fence(code: str, prose: str = "Here is my solution.") -> str:
    return f"{prose}\n\n```python\n{code}```\n"


def answers_for(task: dict, i: int) -> list[str]:
    """Six predictions per task, chosen so the pass@k table is interesting and every failure kind appears."""
    good = task["solution"]
    name = task["signature"].split("\n")[0]
    wrong = f"{name}\n    return None\n"
    loop = f"{name}\n    while True:\n        pass\n"
    crash = f"{name}\n    return [][1]\n"
    unfenced = "I think the answer is to rotate or count things, but I will not write code today."
    syntax = fence(f"{name}\n    return (\n")  # pylint: syntax error -> fails the gate
    body_only = "```python\n" + "\n".join(good.split("\n")[1:]) + "```"  # body without signature
    hostile = list(HOSTILE.values())[i % len(HOSTILE)]
    plans = [
        [fence(good), fence(good), fence(good), fence(good), fence(good), fence(good)],
        [fence(good), body_only, fence(wrong), fence(good), fence(good), fence(crash)],
        [fence(wrong), fence(good), fence(loop), unfenced, fence(good), fence(hostile)],
        [fence(wrong), syntax, fence(crash), fence(loop), unfenced, fence(hostile)],
    ]
    return plans[i % len(plans)]


def png_b64(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode()


def configmap(name: str, data: dict[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "proctor-examples"}},
        "data": data,
    }


def artifact(name: str, type_: str, cm: str, key: str, description: str) -> dict:
    return {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "Artifact",
        "metadata": {"name": name},
        "spec": {
            "type": type_,
            "format": "humanevalv",
            "description": description,
            "source": {"configMap": {"name": cm, "key": key}},
        },
    }


def main() -> None:
    data = HERE / "data"
    (data / "diagrams").mkdir(parents=True, exist_ok=True)
    tasks, n1, n6 = [], [], []
    for i, t in enumerate(TASKS):
        img = t["draw"]()
        img.save(data / "diagrams" / f"{t['qid']}.png")
        tasks.append(
            {
                "qid": t["qid"],
                "diagram": png_b64(img),
                "function_signature": t["signature"],
                "test_script": tests(t["cases"]),
                "ground_truth_solution": t["solution"],
                "task_type": t["task_type"],
                "capability_aspects": {"Spatial Transformations": [t["task_type"]]},
            }
        )
        preds = answers_for(t, i)
        n6.append({"qid": t["qid"], "predictions": preds})
        n1.append({"qid": t["qid"], "predictions": [preds[1]]})
    tasks_text = "".join(json.dumps(t, sort_keys=True) + "\n" for t in tasks)
    (data / "tasks.jsonl").write_text(tasks_text)
    (data / "predictions_n6.json").write_text(json.dumps(n6, indent=1) + "\n")
    (data / "predictions_n1.json").write_text(json.dumps(n1, indent=1) + "\n")
    docs = [
        configmap("humanevalv-example-tasks", {"tasks.jsonl": tasks_text}),
        configmap(
            "humanevalv-example-predictions",
            {"n6.json": json.dumps(n6, indent=1) + "\n", "n1.json": json.dumps(n1, indent=1) + "\n"},
        ),
        artifact(
            "humanevalv-example-tasks",
            "benchmark",
            "humanevalv-example-tasks",
            "tasks.jsonl",
            "12 HumanEval-V-format tasks written by the Proctor authors",
        ),
        artifact(
            "humanevalv-example-answers-n6",
            "answers",
            "humanevalv-example-predictions",
            "n6.json",
            "6 samples per task: correct, wrong, unparseable, timeout, crash and hostile answers",
        ),
        artifact(
            "humanevalv-example-answers-n1",
            "answers",
            "humanevalv-example-predictions",
            "n1.json",
            "1 sample per task",
        ),
    ]
    header = "# Generated by make_example.py; do not edit by hand.\n"
    (HERE / "inputs.yaml").write_text(header + yaml.safe_dump_all(docs, sort_keys=False, width=120))


if __name__ == "__main__":
    main()
