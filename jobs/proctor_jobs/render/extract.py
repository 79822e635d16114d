"""ArtifactsBench extraction: from a model's answer to the page the browser renders.

Two profiles:

``faithful`` reproduces the released harness (`src/utils.py`, `extract_ans.py`, `code_parser.py` of
Tencent-Hunyuan/ArtifactsBenchmark), including its mistakes, so scores stay comparable with
published ones:

- the answer is the text after the last ``</think>``;
- the type is ``html`` when the text contains ``<html…>…</html>`` (the last one, case-sensitive),
  else ``svg`` for ``<svg…>…</svg>``, else nothing is rendered;
- the page is the *first* ```` ```html ```` block; local ``<link href>`` / ``<script src>``
  references are replaced by the ```` ```css ```` / ```` ```javascript ```` blocks that follow
  (matched by a file name on the line before the fence, else by order of reference); blocks that
  nothing references are *not* added to the page — the original inserts a comment saying the file
  was not found (``<style>/* styles.css not found in result */</style>``) before ``</head>`` /
  ``</body>``; any error in this step falls back to the raw ``<html>`` element of the text;
- one documented deviation: an SVG-only answer is rendered as inline SVG. (The released code writes
  ``None`` to the page file for SVG answers and crashes, so they were judged on text alone; the
  paper renders them, and so do we.)

``fixed`` (the default) corrects what the original gets wrong and lists every correction in the
record: tags matched case-insensitively; fence info strings parsed properly (```` ```js ````,
```` ```jsx ````, ```` ```ts ````, ```` ```html title=… ````, unterminated last fences of truncated
answers); unreferenced CSS/JS blocks injected with their content; an HTML *fragment* rendered
inside a minimal document; single-file React/JSX/TSX and Vue SFC answers wrapped with the framework
and an in-browser transpiler (served from the library cache, see `wrappers.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from proctor_jobs.render import wrappers

PROFILES = ("fixed", "faithful")
KINDS = ("html", "svg", "react", "vue", "none")


@dataclass
class Extraction:
    kind: str  # html | svg | react | vue | none
    profile: str
    reason: str
    html: str | None = None  # the page to render; None when there is nothing to render
    corrections: list[str] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        """The `data.extraction` part of a render record (the page itself is stored as evidence)."""
        return {
            "kind": self.kind,
            "profile": self.profile,
            "reason": self.reason,
            "corrections": list(self.corrections),
        }


def answer_text(answer: str) -> str:
    """The part of an answer after the last `</think>` — what both the original and we extract from."""
    return (answer or "").split("</think>")[-1].strip()


def extract(answer: str, profile: str = "fixed") -> Extraction:
    if profile == "faithful":
        return extract_faithful(answer)
    if profile == "fixed":
        return extract_fixed(answer)
    raise ValueError(f"unknown extraction profile {profile!r}; known: {', '.join(PROFILES)}")


# --------------------------------------------------------------------------------------------------
# faithful


def _last(pattern: str, text: str, flags: int = re.DOTALL) -> str | None:
    matches = re.findall(pattern, text, flags)
    return matches[-1] if matches else None


def extract_faithful(answer: str) -> Extraction:
    text = answer_text(answer)
    if not text:
        return Extraction("none", "faithful", "empty answer (nothing after the last </think>)")
    html_block = _last(r"(<html[^>]*>.*?</html>)", text)
    if html_block:
        try:
            page = _assemble_like_original(text)
            return Extraction("html", "faithful", "first ```html block, local references inlined", page)
        except Exception as exc:  # the original falls back to the raw element on *any* error
            why = "no ```html block" if isinstance(exc, StopIteration) else f"{type(exc).__name__}: {exc}"
            return Extraction(
                "html",
                "faithful",
                f"last raw <html> element of the text (block assembly failed: {why})",
                html_block,
            )
    svg_block = _last(r"(<svg[^>]*>.*?</svg>)", text)
    if svg_block:
        return Extraction(
            "svg",
            "faithful",
            "last <svg> element, rendered as inline SVG (the released code crashes here; see docs)",
            wrappers.svg_page(svg_block),
        )
    return Extraction("none", "faithful", "no <html>…</html> or <svg>…</svg> in the answer (case-sensitive)")


def _assemble_like_original(text: str) -> str:
    """The original `extract_html`: parse fenced blocks, then inline local references.

    Written from the original's rules, step for step, because its quirks decide which bytes a
    judge saw: which block is the page, which CSS block fills which <link>, what is dropped.
    """
    html_blocks: list[str] = []
    by_language: dict[str, list[str]] = {}
    css_refs: list[str] = []
    js_refs: list[str] = []
    for match in re.finditer(r"```(\w+)\n(.*?)```", text, flags=re.DOTALL):
        language, code = match.group(1).lower(), match.group(2)
        if language == "html":
            html_blocks.append(code)
            # The references of the *last* html block win, as in the original.
            css_refs = [
                m[1]
                for m in re.findall(
                    r'<link[^>]*rel=["\'](stylesheet|preload)["\'][^>]*href=["\']((?!https?:\/\/).*?)["\']',
                    code,
                )
            ]
            js_refs = re.findall(r'<script[^>]*src=["\']((?!https?:\/\/).*?)["\']', code)
        by_language.setdefault(language, []).append(code)

    files: list[tuple[str, str, str]] = []  # (name, language, content)
    previous = ""
    for line in text.split("\n"):
        if not re.match(r"```(\w+)", line):
            previous = line
            continue
        if re.match(r"```css", line, re.IGNORECASE):
            files.append(_name_block(previous, by_language["css"], css_refs, "css", "styles.css"))
        elif re.match(r"```javascript", line, re.IGNORECASE):
            files.append(_name_block(previous, by_language["javascript"], js_refs, "javascript", "script.js"))

    page = next(iter(html_blocks))  # StopIteration without an html block, like the original's next()
    contents = {name: content for name, _, content in files}
    css_pending = [name for name, lang, _ in files if lang == "css"]
    js_pending = [name for name, lang, _ in files if lang == "javascript"]

    def link(match: re.Match) -> str:
        href = match.group(1)
        if href in contents and href.endswith(".css"):
            css_pending.remove(href)
            return f"<style>{contents[href]}</style>"
        return match.group(0)

    def script(match: re.Match) -> str:
        src = match.group(1)
        if src in contents and src.endswith(".js"):
            js_pending.remove(src)
            return f"<script>{contents[src]}</script>"  # the original's closing tag stays behind
        return match.group(0)

    page = re.sub(r'<link[^>]*href=["\'](.*?)["\'][^>]*>', link, page)
    page = re.sub(r'<script[^>]*src=["\'](.*?)["\'][^>]*>', script, page)
    # The original inserts these with re.sub and a replacement built from the file name, so the name is
    # a template: `\\t` becomes a TAB, and `\\d` (a bad escape) raises, which makes the caller fall
    # back to the raw <html> element. Kept as is (B1 in docs/fidelity.md).
    for name in css_pending:
        page = re.sub("</head>", f"<style>/* {name} not found in result */</style>\n</head>", page, count=1)
    for name in js_pending:
        page = re.sub("</body>", f"<script>/* {name} not found in result */</script>\n</body>", page, count=1)
    return page


def _name_block(previous: str, codes: list[str], refs: list[str], language: str, default: str):
    suffix = r"\.css" if language == "css" else r"\.js"
    named = re.findall(r"([\w\-/]+" + suffix + ")", previous, re.IGNORECASE)
    code = codes.pop(0)
    if not refs:
        return default, language, code
    if named:
        if named[0] in refs:
            refs.remove(named[0])
        return named[0], language, code
    return refs.pop(0), language, code


# --------------------------------------------------------------------------------------------------
# fixed

_HTML_LANGS = {"html", "htm", "xhtml", "html5"}
_CSS_LANGS = {"css"}
_JS_LANGS = {"javascript", "js", "mjs", "cjs", "ecmascript"}
_JSX_LANGS = {"jsx", "tsx", "react", "javascriptreact", "typescriptreact"}
_TS_LANGS = {"ts", "typescript"}
_VUE_LANGS = {"vue"}
_SVG_LANGS = {"svg", "xml"}
_FILE_NAME = re.compile(r"([\w\-./]+\.(?:html?|css|m?jsx?|tsx?|vue|svg))\b", re.IGNORECASE)


@dataclass
class Block:
    language: str  # lower-cased first word of the info string ("" when none)
    code: str
    name: str | None  # a file name from the info string or the line before the fence
    terminated: bool = True


def fenced_blocks(text: str) -> list[Block]:
    """Markdown fenced code blocks, parsed line by line like a CommonMark reader would.

    Unlike the original's single regex this accepts ~~~ fences, indented fences, info strings
    with attributes (```html title="index.html"), and an unterminated last block (a truncated
    answer); a fence inside a block closes it only when it is a bare fence of the same kind.
    """
    blocks: list[Block] = []
    lines = text.split("\n")
    i = 0
    previous = ""
    while i < len(lines):
        opening = re.match(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)(.*)$", lines[i])
        if not opening:
            if lines[i].strip():
                previous = lines[i]
            i += 1
            continue
        fence, language, rest = opening.group(1), opening.group(2).lower(), opening.group(3)
        language = language.split(":")[0].split("{")[0].strip(".")
        named = _FILE_NAME.search(rest) or _FILE_NAME.search(opening.group(2)) or _FILE_NAME.search(previous)
        body: list[str] = []
        i += 1
        closed = False
        while i < len(lines):
            closing = re.match(r"^ {0,3}(`{3,}|~{3,})\s*$", lines[i])
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence):
                closed = True
                i += 1
                break
            body.append(lines[i])
            i += 1
        # Keep the final newline, as the original's regex does: the same page gives the same bytes
        # (and the same render cache key) under either profile.
        code = "\n".join(body) + ("\n" if body else "")
        blocks.append(Block(language, code, named.group(1) if named else None, closed))
        previous = ""
    return blocks


