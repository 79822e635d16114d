"""Generate the Vision2Code example: manifest rows, reference images drawn here, answers, manifests.

    python examples/vision2code/make_example.py          # rewrites data/ and inputs.yaml

One task is the real Vision2Code test-mini sample ChartQA_test_000509_2ac3907c97d2: its manifest row
and the model answer (gpt-5.4-mini's `generated_code.py`) are copied unchanged in `data/real/`
(Apache-2.0, see ATTRIBUTION.md). Its reference image — a ChartQA chart, GPL-3.0, not included in
the released data — is replaced by a stand-in of the same size drawn below.

The other tasks are written by the Proctor authors in the benchmark's manifest format, one per
source dataset, with reference images drawn by this script and answers that cover what a renderer
meets: good recreations, every failure class of the paper's taxonomy (syntax/truncation, missing
dependency, shape error, hallucinated argument, timeout, no output image), a blank figure, LaTeX and
Excalidraw tasks (good and broken), and a hostile program that reaches for the network and the
filesystem.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import yaml
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
CONFIGMAP_LIMIT = 1_000_000


def fig_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return optimise(buffer.getvalue())


def optimise(png: bytes) -> bytes:
    """Palette PNGs: the references are flat charts, and ConfigMaps are small."""
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=128)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


# --------------------------------------------------------------------------------------------------
# reference images


def ref_chartqa_standin() -> bytes:
    """420x756, a two-sided bar chart in the style of the real sample's Pew chart."""
    groups = [
        ("Total", 61, 32),
        ("White", 57, 36),
        ("Black", 74, 17),
        ("Hispanic", 66, 25),
        ("18-29", 80, 17),
        ("30-49", 63, 30),
        ("50-64", 50, 40),
        ("65+", 50, 41),
        ("Postgrad", 69, 28),
        ("College grad", 65, 28),
        ("Some coll", 59, 33),
        ("HS or less", 58, 34),
        ("Republican", 44, 49),
        ("Independent", 62, 31),
        ("Democrat", 76, 20),
    ]
    fig = plt.figure(figsize=(4.2, 7.56))
    ax = fig.add_axes([0.32, 0.08, 0.64, 0.72])
    ys = range(len(groups))[::-1]
    ax.barh(ys, [-g[1] for g in groups], color="#b08a1f")
    ax.barh(ys, [g[2] for g in groups], color="#d9a61a")
    for y, (_label, left, right) in zip(ys, groups, strict=True):
        ax.text(-left + 2, y, str(left), va="center", color="white", fontsize=8)
        ax.text(right - 2, y, str(right), va="center", ha="right", fontsize=8)
    ax.set_yticks(list(ys), [g[0] for g in groups], fontsize=8)
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    fig.text(
        0.03,
        0.95,
        "Young people, minorities, less likely to say\nMuslims should receive greater scrutiny",
        fontsize=10,
        weight="bold",
        va="top",
    )
    fig.text(
        0.03,
        0.87,
        "Should Muslims living in the U.S. be subject\nto more scrutiny than other groups? (%)",
        fontsize=8,
        color="#1f4e79",
        style="italic",
        va="top",
    )
    fig.text(0.03, 0.02, "PEW RESEARCH CENTER", fontsize=7, weight="bold")
    return fig_png(fig)


def ref_bar() -> bytes:
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    quarters = ["Q1", "Q2", "Q3", "Q4"]
    xs = range(len(quarters))
    ax.bar([x - 0.2 for x in xs], [12, 15, 14, 19], width=0.4, label="2023", color="#4c72b0")
    ax.bar([x + 0.2 for x in xs], [14, 17, 18, 23], width=0.4, label="2024", color="#dd8452")
    ax.set_xticks(list(xs), quarters)
    ax.set_ylabel("Revenue (M$)")
    ax.set_title("Quarterly revenue")
    ax.legend()
    return fig_png(fig)


def ref_line() -> bytes:
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    xs = list(range(0, 11))
    ax.plot(xs, [x * x / 10 for x in xs], color="#2ca02c", marker="o", label="Dark Green")
    ax.plot(xs, [10 - x for x in xs], color="#9467bd", linestyle="--", label="Medium Purple")
    ax.legend()
    ax.set_title("Which line is higher at x = 8?")
    return fig_png(fig)


