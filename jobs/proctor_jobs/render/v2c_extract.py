r"""Vision2Code: the program in a model's answer, per renderer.

Python follows the harness's `normalize_generated_code` rule exactly: drop `<think>…</think>`
spans (and everything before a dangling `</think>`), then take the last fenced block — the fence
regex is ```` ```(?:python)?\s*(.*?)``` ```` case-insensitively, so any fence counts and an
unlabelled one too — else the whole text. LaTeX and Excalidraw (the paper's tool-use ablations)
take the last ```` ```latex ````/```` ```tex ```` resp. ```` ```json ```` block, else the whole
text (for Excalidraw, the outermost JSON object in it).
"""

from __future__ import annotations

import re

RENDERERS = ("matplotlib", "latex", "excalidraw")


def strip_thinking(text: str) -> str:
    text = (text or "").strip()
    text = re.sub(r"<think>.*?</think>\s*", "", text, flags=re.DOTALL)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[-1].lstrip()
    return text.replace("<think>", "").replace("</think>", "")


def python_code(answer: str) -> str:
    text = strip_thinking(answer)
    blocks = re.findall(r"```(?:python)?\s*(.*?)```", text, flags=re.DOTALL | re.IGNORECASE)
    return blocks[-1].strip() if blocks else text


def latex_code(answer: str) -> str:
    text = strip_thinking(answer)
    blocks = re.findall(r"```(?:latex|tex)\s*\n(.*?)```", text, flags=re.DOTALL | re.IGNORECASE)
    if blocks:
        return blocks[-1].strip()
    blocks = re.findall(r"```\s*\n(.*?)```", text, flags=re.DOTALL)
    return blocks[-1].strip() if blocks else text


def excalidraw_code(answer: str) -> str:
    text = strip_thinking(answer)
    blocks = re.findall(r"```(?:json|excalidraw)?\s*\n(.*?)```", text, flags=re.DOTALL | re.IGNORECASE)
    if blocks:
        return blocks[-1].strip()
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if 0 <= start < end else text


def extract_program(answer: str, renderer: str) -> str:
    if renderer == "latex":
        return latex_code(answer)
    if renderer == "excalidraw":
        return excalidraw_code(answer)
    return python_code(answer)