_DOCUMENT = re.compile(r"<!doctype\s+html|<html[\s>]|<body[\s>]", re.IGNORECASE)
_RAW_HTML = re.compile(r"(<html[^>]*>.*?</html>)", re.IGNORECASE | re.DOTALL)
_RAW_SVG = re.compile(r"(<svg[^>]*>.*?</svg>)", re.IGNORECASE | re.DOTALL)
_REACTISH = re.compile(
    r"from\s+['\"]react['\"]|require\(['\"]react['\"]\)|React\.|ReactDOM|useState|useEffect|"
    r"return\s*\(\s*<|=>\s*\(?\s*<[A-Za-z>]|export\s+default\s+(function|class)\s+[A-Z]"
)


def extract_fixed(answer: str) -> Extraction:
    text = answer_text(answer)
    if not text:
        return Extraction("none", "fixed", "empty answer (nothing after the last </think>)")
    corrections: list[str] = []
    blocks = fenced_blocks(text)
    if blocks and not blocks[-1].terminated:
        corrections.append("the last code block is not closed (truncated answer?); used it up to the end")
    html_blocks = [
        b for b in blocks if b.language in _HTML_LANGS or (not b.language and _DOCUMENT.search(b.code))
    ]
    faithful_kind = extract_faithful(answer).kind

    if html_blocks:
        documents = [b for b in html_blocks if _DOCUMENT.search(b.code)]
        page_block = documents[-1] if documents else html_blocks[0]
        if page_block is not html_blocks[0]:
            corrections.append(
                "used the last complete HTML document block instead of the first ```html block "
                "(the first is a fragment or an earlier draft)"
            )
        page, notes = _inline_assets(page_block.code, [b for b in blocks if b is not page_block])
        corrections += notes
        if not _DOCUMENT.search(page_block.code):
            page = wrappers.fragment_page(page)
            corrections.append("the HTML block is a fragment; rendered inside a minimal document")
        if faithful_kind != "html":
            corrections.append(_faithful_miss(faithful_kind, "an HTML page"))
        return Extraction(
            "html", "fixed", _reason_for_block("html", page_block, len(html_blocks)), page, corrections
        )

    vue_blocks = [b for b in blocks if b.language in _VUE_LANGS or _looks_like_sfc(b.code)]
    if vue_blocks:
        block = vue_blocks[-1]
        css = [b.code for b in blocks if b.language in _CSS_LANGS]
        page, notes = wrappers.vue_page(block.code, extra_css=css)
        corrections += notes
        corrections.append(_faithful_miss(faithful_kind, "a Vue single-file component"))
        return Extraction("vue", "fixed", _reason_for_block("vue", block, len(vue_blocks)), page, corrections)

    component_blocks = [
        b
        for b in blocks
        if b.language in _JSX_LANGS or (b.language in _JS_LANGS | _TS_LANGS and _REACTISH.search(b.code))
    ]
    if component_blocks:
        block = _main_component(component_blocks)
        css = [b.code for b in blocks if b.language in _CSS_LANGS]
        typescript = (
            block.language in _TS_LANGS
            or block.language in ("tsx", "typescriptreact")
            or bool(block.name and block.name.endswith((".ts", ".tsx")))
        )
        page, notes = wrappers.react_page(block.code, extra_css=css, typescript=typescript)
        corrections += notes
        corrections.append(_faithful_miss(faithful_kind, "a React component"))
        return Extraction(
            "react", "fixed", _reason_for_block("react", block, len(component_blocks)), page, corrections
        )

    raw = _RAW_HTML.findall(text)
    if raw:
        if faithful_kind != "html":
            corrections.append("matched <HTML> case-insensitively (the original only matches lower case)")
        return Extraction("html", "fixed", "last raw <html> element in the text", raw[-1], corrections)

    svg_sources = [b.code for b in blocks if b.language in _SVG_LANGS | _HTML_LANGS] + [text]
    for source in reversed(svg_sources):
        found = _RAW_SVG.findall(source)
        if found:
            if faithful_kind != "svg":
                corrections.append("matched <SVG> case-insensitively (the original only matches lower case)")
            return Extraction(
                "svg",
                "fixed",
                "last <svg> element, rendered as inline SVG",
                wrappers.svg_page(found[-1]),
                corrections,
            )
    scripts = [
        b for b in blocks if b.language in _JS_LANGS and re.search(r"document\.|canvas|getContext", b.code)
    ]
    if scripts:
        page = wrappers.script_page(
            "\n\n".join(b.code for b in scripts), [b.code for b in blocks if b.language in _CSS_LANGS]
        )
        corrections.append("no HTML: the browser-side JavaScript blocks were run in a minimal document")
        corrections.append(_faithful_miss(faithful_kind, "browser JavaScript"))
        return Extraction(
            "html",
            "fixed",
            f"{len(scripts)} browser JavaScript block(s) in a minimal page",
            page,
            corrections,
        )
    what = (
        ("code blocks: " + ", ".join(sorted({b.language or "unlabelled" for b in blocks})))
        if blocks
        else "no code blocks"
    )
    return Extraction(
        "none", "fixed", f"no HTML, SVG, React or Vue code in the answer ({what})", None, corrections
    )