def ref_pie() -> bytes:
    fig, ax = plt.subplots(figsize=(4.8, 4.8))
    ax.pie(
        [35, 25, 20, 20],
        labels=["rent", "food", "travel", "savings"],
        autopct="%d%%",
        colors=["#e15759", "#4e79a7", "#f28e2b", "#76b7b2"],
    )
    ax.set_title("Monthly budget")
    return fig_png(fig)


def ref_triangle() -> bytes:
    fig, ax = plt.subplots(figsize=(4.8, 4.0))
    pts = [(0, 0), (6, 0), (2, 4)]
    ax.add_patch(plt.Polygon(pts, fill=False, linewidth=2))
    for (x, y), name in zip(pts, "ABC", strict=True):
        ax.text(x, y - 0.35 if y == 0 else y + 0.15, name, ha="center", fontsize=14)
    ax.plot([2, 2], [0, 4], "k--")
    ax.text(2.1, 1.8, "h = 4", fontsize=12)
    ax.text(3, -0.6, "6", fontsize=12)
    ax.set_xlim(-1, 7)
    ax.set_ylim(-1, 5)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig_png(fig)


def ref_scatter() -> bytes:
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    ax.scatter([1, 2, 3, 4, 5, 6], [2.1, 3.9, 6.2, 7.8, 10.1, 12.2], s=80, color="#1f77b4")
    ax.set_xlabel("distance to camera (m)")
    ax.set_ylabel("apparent size (px)")
    ax.grid(True, alpha=0.3)
    return fig_png(fig)


def ref_projectile() -> bytes:
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ts = [t / 20 for t in range(0, 41)]
    ax.plot([10 * t for t in ts], [10 * t - 4.9 * t * t + 0.5 for t in ts], color="#d62728")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title("Projectile, v0 = 14.1 m/s at 45°")
    ax.set_ylim(0, 6)
    return fig_png(fig)


def ref_function() -> bytes:
    fig, ax = plt.subplots(figsize=(5.0, 5.0))
    xs = [x / 50 for x in range(-150, 151)]
    ax.plot(xs, [x**3 - 3 * x for x in xs])
    ax.axhline(0, color="k", linewidth=0.8)
    ax.axvline(0, color="k", linewidth=0.8)
    ax.set_title("f(x) = x³ − 3x")
    return fig_png(fig)


def ref_graph() -> bytes:
    fig, ax = plt.subplots(figsize=(5.0, 5.0))
    nodes = {"A": (0, 1), "B": (1, 2), "C": (2, 1), "D": (1, 0)}
    for a, b in [("A", "B"), ("B", "C"), ("C", "D"), ("D", "A"), ("A", "C")]:
        ax.plot(*zip(nodes[a], nodes[b], strict=True), color="#555")
    for name, (x, y) in nodes.items():
        ax.add_patch(plt.Circle((x, y), 0.18, color="#4e79a7"))
        ax.text(x, y, name, ha="center", va="center", color="white", fontsize=14)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig_png(fig)


def ref_molecule() -> bytes:
    fig, ax = plt.subplots(figsize=(4.8, 4.8))
    import math

    ring = [
        (math.cos(math.pi / 3 * k + math.pi / 6), math.sin(math.pi / 3 * k + math.pi / 6)) for k in range(7)
    ]
    ax.plot(*zip(*ring, strict=True), color="black", linewidth=2)
    ax.text(0, 0, "benzene", ha="center")
    ax.set_aspect("equal")
    ax.axis("off")
    return fig_png(fig)


def ref_document() -> bytes:
    """A DocVQA-like page: a title and a small table (drawn with PIL)."""
    image = Image.new("RGB", (612, 400), "white")
    d = ImageDraw.Draw(image)
    d.text((40, 30), "ANNUAL MEETING - ATTENDANCE", fill="black")
    rows = [
        ("Region", "Members", "Present"),
        ("North", "42", "39"),
        ("South", "35", "30"),
        ("West", "28", "28"),
    ]
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            x, y = 40 + c * 170, 80 + r * 40
            d.rectangle([x, y, x + 170, y + 40], outline="black")
            d.text((x + 10, y + 14), cell, fill="black")
    d.text((40, 280), "Minutes approved unanimously.", fill="black")
    return optimise(_png(image))


def ref_flowchart() -> bytes:
    image = Image.new("RGB", (640, 360), "white")
    d = ImageDraw.Draw(image)
    boxes = [(40, 140, "Start"), (250, 140, "Process"), (460, 140, "End")]
    for x, y, label in boxes:
        d.rounded_rectangle([x, y, x + 140, y + 70], radius=12, outline="#1e1e1e", width=3)
        d.text((x + 45, y + 28), label, fill="#1e1e1e")
    for x in (180, 390):
        d.line([x, 175, x + 70, 175], fill="#1e1e1e", width=3)
        d.polygon([(x + 70, 168), (x + 70, 182), (x + 80, 175)], fill="#1e1e1e")
    return optimise(_png(image))


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


# --------------------------------------------------------------------------------------------------
# answers (raw model replies)


def fenced(prose: str, code: str, lang: str = "python") -> str:
    return f"{prose}\n\n```{lang}\n{code.strip()}\n```\n"


GOOD_BAR = """import matplotlib.pyplot as plt
import numpy as np

quarters = ["Q1", "Q2", "Q3", "Q4"]
x = np.arange(len(quarters))
fig, ax = plt.subplots(figsize=(6.4, 4.8))
ax.bar(x - 0.2, [12, 15, 14, 19], width=0.4, label="2023", color="#4c72b0")
ax.bar(x + 0.2, [14, 17, 18, 22], width=0.4, label="2024", color="#dd8452")
ax.set_xticks(x, quarters)
ax.set_ylabel("Revenue (M$)")
ax.set_title("Quarterly revenue")
ax.legend()
plt.savefig("chart.png", bbox_inches="tight")
"""

HALLUCINATED_LINE = """import matplotlib.pyplot as plt
xs = list(range(11))
plt.figure(figsize=(6.4, 4.8))
plt.plot(xs, [x * x / 10 for x in xs], color="darkgreen", marker="o", linewidht=2, label="Dark Green")
plt.plot(xs, [10 - x for x in xs], color="mediumpurple", linestyle="--", label="Medium Purple")
plt.legend()
plt.savefig("out.png")
"""

TRUNCATED_PIE = """import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4.8, 4.8))
ax.pie([35, 25, 20, 20], labels=["rent", "food", "travel", "savings"], autopct="%d%%",
       colors=["#e15759", "#4e79a7", "#f28e2b\""""  # the reply was cut off mid-string

GOOD_TRIANGLE = """import matplotlib.pyplot as plt
from matplotlib.patches import Polygon

fig, ax = plt.subplots(figsize=(4.8, 4.0))
A, B, C = (0, 0), (6, 0), (2, 4)
ax.add_patch(Polygon([A, B, C], closed=True, fill=False, linewidth=2))
for (x, y), name in [(A, "A"), (B, "B"), (C, "C")]:
    ax.text(x, y - 0.35 if y == 0 else y + 0.15, name, ha="center", fontsize=14)
ax.plot([2, 2], [0, 4], "k--")
ax.text(2.1, 1.8, "h = 4", fontsize=12)
ax.text(3, -0.6, "6", fontsize=12)
ax.set_xlim(-1, 7); ax.set_ylim(-1, 5); ax.set_aspect("equal"); ax.axis("off")
fig.savefig(OUTPUT_PATH)
"""

SHAPE_SCATTER = """import numpy as np
import matplotlib.pyplot as plt
d = np.arange(1, 7)
size = np.array([2.1, 3.9, 6.2, 7.8, 10.1])   # one measurement short
plt.scatter(d, size, s=80)
plt.xlabel("distance to camera (m)"); plt.ylabel("apparent size (px)")
plt.savefig("scatter.png")
"""

MISSING_PROJECTILE = """import matplotlib.pyplot as plt
import numpy as np
import scienceplots  # noqa: F401 - a style package that is not installed
plt.style.use(["science"])
t = np.linspace(0, 2, 41)
plt.plot(10 * t, 10 * t - 4.9 * t ** 2 + 0.5, color="#d62728")
plt.savefig("projectile.png")
"""