def _faithful_miss(faithful_kind: str, what: str) -> str:
    if faithful_kind == "none":
        return f"the original renders nothing for this answer; rendered {what}"
    return f"the original would render this answer as {faithful_kind}; rendered {what}"


def _reason_for_block(kind: str, block: Block, count: int) -> str:
    name = f" ({block.name})" if block.name else ""
    fence = block.language or "unlabelled"
    return f"{kind} from a ```{fence} block{name}" + (f", one of {count}" if count > 1 else "")


def _looks_like_sfc(code: str) -> bool:
    return bool(re.search(r"^\s*<template[\s>]", code, re.MULTILINE) and re.search(r"<script[\s>]", code))


def _main_component(blocks: list[Block]) -> Block:
    """The block that mounts or exports the app: App.jsx / index.jsx over helper components."""
    for pattern in (r"createRoot|ReactDOM\.render", r"export\s+default", r"function\s+App\b|const\s+App\b"):
        hits = [b for b in blocks if re.search(pattern, b.code)]
        if hits:
            return hits[-1]
    return blocks[-1]


_LINK = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
_SCRIPT_SRC = re.compile(
    r"<script\b([^>]*)\bsrc\s*=\s*([\"'])(.*?)\2([^>]*)>\s*</script\s*>", re.IGNORECASE | re.DOTALL
)
_HREF = re.compile(r"\bhref\s*=\s*([\"'])(.*?)\1", re.IGNORECASE)
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)