TIMEOUT_FUNCTION = """import matplotlib.pyplot as plt
import numpy as np
# refine the curve "until it is smooth enough"
n = 10
while True:
    x = np.linspace(-3, 3, n)
    y = x ** 3 - 3 * x
    n += 1
plt.plot(x, y)
plt.savefig("f.png")
"""

NO_SAVE_GRAPH = """import matplotlib.pyplot as plt
nodes = {"A": (0, 1), "B": (1, 2), "C": (2, 1), "D": (1, 0)}
fig, ax = plt.subplots(figsize=(5, 5))
for a, b in [("A", "B"), ("B", "C"), ("C", "D"), ("D", "A"), ("A", "C")]:
    ax.plot(*zip(nodes[a], nodes[b]), color="#555")
for name, (x, y) in nodes.items():
    ax.add_patch(plt.Circle((x, y), 0.18, color="#4e79a7"))
    ax.text(x, y, name, ha="center", va="center", color="white", fontsize=14)
ax.set_aspect("equal"); ax.axis("off")
plt.show()
"""

BLANK_MOLECULE = """import matplotlib.pyplot as plt
fig = plt.figure(figsize=(4.8, 4.8))
ax = fig.add_subplot(111)
ax.axis("off")   # the drawing code was never written
plt.savefig("benzene.png")
"""

HOSTILE = """import os, socket
import matplotlib.pyplot as plt
# try to leave a mark outside the working directory and to phone home
for path in ("/etc/proctor-was-here", os.path.expanduser("~/../proctor-was-here"), "/tmp/proctor-was-here"):
    try:
        open(path, "w").write("x")
    except OSError as exc:
        print("write refused:", path, exc)
try:
    print(open("/etc/shadow").read()[:20])
except OSError as exc:
    print("read refused:", exc)
socket.create_connection(("169.254.169.254", 80)).sendall(b"GET /latest/meta-data/")
plt.plot([1, 2, 3])
plt.savefig("x.png")
"""

LATEX_GOOD = r"""\documentclass{article}
\usepackage[paperwidth=6.4in,paperheight=4.2in,margin=0.4in]{geometry}
\pagestyle{empty}
\begin{document}
\section*{ANNUAL MEETING -- ATTENDANCE}
\begin{tabular}{|l|r|r|}
\hline
Region & Members & Present \\ \hline
North & 42 & 39 \\ \hline
South & 35 & 30 \\ \hline
West & 28 & 28 \\ \hline
\end{tabular}

\vspace{2em}
Minutes approved unanimously.
\end{document}
"""

LATEX_BAD = r"""\documentclass{article}
\begin{document}
\maketable{Region & Members & Present}
\end{document}
"""


def excalidraw_scene(bad: bool = False) -> str:
    elements = []
    for i, (x, label) in enumerate([(40, "Start"), (250, "Process"), (460, "End")]):
        elements.append(
            {
                "id": f"box{i}",
                "type": "hexagon" if bad and i == 1 else "rectangle",
                "x": x,
                "y": 140,
                "width": 140,
                "height": 70,
                "strokeColor": "#1e1e1e",
                "backgroundColor": "transparent",
                "strokeWidth": 2,
                "roundness": {"type": 3},
                "seed": 11 + i,
                "version": 1,
            }
        )
        elements.append(
            {
                "id": f"label{i}",
                "type": "text",
                "x": x + 40,
                "y": 162,
                "width": 70,
                "height": 25,
                "text": label,
                "fontSize": 20,
                "fontFamily": 1,
                "strokeColor": "#1e1e1e",
                "seed": 21 + i,
                "version": 1,
            }
        )
    for i, x in enumerate((180, 390)):
        elements.append(
            {
                "id": f"arrow{i}",
                "type": "arrow",
                "x": x,
                "y": 175,
                "width": 70,
                "height": 0,
                "points": [[0, 0], [70, 0]],
                "strokeColor": "#1e1e1e",
                "endArrowhead": "arrow",
                "seed": 31 + i,
                "version": 1,
            }
        )
    scene = {
        "type": "excalidraw",
        "version": 2,
        "source": "https://excalidraw.com",
        "elements": elements,
        "appState": {"viewBackgroundColor": "#ffffff"},
        "files": {},
    }
    return json.dumps(scene, indent=1)


def row(folder: str, dataset: str, category: str, question: str, image: str, **extra) -> dict:
    return {
        "split": "test_mini",
        "benchmark_split": "test-mini",
        "question_folder": folder,
        "image_path": image,
        "question": question,
        "category": category,
        "source_dataset": dataset,
        "source_subset": "proctor-example",
        "source_record_id": folder,
        **extra,
    }


def tasks_and_answers() -> tuple[list[dict], list[dict], dict[str, bytes]]:
    real_meta = json.loads((DATA / "real" / "metadata.json").read_text())
    real_code = (DATA / "real" / "generated_code.py").read_text()
    images: dict[str, bytes] = {}
    tasks: list[dict] = []
    answers: list[dict] = []

    def add(task: dict, png: bytes, answer: str) -> None:
        images[task["image_path"]] = png
        tasks.append(task)
        answers.append({"question_folder": task["question_folder"], "answer": answer})

    real_task = {
        k: real_meta[k]
        for k in (
            "split",
            "benchmark_split",
            "question_folder",
            "image_path",
            "question",
            "category",
            "source_dataset",
            "source_subset",
            "source_id",
            "source_record_id",
            "source_original_split",
        )
    }
    real_task["image_path"] = f"images/{real_meta['question_folder']}.png"
    real_task["reference_note"] = (
        "stand-in reference drawn by make_example.py (the ChartQA image is not included)"
    )
    add(real_task, ref_chartqa_standin(), real_code)
    add(
        row(
            "matplotlib_bar_0001",
            "matplotlib",
            "Charts&Plots",
            "Which quarter had the highest 2024 revenue?",
            "images/matplotlib_bar_0001.png",
        ),
        ref_bar(),
        fenced("Here is matplotlib code that recreates the grouped bar chart:", GOOD_BAR),
    )
    add(
        row(
            "figureqa_line_0001",
            "figureqa",
            "Charts&Plots",
            "Is Dark Green higher than Medium Purple at x = 8?",
            "images/figureqa_line_0001.png",
        ),
        ref_line(),
        fenced("Recreation:", HALLUCINATED_LINE),
    )
    add(
        row(
            "dvqa_pie_0001",
            "dvqa",
            "Charts&Plots",
            "What share of the budget is rent?",
            "images/dvqa_pie_0001.png",
        ),
        ref_pie(),
        "```python\n" + TRUNCATED_PIE,
    )
    add(
        row(
            "geometry3k_0001",
            "geometry3k",
            "Geometry",
            "Find the area of triangle ABC.",
            "images/geometry3k_0001.png",
        ),
        ref_triangle(),
        "<think>A triangle with base 6 and height 4; label vertices.</think>\n"
        + fenced("Code:", GOOD_TRIANGLE),
    )
    add(
        row(
            "spatialvlm_0001",
            "spatialvlm_qa",
            "Spatial",
            "How does apparent size change with distance?",
            "images/spatialvlm_0001.png",
        ),
        ref_scatter(),
        fenced("", SHAPE_SCATTER),
    )
    add(
        row(
            "physics_0001",
            "Physics",
            "Science",
            "What is the maximum height of the projectile?",
            "images/physics_0001.png",
        ),
        ref_projectile(),
        fenced("Using the SciencePlots style:", MISSING_PROJECTILE),
    )
    add(
        row(
            "olympiad_0001",
            "OlympiadBench",
            "Math",
            "How many real roots does f have?",
            "images/olympiad_0001.png",
        ),
        ref_function(),
        fenced("", TIMEOUT_FUNCTION),
    )
    add(
        row(
            "graph_algorithms_0001",
            "Graph-Algorithms",
            "Graphs",
            "Is the graph bipartite?",
            "images/graph_algorithms_0001.png",
        ),
        ref_graph(),
        fenced("Draw the graph:", NO_SAVE_GRAPH),
    )
    add(
        row("chemvqa_0001", "ChemVQA-2K", "Science", "Name the molecule.", "images/chemvqa_0001.png"),
        ref_molecule(),
        fenced("", BLANK_MOLECULE),
    )
    add(
        row(
            "geoqa_hostile_0001", "GEOQA_8K_R1V", "Geometry", "Find angle x.", "images/geoqa_hostile_0001.png"
        ),
        ref_triangle(),
        fenced("", HOSTILE),
    )
    add(
        row(
            "docvqa_latex_0001",
            "DocVQA",
            "Documents",
            "How many members were present in the South region?",
            "images/docvqa_latex_0001.png",
            task="latex_docvqa",
        ),
        ref_document(),
        fenced("A standalone LaTeX document reproducing the page:", LATEX_GOOD, "latex"),
    )
    add(
        row(
            "docvqa_latex_0002",
            "DocVQA",
            "Documents",
            "How many members were present in the West region?",
            "images/docvqa_latex_0002.png",
            task="latex_docvqa",
        ),
        ref_document(),
        fenced("", LATEX_BAD, "latex"),
    )
    add(
        row(
            "graphvqa_excalidraw_0001",
            "GraphVQA-Swift",
            "Graphs",
            "What comes after Process?",
            "images/graphvqa_excalidraw_0001.png",
            renderer="excalidraw",
        ),
        ref_flowchart(),
        fenced("Excalidraw scene:", excalidraw_scene(), "json"),
    )
    add(
        row(
            "graphvqa_excalidraw_0002",
            "GraphVQA-Swift",
            "Graphs",
            "What comes before End?",
            "images/graphvqa_excalidraw_0002.png",
            renderer="excalidraw",
        ),
        ref_flowchart(),
        fenced("", excalidraw_scene(bad=True), "json"),
    )
    return tasks, answers, images


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)