def _inline_assets(page: str, others: list[Block]) -> tuple[str, list[str]]:
    """Replace local <link>/<script src> references by the blocks that hold those files.

    A block is matched to a reference by file name (from the fence info string or the line before
    the fence, compared by base name), else in order of reference. Every CSS/JS block that
    nothing references is injected (CSS before </head>, JS before </body>) — the original drops
    those, which is the commonest reason its screenshots show an unstyled, dead page.
    """
    notes: list[str] = []
    css = [b for b in others if b.language in _CSS_LANGS]
    js = [b for b in others if b.language in _JS_LANGS | _TS_LANGS | _JSX_LANGS]
    used: set[int] = set()

    def take(name: str, pool: list[Block]) -> Block | None:
        base = name.split("?")[0].split("#")[0].rsplit("/", 1)[-1].lower()
        for block in pool:
            if id(block) not in used and block.name and block.name.rsplit("/", 1)[-1].lower() == base:
                used.add(id(block))
                return block
        for block in pool:
            if id(block) not in used and not block.name:
                used.add(id(block))
                return block
        return None

    def link(match: re.Match) -> str:
        tag = match.group(0)
        href = _HREF.search(tag)
        if not href or _REMOTE.match(href.group(2)) or not re.search(r"stylesheet|preload", tag, re.I):
            return tag
        if not href.group(2).lower().split("?")[0].endswith(".css"):
            return tag
        block = take(href.group(2), css)
        return f"<style>\n{block.code}\n</style>" if block else tag

    def script(match: re.Match) -> str:
        before, src, after = match.group(1), match.group(3), match.group(4)
        if _REMOTE.match(src):
            return match.group(0)
        block = take(src, js)
        if block is None:
            return match.group(0)
        attrs = re.sub(r"\s+", " ", f"{before} {after}").strip()
        return wrappers.script_tag(block.code, attrs, block.language, notes)

    page = _LINK.sub(link, page)
    page = _SCRIPT_SRC.sub(script, page)
    leftover_css = [b for b in css if id(b) not in used]
    leftover_js = [b for b in js if id(b) not in used]
    if leftover_css:
        styles = "".join(f"<style>\n{b.code}\n</style>\n" for b in leftover_css)
        page = wrappers.insert_before(page, "</head>", styles, at_start=True)
        notes.append(f"injected {len(leftover_css)} unreferenced CSS block(s) before </head>")
    if leftover_js:
        scripts = "".join(wrappers.script_tag(b.code, "", b.language, notes) + "\n" for b in leftover_js)
        page = wrappers.insert_before(page, "</body>", scripts, at_start=False)
        notes.append(f"injected {len(leftover_js)} unreferenced JavaScript block(s) before </body>")
    if any(b.language in ("js", "mjs", "cjs", "ecmascript") for b in js if id(b) in used or b in leftover_js):
        notes.append("recognised ```js-style fences (the original only reads ```javascript)")
    return page, notes