def configmap(name: str, key: str, text: str) -> dict:
    if len(text.encode()) > CONFIGMAP_LIMIT:
        raise SystemExit(f"ConfigMap {name} would exceed {CONFIGMAP_LIMIT} bytes")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "proctor-examples"}},
        "data": {key: text},
    }


def artifact(name: str, type_: str, key: str, description: str) -> dict:
    return {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "Artifact",
        "metadata": {"name": name},
        "spec": {
            "type": type_,
            "format": "vision2code",
            "description": description,
            "source": {"configMap": {"name": name, "key": key}},
        },
    }


def main() -> None:
    tasks, answers, images = tasks_and_answers()
    (DATA / "images").mkdir(parents=True, exist_ok=True)
    for path, png in images.items():
        (DATA / path).write_bytes(png)
    (DATA / "tasks.jsonl").write_text(jsonl(tasks))
    (DATA / "answers.jsonl").write_text(jsonl(answers))
    # In the cluster there is no directory to read image files from: the ConfigMap carries them inline.
    inline = [
        {
            **{k: v for k, v in t.items() if k != "image_path"},
            "reference_image": base64.b64encode(images[t["image_path"]]).decode(),
        }
        for t in tasks
    ]
    docs = [
        configmap("vision2code-example-tasks", "tasks.jsonl", jsonl(inline)),
        configmap("vision2code-example-answers", "answers.jsonl", jsonl(answers)),
        artifact(
            "vision2code-example-tasks",
            "benchmark",
            "tasks.jsonl",
            f"{len(tasks)} Vision2Code-format tasks (one real, the rest written by the Proctor authors)",
        ),
        artifact(
            "vision2code-example-answers",
            "answers",
            "answers.jsonl",
            "one real gpt-5.4-mini answer and answers covering every render outcome",
        ),
    ]
    header = (
        "# Generated by make_example.py; do not edit by hand.\n"
        "# Apply with: kubectl apply -f examples/vision2code/\n"
    )
    (HERE / "inputs.yaml").write_text(
        header + yaml.safe_dump_all(docs, sort_keys=False, width=120, allow_unicode=True)
    )
    print(
        f"{len(tasks)} tasks, {len(answers)} answers, {sum(map(len, images.values())) // 1024} KiB of images"
    )


if __name__ == "__main__":
    main()
